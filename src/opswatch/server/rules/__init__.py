"""Alert rules on the server: signals over time windows, a state machine, notifications once.

The parts, one job each: ``model`` (what a rule is), ``durations``, ``load`` (TOML and mappings,
validated), ``signals`` (SQL over the event store; the seam where rollups will plug in), ``evaluate``
(one rule at one time), ``machine`` (the pure state machine), ``store`` (state in the state store).
"""
