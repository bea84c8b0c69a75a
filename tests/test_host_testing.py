"""``casework.workflow.testing``: what a host's own tests use to run casework inside
them, exercised as a host would."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from casework.workflow import InvalidInput
from casework.workflow.testing import START, FixedClock, run_due, throwaway_engine


def test_a_host_test_opens_a_case_and_runs_the_worker_at_an_instant() -> None:
    with throwaway_engine() as engine:
        assert engine.clock.now() == START
        case = engine.open_case(customer="C-1", channel="phone", category="other",
                                summary="没有人回电话", actor="li.na")  # fmt: skip
        assert run_due(engine, START + timedelta(hours=1)) == []
        fired = run_due(engine, START + timedelta(days=3))
        assert {f.case_id for f in fired} == {case.id}
        assert engine.get(case.id).escalation_level >= 1
        assert run_due(engine, START + timedelta(days=3)) == []  # once only
        url = str(engine.db.url)
    assert not Path(url.removeprefix("sqlite:///")).exists()


def test_run_due_needs_a_fixed_clock_moving_forward() -> None:
    with (
        throwaway_engine(clock=FixedClock(START)) as engine,
        pytest.raises(InvalidInput, match="before the clock"),
    ):
        run_due(engine, START - timedelta(seconds=1))
