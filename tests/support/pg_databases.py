"""Throwaway PostgreSQL databases made ahead and dropped behind on threads of their own,
so that the server copies the template while a test runs instead of before it."""

from __future__ import annotations

import queue
import threading
import uuid

import psycopg
from psycopg import sql

AHEAD = 2
"""How many databases wait ready at most (one more may be under way)."""


class Throwaways:
    """Copies of ``template`` (``STRATEGY WAL_LOG``: no checkpoint per copy, as
    ``FILE_COPY`` makes) on the server at ``admin``, one per :meth:`take`."""

    def __init__(self, admin: str, template: str) -> None:
        self.admin, self.template = admin, template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=AHEAD)
        self._dropping: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self.failed_drops: list[str] = []
        self._maker = threading.Thread(target=self._make, name="pg-maker", daemon=True)
        self._dropper = threading.Thread(target=self._drop, name="pg-dropper", daemon=True)
        self._maker.start()
        self._dropper.start()

    def take(self) -> str:
        """The name of a new database no one else has used."""
        got = self._ready.get(timeout=300)
        if isinstance(got, BaseException):
            raise RuntimeError("making a throwaway database failed") from got
        return got

    def give_back(self, name: str) -> None:
        """Drop ``name`` (soon, on the dropping thread)."""
        self._dropping.put(name)

    def close(self) -> None:
        """Stop making, drop what is left, and wait until every drop is done."""
        self._stop.set()
        while self._maker.is_alive():
            self._drain()
            self._maker.join(timeout=0.1)
        self._drain()
        self._dropping.put(None)
        self._dropper.join(timeout=300)

    def _drain(self) -> None:
        while True:
            try:
                got = self._ready.get_nowait()
            except queue.Empty:
                return
            if isinstance(got, str):
                self._dropping.put(got)

    def _make(self) -> None:
        while not self._stop.is_set():
            name = f"casework_t_{uuid.uuid4().hex[:12]}"
            try:
                self._run(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY WAL_LOG").format(
                        sql.Identifier(name), sql.Identifier(self.template)
                    )
                )
            except BaseException as err:  # told to the next take()
                self._ready.put(err)
                return
            while True:  # a bounded put, so that close() is heard
                try:
                    self._ready.put(name, timeout=0.1)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        self._dropping.put(name)
                        return

    def _drop(self) -> None:
        while (name := self._dropping.get()) is not None:
            try:
                self._run(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            except psycopg.Error as err:  # the server went away: nothing left to drop
                self.failed_drops.append(f"{name}: {err}")

    def _run(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(statement)
