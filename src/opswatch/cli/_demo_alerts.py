"""The demo's alert rules and the script the simulated app follows, so a newcomer sees a rule go pending,
fire and resolve within the first few minutes of ``opswatch demo``.

The app (``_church_app.ChurchApp``) follows a ``Scenario``: an error-rate spike (the card processor
fails most charges) from 0:40 to 1:40, and a quiet spell (no donation at all) from 2:30 to 3:30. Two
rules with demo-sized windows watch them, written to ``demo-rules.toml`` in the demo's data directory
and loaded only by the demo (with the defaults, which a real server ships too):

* ``demo-error-spike``: the share of error events of ``church-app`` over 30 s (at least 20 events);
  warning above 15 %, critical above 25 %, pending for 15 s before it fires, resolving below 10 %;
* ``demo-no-donations``: fewer than one ``metrics.donation.completed`` in 30 s while the app sends
  anything at all (5 events or more), pending for 10 s.

The server evaluates every 5 s (``rules_interval``), with windows ending 2 s before now and notification
groups waiting 5 s. ``scale`` (the hidden ``--time-scale`` option, for tests) divides every time here,
the scenario's and the rules', so the whole story runs that many times faster.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Final

#: The rule names, for the banner and the tests.
SPIKE_RULE: Final = "demo-error-spike"
QUIET_RULE: Final = "demo-no-donations"


@dataclasses.dataclass(frozen=True)
class Scenario:
    """When (seconds after the app started) the spike and the quiet spell run."""

    spike: tuple[float, float] = (40.0, 100.0)
    quiet: tuple[float, float] = (150.0, 210.0)
    started: float = dataclasses.field(default_factory=time.monotonic)

    def scaled(self, scale: float) -> Scenario:
        """The same story ``scale`` times faster."""
        return Scenario(
            (self.spike[0] / scale, self.spike[1] / scale),
            (self.quiet[0] / scale, self.quiet[1] / scale),
            self.started,
        )

    def phase(self, now: float | None = None) -> str:
        """``spike``, ``quiet`` or ``normal`` at ``now`` (``time.monotonic()``)."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        if self.spike[0] <= elapsed < self.spike[1]:
            return "spike"
        if self.quiet[0] <= elapsed < self.quiet[1]:
            return "quiet"
        return "normal"


def rules_toml(scale: float = 1.0) -> str:
    """The demo's rules file (times divided by ``scale``)."""

    def seconds(value: float) -> str:
        return f"{value / scale:g}"

    return f"""# The alert rules of `opswatch demo`, with demo-sized windows (see `opswatch rules list`).
[[rules]]
name = "{SPIKE_RULE}"
signal = "error_ratio"
where = "service = 'church-app'"
window = {seconds(30)}
warning = "> 0.15"
critical = "> 0.25"
resolve = "< 0.1"
min_events = 20
for = {seconds(15)}
template = "high_error_rate"

# Donations completed, judged only while the app sends anything (5 events or more), so a server that has
# just started (no events yet) is not "no donations".
[[rules]]
name = "{QUIET_RULE}"
sql = '''
SELECT sum(CASE WHEN operation = 'metrics.donation.completed' THEN 1 ELSE 0 END) AS value,
       count(*) AS events
FROM logs WHERE service = 'church-app' '''
window = {seconds(30)}
critical = "< 1"
min_events = 5
for = {seconds(10)}
"""


def server_settings(data_dir: Path, scale: float = 1.0) -> dict[str, Any]:
    """The settings the demo's server gets for its rules: the file written in ``data_dir``, short timers."""
    path = data_dir / "demo-rules.toml"
    path.write_text(rules_toml(scale), encoding="utf-8")
    return {
        "rules_file": path,
        "rules_interval": max(1, round(5 / scale)),
        "rules_ingest_delay": 2,
        "rules_group_wait": max(0, round(5 / scale)),
    }


def announcement(scenario: Scenario) -> str:
    """The banner's line about what the rules will show."""

    def clock(seconds: float) -> str:
        return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"

    return (
        f"Alert rules: an error spike at {clock(scenario.spike[0])}-{clock(scenario.spike[1])} "
        f"({SPIKE_RULE}) and no donations at {clock(scenario.quiet[0])}-{clock(scenario.quiet[1])} "
        f"({QUIET_RULE}): watch them go pending, fire and resolve on /alerts"
    )
