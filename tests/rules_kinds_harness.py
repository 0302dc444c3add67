"""A server's rules, minus HTTP, for the change, anomaly and issue kinds: a real DuckDB event store, a
real SQLite state store, the ``RuleService`` evaluating at injected times, and the notification log.

``Rules(tmp_path, rules).at(ts)`` evaluates every rule at ``ts`` and returns the kinds of the messages it
logged; ``reading(name, ts)`` is what ``opswatch rules eval`` shows (nothing changes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from opswatch.server.rules.issue_signals import IssueSource
from opswatch.server.rules.load import load_many
from opswatch.server.rules.model import Observation
from opswatch.server.rules.service import RuleService
from opswatch.server.rules.signals import EventQuerySource
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from opswatch.server.store.duckdb import DuckDBStore


class Rules:
    """Rules over their own event store and state store (close with ``close``)."""

    def __init__(self, tmp_path: Path, rules: list[dict[str, Any]], *, engine: Any = None) -> None:
        self.store = DuckDBStore(tmp_path / "events.duckdb")
        self.engine = engine or create_engine_for(f"sqlite:///{tmp_path / 'state.db'}")
        rule_tables.install(self.engine)
        self.service = RuleService(
            self.engine,
            EventQuerySource(self.store),
            load_many(rules),
            ingest_delay=0,
            issues=IssueSource(self.engine, self.store),
        )

    def add(self, records: list[dict[str, Any]]) -> None:
        self.store.append(records)

    def at(self, when: float) -> list[str]:
        """Evaluate at ``when``; the kinds of the messages logged."""
        before = len(self.notes())
        self.service.run_once(when)
        return [note["kind"] for note in self.notes()[before:]]

    def notes(self) -> list[dict[str, Any]]:
        """Every logged notification: rule, kind, labels, value, reason."""
        table = rule_tables.NOTIFICATIONS
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.id))
            return [dict(row._mapping) for row in rows]

    def status(self, rule: str) -> dict[str, str]:
        """``{instance labels without rule, as text: status}``."""
        found = self.service.state.instances(rule)
        return {
            ",".join(f"{k}={v}" for k, v in sorted(i.labels.items()) if k != "rule"): i.status
            for i in found.values()
        }

    def reading(self, rule: str, when: float) -> list[Observation]:
        evaluation = self.service.preview(rule, when)
        assert evaluation.error is None, evaluation.error
        return list(evaluation.observations)

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()
