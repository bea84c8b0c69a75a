"""The storage port on SQLite and PostgreSQL, by role.

Each role is the class of the module that holds its SQL: the case log
(:mod:`casework.storage.case_store`), deadlines (:mod:`casework.storage.deadline_sql`),
the outbox (:mod:`casework.storage.outbox_store`), personal data
(:mod:`casework.storage.personal_sql`), webhooks (:mod:`casework.storage.webhook_store`);
and, built when first asked for so that a process that only fires events never loads
their table classes, access (:mod:`casework.storage.access_store`), service state
(:mod:`casework.storage.service_store`), partners and attachments
(:mod:`casework.storage.partner_store`), audit streams
(:mod:`casework.storage.checkpoint_sql`). They share one
:class:`~casework.storage.transition_sql.TransitionSQL`: the engine's connections, its
write transactions and the translation of driver errors.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from casework.storage.case_store import SqlCaseLog
from casework.storage.deadline_sql import SqlDeadlines
from casework.storage.outbox_store import SqlOutbox
from casework.storage.personal_sql import SqlPersonalData
from casework.storage.transition_sql import TransitionSQL
from casework.storage.tx import Tx
from casework.storage.webhook_store import SqlWebhooks

if TYPE_CHECKING:
    from casework.storage.access_store import SqlAccess
    from casework.storage.checkpoint_sql import SqlAuditStreams
    from casework.storage.partner_store import SqlAttachments, SqlPartners
    from casework.storage.port import Store
    from casework.storage.service_store import SqlService


class SqlStore:
    """:class:`casework.storage.port.Store` on one SQLAlchemy engine. Safe to share between
    threads."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._sql = sql = TransitionSQL(db)
        self.cases = SqlCaseLog(sql)
        self.deadlines = SqlDeadlines(sql)
        self.outbox = SqlOutbox(sql)
        self.personal = SqlPersonalData(sql)
        self.webhooks = SqlWebhooks(sql)

    @cached_property
    def access(self) -> SqlAccess:
        """Tokens, kept answers, console sessions."""
        from casework.storage.access_store import SqlAccess

        return SqlAccess(self._sql)

    @cached_property
    def service(self) -> SqlService:
        """Heartbeats and figures."""
        from casework.storage.service_store import SqlService

        return SqlService(self._sql)

    @cached_property
    def partners(self) -> SqlPartners:
        """Partners and dispatched jobs."""
        from casework.storage.partner_store import SqlPartners

        return SqlPartners(self._sql)

    @cached_property
    def attachments(self) -> SqlAttachments:
        """Evidence files."""
        from casework.storage.partner_store import SqlAttachments

        return SqlAttachments(self._sql)

    @cached_property
    def audit(self) -> SqlAuditStreams:
        """Whole-history streams."""
        from casework.storage.checkpoint_sql import SqlAuditStreams

        return SqlAuditStreams(self._sql)

    def transaction(self, connection: Connection | None = None) -> AbstractContextManager[Tx]:
        """A write transaction (on a host's ``connection``: a savepoint in its transaction)."""
        return self._sql.transaction() if connection is None else self._sql.joined(connection)

    def grouped(self) -> AbstractContextManager[Connection | None]:
        """One write transaction for several calls that join it by its connection."""
        return self._sql.grouped()

    def unjoinable(self, connection: Connection) -> str | None:
        """Why a write cannot join ``connection``'s transaction, if it cannot."""
        return self._sql.unjoinable(connection)

    def held(self) -> int:
        """The connections the store holds now (the pool's lent out, and on SQLite the
        writer it keeps while a write transaction runs on it): 0 between calls."""
        return self._sql.held()

    def close(self) -> None:
        """Release every connection (on SQLite the writer kept between calls)."""
        self._sql.close()

    def database_id(self) -> str | None:
        """The database's random identity, given when its schema was created."""
        from sqlalchemy import select

        from casework.storage.tables import meta_table

        with self._sql.reading() as conn:
            query = select(meta_table.c.value).where(meta_table.c.key == "database_id")
            value: str | None = conn.execute(query).scalar()
            return value

    def server_time(self) -> datetime | None:
        """The database server's clock now (``None`` on SQLite: the host's own)."""
        from casework.storage.server_clock import server_time

        with self._sql.translating():
            return server_time(self.db)


if TYPE_CHECKING:

    def _is_a_store(db: Engine) -> Store:
        return SqlStore(db)  # mypy holds SqlStore to the port here
