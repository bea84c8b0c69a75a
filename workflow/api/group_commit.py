"""Group commit on SQLite: the short writes that arrive together share one durable
commit.

Half of a SQLite write's CPU is its own transaction (BEGIN, and the commit that waits
for the disk), and serve runs short writes one after another on its event loop. A
write queues here; the group it starts waits while each turn of the loop brings
another write (a request that arrived meanwhile: its bytes read, its task run), at
most :data:`TURNS` turns and :data:`MAX_GROUP` writes. Then they run in one
transaction, each in a savepoint of its own (as a host's call joins its transaction,
:meth:`casework.workflow.engine.Engine.fire`), and one commit makes them all durable.
None is answered before that commit:

- a write that fails on its own (a case not found, a race lost, a refused event) has
  its savepoint rolled back and gets its own error; the others go on;
- a failure of the database itself (the commit, or a driver error in any savepoint,
  after which SQLite may have rolled the whole transaction back) fails every write of
  the group with that error: none of them was stored.

A write alone runs in its own transaction as before, after one more turn of the loop
(microseconds): a quiet server waits for nothing, and groups form under load alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from casework.storage.port import Store
from casework.workflow.errors import ReadOnlyDatabase, StorageFailure
from casework.workflow.storage_boundary import storage_errors

T = TypeVar("T")
MAX_GROUP = 32
"""Writes in one transaction at most: the loop answers nothing else while it runs."""
TURNS = 3
"""Turns of the event loop a group waits for more writes, while each turn brings some: a
request that arrives reaches the group in two (its bytes read, then its task run)."""


@dataclass(frozen=True)
class _Waiting:
    run: Callable[..., Any]
    future: asyncio.Future[Any]


class GroupCommit:
    """The short writes of one event loop waiting for their group's commit."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waiting: list[_Waiting] = []
        self.commits = 0
        """Commits shared by more than one write."""
        self.writes = 0
        """Writes stored by those commits."""

    def add(self, run: Callable[..., T]) -> asyncio.Future[T]:
        """Queue ``run`` (called with ``connection``: the group's, or ``None`` to write
        alone); its answer, or its error, once its group is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self.waiting:
            loop.call_soon(self._gather, 1, TURNS)
        self.waiting.append(_Waiting(run, future))
        return future

    def _gather(self, seen: int, turns: int) -> None:
        """Let the loop turn again while writes keep joining (``seen`` had when it last
        turned; at most ``turns`` more), then run the group."""
        size = len(self.waiting)
        if seen < size < MAX_GROUP and turns:
            asyncio.get_running_loop().call_soon(self._gather, size, turns - 1)
            return
        group, self.waiting = self.waiting[:MAX_GROUP], self.waiting[MAX_GROUP:]
        if self.waiting:
            asyncio.get_running_loop().call_soon(self._gather, len(self.waiting), TURNS)
        group = [w for w in group if not w.future.done()]  # its client went away
        if len(group) == 1:
            _alone(group[0])
        elif group:
            self._together(group)

    def _together(self, group: list[_Waiting]) -> None:
        """Run ``group`` in one transaction and answer each once it is committed."""
        done: list[tuple[_Waiting, bool, Any]] = []
        try:
            with storage_errors(), self.store.grouped() as connection:
                for waiting in group:
                    try:
                        done.append((waiting, True, waiting.run(connection=connection)))
                    except (StorageFailure, ReadOnlyDatabase):  # the database failed
                        raise
                    except Exception as err:  # its own: its savepoint is rolled back
                        done.append((waiting, False, err))
        except BaseException as err:
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(
                        err if isinstance(err, Exception) else StorageFailure(repr(err))
                    )
            if not isinstance(err, Exception):
                raise
            return
        self.commits += 1
        self.writes += len(group)
        for waiting, ok, value in done:
            _answer(waiting, ok, value)


def _alone(waiting: _Waiting) -> None:
    """Run ``waiting`` in a transaction of its own and answer it."""
    try:
        result = waiting.run(connection=None)
    except Exception as err:
        _answer(waiting, False, err)
        return
    _answer(waiting, True, result)


def _answer(waiting: _Waiting, ok: bool, value: Any) -> None:
    """Give ``waiting`` its result (``ok``) or error, unless its client went away."""
    if not waiting.future.done():
        if ok:
            waiting.future.set_result(value)
        else:
            waiting.future.set_exception(value)
