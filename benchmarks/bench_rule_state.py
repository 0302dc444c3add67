"""The rules' own cost in one evaluation round: 1,000 rules (bench_rules' mix) whose signal source
replays the readings it recorded, so each steady round's CPU is the state store and state machine
alone (read, judge, write), without the signal queries that ``bench_rules.py`` measures.

    python benchmarks/bench_rule_state.py --events 200000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_rules import END, batches, build_rules, parse_mix
from opswatch.server.rules.model import Observation, Rule
from opswatch.server.rules.rollup_signals import RollupSource
from opswatch.server.rules.service import RuleService
from opswatch.server.rules.signals import SignalSource
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from opswatch.server.store.duckdb import DuckDBStore


class Replay:
    """A signal source that records ``inner``'s readings, then (``replaying``) answers with them."""

    def __init__(self, inner: SignalSource) -> None:
        self.inner = inner
        self.seen: dict[str, list[Observation]] = {}
        self.replaying = False

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        if self.replaying:
            return self.seen[rule.name]
        self.seen[rule.name] = found = self.inner.observe(rule, start, end)
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--mix", default="rollup=700,sql=200,absence=100")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rules = build_rules(parse_mix(args.mix))
    with tempfile.TemporaryDirectory() as tmp, DuckDBStore(Path(tmp) / "events.duckdb") as store:
        for batch in batches(args.events, 30.0, 10_000):
            store.append(batch)
        store.compact_rollups()
        engine = create_engine_for(f"sqlite:///{Path(tmp) / 'state.sqlite'}")
        rule_tables.install(engine)
        source = Replay(RollupSource(store))
        service = RuleService(engine, source, rules, ingest_delay=30.0, now=lambda: END)
        service.run_once(END)  # creates the instances
        service.run_once(END + 60)  # the readings to replay
        source.replaying = True
        cpu = []
        for number in range(2, 2 + args.rounds):
            started = time.process_time()
            report = service.run_once(END + 60 * number)
            cpu.append(time.process_time() - started)
        engine.dispose()
    print(f"{len(rules)} rules ({args.mix}), {report.evaluated} evaluated, {report.errors} errors")
    print(
        f"state + machine CPU per steady round: median {statistics.median(cpu):.3f} s, min {min(cpu):.3f} s"
    )


if __name__ == "__main__":
    main()
