"""This host's clock against the database server's: a host running ahead is refused.

Every event carries the time of the host that recorded it. A host whose clock runs a
year ahead would stamp its events a year ahead, after which correct hosts are refused
on those cases (an event never goes before its predecessor) and a ``tick`` escalates
every case. So before a write the engine compares its clock with the database
server's (PostgreSQL's ``clock_timestamp()``) and refuses to record anything when it
is more than ``[limits] max_clock_skew_s`` ahead (:class:`ClockAhead`). SQLite runs
on the host itself: nothing to compare. A clock whose time the program chooses
(:class:`~casework.workflow.clock.FixedClock`: tests, simulations, back-filling; its
``host_clock`` is false) is not this host's clock and is not checked.

The server's clock is read at most once a minute per engine, in a short read
transaction of its own; between readings it is carried forward by this host's
monotonic clock, so every write is compared at no cost and a host clock that jumps
ahead is caught at its next write.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from casework.storage.port import Store
from casework.workflow.clock import Clock
from casework.workflow.errors import ClockAhead

READ_EVERY_S = 60.0
"""How often the database server's clock is read again (per engine)."""


class ServerClock:
    """Checks an engine's clock against its database server's. Thread-safe."""

    def __init__(self, store: Store, clock: Clock, max_ahead: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.max_ahead = max_ahead
        self._lock = threading.Lock()
        self._server: datetime | None = None
        self._read_at: float | None = None
        self._local = False

    def now(self) -> datetime | None:
        """The database server's clock now (read, or carried forward since the last
        reading); ``None`` for a database on the host itself."""
        with self._lock:
            if self._local:
                return None
            moment = time.monotonic()
            if self._read_at is None or moment - self._read_at > READ_EVERY_S:
                server = self.store.server_time()
                if server is None:
                    self._local = True
                    return None
                self._server, self._read_at = server, time.monotonic()
                return server
            assert self._server is not None
            return self._server + timedelta(seconds=moment - self._read_at)

    def check(self, at: datetime | None = None) -> None:
        """Raise :class:`ClockAhead` if this host's clock (or ``at``, a time it is about
        to record, if later) runs more than the allowed skew ahead of the database
        server's clock; nothing for a clock the program sets."""
        if not getattr(self.clock, "host_clock", True):
            return
        now = self.clock.now()
        now = now if at is None else max(now, at)
        server = self.now()
        if server is not None and now - server > self.max_ahead:
            raise ClockAhead(now - server, self.max_ahead)
