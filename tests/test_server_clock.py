"""A host whose clock runs ahead of the database server's records nothing.

A host's clock here is the real clock set off by an offset, as a host whose clock is
wrong has it; a :class:`FixedClock` is the program's choice of time and is not checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from casework.workflow import Engine, FixedClock
from casework.workflow.clock import SystemClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.errors import ClockAhead, StorageFailure
from tests.support import open_sample

YEAR = timedelta(days=365)


class HostClock(SystemClock):
    """This host's clock, running ``offset`` ahead of the true time."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        """The wall clock, off by the offset."""
        return super().now() + self.offset


def _rows(url: str) -> tuple[int, int, int]:
    """Cases, events and fired deadlines, counted straight from the database."""
    db = create_engine(url)
    try:
        with db.connect() as conn:
            cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
            events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            fired = conn.execute(
                text("SELECT count(*) FROM deadlines WHERE status <> 'pending'")
            ).scalar_one()
    finally:
        db.dispose()
    return cases, events, fired


@pytest.mark.postgres
def test_a_host_a_year_ahead_is_refused_and_writes_nothing(pg_url: str) -> None:
    """A year-ahead host cannot open, fire or tick; correct hosts go on with the case."""
    with Engine.open(pg_url, clock=HostClock()) as correct:
        case_id = open_sample(correct)
    before = _rows(pg_url)
    with Engine.open(pg_url, clock=HostClock(YEAR)) as wrong:
        with pytest.raises(ClockAhead, match=r"this host's clock is 36[45] days ahead"):
            open_sample(wrong)
        with pytest.raises(ClockAhead):
            wrong.fire(case_id, "apologise", actor="li.na")
        with pytest.raises(ClockAhead):
            wrong.process_due()  # would escalate every case
        with pytest.raises(ClockAhead):
            wrong.erase("CUST-1", actor="dpo", reason="asked")
        with pytest.raises(ClockAhead):  # a worker that can fire nothing does not look alive
            wrong.heartbeat("w1", datetime.now(UTC))
        assert wrong.get(case_id).version == 1  # reading is no harm
    assert _rows(pg_url) == before
    with Engine.open(pg_url, clock=HostClock()) as correct:
        assert correct.fire(case_id, "apologise", actor="li.na").version == 2
        assert correct.verify().ok


@pytest.mark.postgres
def test_a_clock_that_jumps_ahead_is_caught_at_its_next_write(pg_url: str) -> None:
    """The server's clock is read once a minute; a jump in between is caught all the same."""
    clock = HostClock()
    with Engine.open(pg_url, clock=clock) as engine:
        case_id = open_sample(engine)
        clock.offset = YEAR
        with pytest.raises(ClockAhead):
            engine.fire(case_id, "apologise", actor="li.na")
        assert [e.event for e in engine.history(case_id)] == ["open"]


@pytest.mark.postgres
def test_within_the_allowed_skew_a_host_writes(pg_url: str) -> None:
    """A minute ahead passes the default five minutes; a wider skew is configured."""
    with Engine.open(pg_url, clock=HostClock(timedelta(minutes=1))) as near:
        open_sample(near)
    lenient = settings_from_mapping({"limits": {"max_clock_skew_s": 2 * 86_400}}, "test")
    with Engine.open(pg_url, clock=HostClock(timedelta(days=1)), config=lenient) as engine:
        open_sample(engine)
    assert _rows(pg_url)[0] == 2


@pytest.mark.postgres
def test_a_fixed_clock_is_the_programs_choice_and_not_checked(pg_url: str) -> None:
    """Tests and back-filling set a :class:`FixedClock` where they like: not a host's
    clock, so a year ahead of the server is taken as given."""
    with Engine.open(pg_url, clock=FixedClock(datetime.now(UTC) + YEAR)) as engine:
        open_sample(engine)


def test_sqlite_has_no_other_clock_to_check(tmp_path: Path) -> None:
    """SQLite runs on the host: its clock is the host's, nothing is compared."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with Engine.open(url, clock=HostClock(YEAR)) as engine:
        open_sample(engine)


def test_the_refusal_is_a_storage_failure_answered_503() -> None:
    """The host cannot serve writes until its clock is set right: 503 over HTTP (another
    host may serve), exit status 1 at the command line."""
    error = ClockAhead(timedelta(days=365, hours=1), timedelta(minutes=5))
    assert isinstance(error, StorageFailure)
    assert error.http_status == 503
    assert error.exit_status == 1
    assert "365 days ahead of the database server's (at most 300 s" in str(error)
