"""Rows of a PostgreSQL server-side cursor fetched a few batches ahead by a thread.

A reader that checks every row (``verify``) and the server that produces them take
turns on a plain cursor: each ``FETCH`` waits for the server, and the server waits
while the reader checks the batch. Fetched by a thread of its own (the driver leaves
the interpreter's lock while it waits on the network), on a connection of its own (a
connection runs one statement at a time), the next batches come while this one is
checked. SQLite gains nothing: its rows are made in this process, under the same lock
as the checks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from casework.storage.dialect import BATCH_ROWS

AHEAD = 3
"""Batches fetched and not yet read, at most: memory stays a few batches."""
_WAIT = 0.1
"""Seconds the fetching thread waits for room before it looks whether to stop."""


class ReadAhead:
    """Every row of ``statement`` on ``cursor`` (a cursor no other thread uses), in
    order, fetched by a thread started on the first read; :meth:`close` stops it and
    must be called before the cursor or its connection is closed. A driver's error
    in the thread is raised to the reader."""

    def __init__(self, cursor: Any, statement: str, params: Sequence[Any]) -> None:
        self._cursor, self._statement, self._params = cursor, statement, params
        self._batches: queue.Queue[list[tuple[Any, ...]] | BaseException] = queue.Queue(AHEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._fetch, name="casework-read-ahead")
            self._thread.start()
        while True:
            batch = self._batches.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch:
                return
            yield from batch

    @property
    def fetching(self) -> bool:
        """Whether the fetching thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop fetching and wait for the thread (at most one batch's fetch)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _fetch(self) -> None:
        try:
            self._cursor.execute(self._statement, self._params)
            while not self._stop.is_set():
                batch = self._cursor.fetchmany(BATCH_ROWS)
                self._hand_over(batch)
                if not batch:
                    return
        except BaseException as err:  # raised to the reader, in its thread
            self._hand_over(err)

    def _hand_over(self, item: list[tuple[Any, ...]] | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._batches.put(item, timeout=_WAIT)
                return
            except queue.Full:
                continue
