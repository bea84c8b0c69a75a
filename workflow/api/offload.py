"""Where an endpoint's work runs: on the event loop or on threads, as the database suits.

SQLite works in microseconds on a local file and takes one writer at a time: a short
request (one case read or written) runs on the event loop itself, which spares it two
thread hand-overs (more than the work costs) and queues writers without waking them
in turn. A long one (a list, verification, metrics) runs on threads. PostgreSQL waits
on the network: every request runs on a pool of threads, writing in parallel.
Health checks (``/readyz``) have a thread of their own, so a burst queued on the
others never keeps them waiting.

On SQLite a short write that must wait for another process's write lock (the worker's
batch, a command) holds the event loop for that wait, at most the busy timeout. Short
writes that can share a transaction (``grouped``) share one commit with those that
queued beside them (:mod:`casework.workflow.api.group_commit`); on PostgreSQL, whose
server groups commits itself, they run as short work.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from casework.workflow.api.group_commit import GroupCommit
from casework.workflow.engine import Engine

T = TypeVar("T")

THREADS = {"sqlite": 4, "postgresql": 16}
"""Threads per process for the work that leaves the event loop."""


class Offload:
    """The threads of one engine, and which work stays on the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.sqlite = engine.db.dialect.name == "sqlite"
        self.pool = ThreadPoolExecutor(
            THREADS["sqlite" if self.sqlite else "postgresql"], thread_name_prefix="casework"
        )
        self.health = ThreadPoolExecutor(1, thread_name_prefix="casework-health")
        self.group = GroupCommit(engine.context.store) if self.sqlite else None

    async def run(self, kind: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func``: a ``short`` one on the event loop on SQLite, a ``grouped`` one
        there too, in a transaction shared with the writes queued beside it (``func``
        takes its ``connection``), a ``health`` check on its own thread, else on the
        pool's threads."""
        if kind == "grouped":
            if self.group is not None:
                return await self.group.add(functools.partial(func, *args, **kwargs))
            kind = "short"
        if kind == "short" and self.sqlite:
            return func(*args, **kwargs)
        pool = self.health if kind == "health" else self.pool
        return await asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(func, *args, **kwargs)
        )

    def close(self) -> None:
        """Stop the threads once their work is done."""
        self.pool.shutdown(wait=True)
        self.health.shutdown(wait=True)


_OFFLOADS: weakref.WeakKeyDictionary[Engine, Offload] = weakref.WeakKeyDictionary()


def offload_for(engine: Engine) -> Offload:
    """The threads of ``engine`` (made on first use)."""
    found = _OFFLOADS.get(engine)
    if found is None:
        found = _OFFLOADS[engine] = Offload(engine)
    return found
