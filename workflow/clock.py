"""Where time comes from: nothing in casework reads the wall clock except :class:`SystemClock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from casework.storage.timestamps import as_utc
from casework.workflow.errors import InvalidInput, NaiveDatetime


class Clock(Protocol):
    """Gives the current instant, timezone-aware."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        ...


class SystemClock:
    """The real clock."""

    host_clock = True
    """This host's clock: what it says is checked against the database server's
    (:mod:`casework.workflow.server_clock`). A clock without the attribute counts as one."""

    def now(self) -> datetime:
        """The wall-clock instant in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: for tests, simulations and back-filling."""

    host_clock = False
    """Its time is the program's choice, not this host's clock: it is not checked against
    the database server's clock (tests move it days ahead of the real one)."""

    def __init__(self, start: datetime) -> None:
        self._now = aware(start, "start")

    def now(self) -> datetime:
        """The instant the clock was set to."""
        return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by ``by`` and return the new instant."""
        if by < timedelta(0):
            raise ValueError("a clock does not run backwards")
        self._now += by
        return self._now

    def set(self, moment: datetime) -> None:
        """Put the clock at ``moment`` (aware)."""
        self._now = aware(moment, "moment")


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Instants casework takes lie between these: far enough from the ends of the calendar
that no arithmetic on them (a deadline, a time zone) can overflow."""


def aware(moment: object, what: str) -> datetime:
    """``moment`` in UTC; a naive datetime raises :class:`NaiveDatetime` naming ``what``,
    anything else that is no plausible instant :class:`InvalidInput`."""
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(moment).__name__}", field=what)
    try:
        utc = as_utc(moment, what)
    except ValueError as err:
        raise NaiveDatetime(f"{err}; add a time zone, for example +00:00", field=what) from None
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidInput(
            f"{what} {moment.isoformat()} lies outside the years 1900 to 8999", field=what
        )
    return utc


def parse_instant(text: str, what: str) -> datetime:
    """Parse ISO 8601 with an explicit offset into UTC; anything else is invalid input."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{what}: {text!r} is not an ISO 8601 time (for example 2026-11-23T09:30:00+08:00)",
            field=what,
        ) from None
    return aware(moment, what)
