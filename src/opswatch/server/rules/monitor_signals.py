"""The cron monitor signal: ``monitor_failing`` reads 1 for each monitor failing now.

The monitors decide failing and recovered themselves (``server/monitors``); a rule over them turns a
failing monitor into a firing alert, so it shows with the other alerts and can inhibit them
(``inhibits = { matchers = ["rule=~.*"], equal = ["project"] }``). Labels: ``monitor`` (the slug) and
``project``. Paused monitors never count. The window does not matter (the state is the monitor's now).
"""

from __future__ import annotations

from sqlalchemy import Engine, and_, false, select

from .. import limits
from ..state.monitors import Monitor
from .model import Observation, Rule


class MonitorSource:
    """``SignalSource`` for ``monitor_failing`` over the state store's ``monitors`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        """One observation (value 1) per failing, unpaused monitor, at most ``RULES_MAX_INSTANCES``."""
        columns = Monitor.__table__.c
        query = (
            select(columns.project_id, columns.slug)
            .where(and_(columns.failing_since.is_not(None), columns.paused == false()))
            .order_by(columns.project_id, columns.slug)
            .limit(limits.RULES_MAX_INSTANCES)
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [Observation({"monitor": str(slug), "project": str(project)}, 1.0) for project, slug in rows]
