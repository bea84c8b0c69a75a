"""An event is recorded at the instant it happened: never moved, never in the future."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from casework.workflow import Engine, FixedClock
from casework.workflow.cli import main
from casework.workflow.errors import TimeOutOfOrder
from tests.support import START, open_sample, snapshot

H = timedelta(hours=1)


def test_an_event_is_never_moved_after_the_previous_one(engine: Engine, clock: FixedClock) -> None:
    """With the clock behind the case's last event, an event without a time is refused
    with the reason, not stored at the later instant."""
    clock.set(START + 2 * H)
    case_id = open_sample(engine)
    engine.fire(case_id, "note", actor="li.na", note="called")
    clock.set(START + 1 * H)  # another host, whose clock is behind
    before = snapshot(engine)
    with pytest.raises(TimeOutOfOrder, match="after this host's clock"):
        engine.fire(case_id, "apologise", actor="li.na")
    assert snapshot(engine) == before
    clock.set(START + 3 * H)
    assert engine.fire(case_id, "apologise", actor="li.na").last_event_at == START + 3 * H


def test_processing_deadlines_in_the_future_is_refused(engine: Engine) -> None:
    """``process_due(now)`` beyond the clock's skew would record escalations that have
    not happened yet."""
    open_sample(engine)
    before = snapshot(engine)
    with pytest.raises(TimeOutOfOrder, match=r"now .* lies in the future"):
        engine.process_due(START + 48 * H)
    assert snapshot(engine) == before
    assert engine.process_due(START + 60 * timedelta(seconds=1)) == []


def test_tick_now_in_the_future_exits_2_and_writes_nothing(db_url: str) -> None:
    """``casework tick --now`` two days ahead: one line, exit 2, no escalation stored."""
    with Engine.open(db_url, clock=FixedClock(START)) as engine:
        open_sample(engine, received_at=START - 48 * H)
        before = snapshot(engine)
    result = CliRunner().invoke(
        main, ["--db", db_url, "tick", "--now", "2099-12-03T12:00:00+08:00"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "lies in the future" in result.stderr
    with Engine.open(db_url) as engine:
        assert snapshot(engine) == before
