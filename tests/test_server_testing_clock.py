"""``running_server(rule_clock=False)``: the rule clock never starts, so a test that runs the rounds by
hand has no background round racing its own (with leader election off, and on)."""

from __future__ import annotations

from pathlib import Path

from opswatch.server.leader import Leadership
from opswatch.server.rules import rules_for
from opswatch.server.testing import running_server


def test_it_keeps_the_rule_clock_stopped_so_only_the_tests_rounds_run(tmp_path: Path) -> None:
    with running_server(tmp_path, leader_election="off", rule_clock=False) as server:
        runtime = rules_for(server.ctx)
        assert runtime.clock not in server.ctx.background
        assert runtime.service.rounds == 0 and runtime.clock.next_round is None
        runtime.clock.run_once(1_764_000_000.0)
        assert runtime.service.rounds == 1 and runtime.clock.next_round == 1_764_000_000.0 + 60


def test_it_keeps_the_rule_clock_out_of_the_leaders_singletons(tmp_path: Path) -> None:
    with running_server(tmp_path, leader_election="on", rule_clock=False) as server:
        [leadership] = [worker for worker in server.ctx.background if isinstance(worker, Leadership)]
        assert rules_for(server.ctx).clock not in leadership.singletons
        assert leadership.singletons  # the other singletons (the cron clock ...) still run with the lease
        assert rules_for(server.ctx).service.rounds == 0


def test_the_rule_clock_starts_with_the_server_by_default(tmp_path: Path) -> None:
    with running_server(tmp_path, leader_election="off") as server:
        assert rules_for(server.ctx).clock in server.ctx.background
