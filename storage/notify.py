"""Wake-ups across processes on PostgreSQL: a transaction that plans a deadline
announces its due instant on a channel (``NOTIFY``, delivered at commit), and a
worker's listener hears it at once instead of at its next safety poll.

The listener keeps one dedicated connection outside the pool (``LISTEN`` is session
state, which a transaction-pooling bouncer does not keep: give it the server's own
address then). It reconnects after a failure or a failover, and a missed
announcement costs at most one safety poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from casework.storage.table_prefix import prefix_of

CHANNEL = "casework_deadlines"
"""The channel of deadline announcements; with a table prefix, the prefix comes first."""
NOTIFY = "SELECT pg_notify(%s, %s)"
RECONNECT_S = 1.0


def channel_of(engine: Engine) -> str:
    """The channel ``engine``'s deadlines are announced on: one per table prefix, so
    that two casework installations in one database do not wake each other."""
    tables = prefix_of(engine)
    return CHANNEL if tables is None else tables.prefix + CHANNEL


def conninfo(url: Any) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL, a multi-host one
    (``?host=a:5432&host=b:5432&target_session_attrs=read-write``) included: the
    listener follows the primary through a failover as the writers do."""
    from psycopg.conninfo import make_conninfo

    query = dict(url.query)
    hosts = query.pop("host", None)
    params: dict[str, Any] = {k: v for k, v in query.items() if isinstance(v, str)}
    if hosts is not None:
        pairs = [h.rsplit(":", 1) if ":" in h else [h, ""] for h in
                 ((hosts,) if isinstance(hosts, str) else hosts)]  # fmt: skip
        params["host"] = ",".join(h for h, _ in pairs)
        params["port"] = ",".join(p or "5432" for _, p in pairs)
    else:
        params["host"] = url.host or "localhost"
        params["port"] = str(url.port or 5432)
    if url.username:
        params["user"] = url.username
    if url.password:
        params["password"] = url.password
    params["dbname"] = url.database or ""
    return str(make_conninfo(**params))


class PlannedListener:
    """Calls ``heard(due_at)`` for every deadline another process announces, from a
    thread of its own, until :meth:`stop`."""

    def __init__(
        self,
        dsn: str,
        heard: Callable[[datetime], None],
        failed: Callable[[Exception], None],
        channel: str = CHANNEL,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.heard = heard
        self.failed = failed
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="casework-listen", daemon=True)

    def start(self) -> PlannedListener:
        """Start listening (``listening`` is set once the first ``LISTEN`` holds)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop within a second."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._heard(note.payload)
            except psycopg.Error as err:  # the server went away: try again shortly
                self.listening.clear()
                self.failed(err)
                self._stop.wait(RECONNECT_S)

    def _heard(self, payload: str) -> None:
        try:
            due = datetime.fromisoformat(payload)
        except ValueError:
            return
        self.heard(due)
