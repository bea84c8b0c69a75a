"""Partners and their dispatched jobs; evidence files kept by digest: through SQLAlchemy
Core."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, cast, func, insert, select

from casework.storage.errors import MalformedRow
from casework.storage.records import CaseRecord, JobCount, PartnerRecord
from casework.storage.tables import attachments_table as attachments
from casework.storage.tables import cases_table as cases
from casework.storage.tables import events_table as events
from casework.storage.tables import jobs_table as jobs
from casework.storage.tables import partners_table as partners
from casework.storage.transition_sql import TransitionSQL


class SqlPartners:
    """:class:`casework.storage.port.Partners` on SQLite and PostgreSQL."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql

    def add(self, partner: PartnerRecord) -> bool:
        """Store a partner; ``False`` if one has that id already."""
        with self.sql.writing() as conn:
            if conn.execute(select(partners.c.id).where(partners.c.id == partner.id)).first():
                return False
            conn.execute(
                insert(partners).values(
                    id=partner.id,
                    name=partner.name,
                    kind=partner.kind,
                    branch=partner.branch,
                    created_at=partner.created_at,
                )
            )
            return True

    def registered(self) -> list[PartnerRecord]:
        """Every partner, by id."""
        with self.sql.reading() as conn:
            rows = conn.execute(select(partners).order_by(partners.c.id))
            return [PartnerRecord(r.id, r.name, r.kind, r.branch, r.created_at) for r in rows]

    def add_jobs(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store dispatched-job rows (kind, branch, category, partner, done_at, jobs,
        source); how many jobs they add up to."""
        with self.sql.writing() as conn:
            if rows:
                conn.execute(insert(jobs), [dict(r) for r in rows])
            return sum(int(r["jobs"]) for r in rows)

    def job_counts(self, start: datetime, end: datetime) -> list[JobCount]:
        """Jobs done in ``[start, end)`` summed by kind, branch, category and partner."""
        with self.sql.reading() as conn:
            query = (
                select(jobs.c.kind, jobs.c.branch, jobs.c.category, jobs.c.partner,
                       func.sum(jobs.c.jobs).label("total"))
                .where(jobs.c.done_at >= start, jobs.c.done_at < end)
                .group_by(jobs.c.kind, jobs.c.branch, jobs.c.category, jobs.c.partner)
                .order_by(jobs.c.branch, jobs.c.category, jobs.c.partner, jobs.c.kind)
            )  # fmt: skip
            return [
                JobCount(r.kind, r.branch, r.category, r.partner, int(r.total))
                for r in conn.execute(query)
            ]


class SqlAttachments:
    """:class:`casework.storage.port.Attachments` on SQLite and PostgreSQL."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql

    def put(
        self, digest: str, content: bytes, at: datetime, connection: Connection | None = None
    ) -> bool:
        """Keep a file under its digest; ``False`` if it is kept already (inside the host's
        transaction on ``connection``, in a savepoint, if given)."""
        if connection is not None:
            from casework.storage.table_prefix import translated

            with (
                self.sql.translating(),
                translated(connection, self.sql.engine) as joined,
                joined.begin_nested(),
            ):
                return _put(joined, digest, content, at)
        with self.sql.writing() as conn:
            return _put(conn, digest, content, at)

    def get(self, digest: str) -> bytes | None:
        """The file kept under ``digest``, if any; :class:`MalformedRow` if its row is
        malformed (content that is not bytes, a size that is not the content's)."""
        with self.sql.reading() as conn:
            row = conn.execute(
                select(attachments.c.content, attachments.c.size).where(
                    attachments.c.digest == digest
                )
            ).first()
            if row is None:
                return None
            if not isinstance(row.content, bytes | memoryview):
                raise MalformedRow(
                    f"attachment {digest[:16]} is stored as {type(row.content).__name__}, not bytes"
                )
            content = bytes(row.content)
            if row.size != len(content) and hashlib.sha256(content).hexdigest() == digest:
                # (content that no longer has its digest is the caller's to name as altered)
                raise MalformedRow(
                    f"attachment {digest[:16]}: its size column says {row.size!r}, "
                    f"its content has {len(content)} bytes"
                )
            return content

    def cases(self, digest: str) -> list[CaseRecord]:
        """The cases with an event whose data names ``digest`` (the file it attached)."""
        with self.sql.reading() as conn:
            naming = select(events.c.case_id, events.c.data).where(
                cast(events.c.data, Text).contains(digest, autoescape=True)
            )
            ids = sorted({row.case_id for row in conn.execute(naming) if _names(row.data, digest)})
            if not ids:
                return []
            query = select(cases).where(cases.c.id.in_(ids)).order_by(cases.c.id)
            return [CaseRecord.from_row(row) for row in conn.execute(query)]


def _put(conn: Connection, digest: str, content: bytes, at: datetime) -> bool:
    """Keep a file under its digest; ``False`` if it is kept already."""
    if conn.execute(select(attachments.c.digest).where(attachments.c.digest == digest)).first():
        return False
    conn.execute(
        insert(attachments).values(digest=digest, size=len(content), content=content,
                                   created_at=at)
    )  # fmt: skip
    return True


def _names(data: Any, digest: str) -> bool:
    parsed = json.loads(data) if isinstance(data, str) else data
    return isinstance(parsed, dict) and parsed.get("digest") == digest
