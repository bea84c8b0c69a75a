"""MemoryStore: the roles together, and what is the whole store's (transactions, identity)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING

from casework.storage.errors import StorageError
from casework.storage.memory.access import MemoryAccess, MemoryService
from casework.storage.memory.audit import MemoryAuditStreams
from casework.storage.memory.cases import MemoryCaseLog
from casework.storage.memory.deadlines import MemoryDeadlines
from casework.storage.memory.outbox import MemoryOutbox
from casework.storage.memory.partners import MemoryAttachments, MemoryPartners
from casework.storage.memory.personal import MemoryPersonalData
from casework.storage.memory.rows import Box, Rows
from casework.storage.memory.tx import UNJOINABLE, MemoryTx
from casework.storage.memory.webhooks import MemoryWebhooks
from casework.storage.tx import Tx

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from casework.storage.port import Store


class MemoryStore:
    """:class:`casework.storage.port.Store` in this process's memory. Safe to share between
    threads."""

    def __init__(self, *, read_only: bool = False, box: Box | None = None) -> None:
        self._box = box or Box()
        self.read_only = read_only
        roles = (self._box, self._writing)
        self.cases = MemoryCaseLog(*roles)
        self.deadlines = MemoryDeadlines(*roles)
        self.outbox = MemoryOutbox(*roles)
        self.personal = MemoryPersonalData(*roles)
        self.access = MemoryAccess(*roles)
        self.webhooks = MemoryWebhooks(*roles)
        self.service = MemoryService(*roles)
        self.partners = MemoryPartners(*roles)
        self.attachments = MemoryAttachments(*roles)
        self.audit = MemoryAuditStreams(*roles)

    def twin(self, *, read_only: bool) -> MemoryStore:
        """Another store on the same rows (one that refuses writes, if ``read_only``)."""
        return MemoryStore(read_only=read_only, box=self._box)

    def held(self) -> int:
        """1 while a write transaction holds the rows, else 0 (no connection to leave
        checked out, but a transaction left open would block every writer)."""
        return int(self._box.writer.locked())

    @property
    def _rows(self) -> Rows:
        """The committed rows: read them, never change them."""
        return self._box.rows

    @contextmanager
    def _writing(self) -> Iterator[Rows]:
        """A write transaction on a copy of the rows, put in their place on success."""
        if self.read_only:
            raise StorageError("the store refuses writes (read-only)", read_only=True)
        box = self._box
        if box.writing == threading.get_ident():  # it would wait for itself for ever
            raise StorageError("a write began inside a write transaction of the same thread")
        with box.writer:
            box.writing = threading.get_ident()
            try:
                working = copy.deepcopy(box.rows)
                yield working
                box.rows = working
            finally:
                box.writing = None

    def transaction(self, connection: Connection | None = None) -> AbstractContextManager[Tx]:
        if connection is not None:
            raise StorageError(UNJOINABLE)
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._writing() as rows:
            yield MemoryTx(rows)

    def grouped(self) -> AbstractContextManager[Connection | None]:
        return nullcontext(None)  # each call commits alone

    def unjoinable(self, connection: Connection) -> str | None:
        return UNJOINABLE

    def close(self) -> None:
        """Nothing to release."""

    def server_time(self) -> datetime | None:
        return None

    def database_id(self) -> str | None:
        return self._rows.meta.get("database_id")


if TYPE_CHECKING:

    def _is_a_store() -> Store:
        return MemoryStore()  # mypy holds MemoryStore to the port here
