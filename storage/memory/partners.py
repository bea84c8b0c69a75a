"""``store.partners`` and ``store.attachments`` in memory: partners, dispatched jobs,
evidence files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.storage.errors import StorageError
from casework.storage.memory.rows import event_records, utc_times
from casework.storage.memory.tx import UNJOINABLE, Role
from casework.storage.records import CaseRecord, JobCount, PartnerRecord
from casework.storage.timestamps import as_utc

if TYPE_CHECKING:
    from sqlalchemy import Connection


class MemoryPartners(Role):
    """``store.partners`` in memory: partners and the jobs dispatched to them."""

    def add(self, partner: PartnerRecord) -> bool:
        with self._writing() as rows:
            if partner.id in rows.partners:
                return False
            rows.partners[partner.id] = utc_times(partner)
        return True

    def registered(self) -> list[PartnerRecord]:
        return [p for _, p in sorted(self._rows.partners.items())]

    def add_jobs(self, rows: Sequence[Mapping[str, Any]]) -> int:
        with self._writing() as tables:
            tables.jobs.extend({**r, "done_at": as_utc(r["done_at"])} for r in rows)
        return sum(int(r["jobs"]) for r in rows)

    def job_counts(self, start: datetime, end: datetime) -> list[JobCount]:
        start, end = as_utc(start), as_utc(end)
        totals: dict[tuple[str, str, str | None, str | None], int] = {}
        for job in self._rows.jobs:
            if start <= job["done_at"] < end:
                group = (job["kind"], job["branch"], job.get("category"), job.get("partner"))
                totals[group] = totals.get(group, 0) + int(job["jobs"])

        def order(group: tuple[str, str, str | None, str | None]) -> tuple[Any, ...]:
            kind, branch, category, partner = group
            return (branch, category is not None, category or "", partner is not None,
                    partner or "", kind)  # fmt: skip

        return [JobCount(*group, totals[group]) for group in sorted(totals, key=order)]


class MemoryAttachments(Role):
    """``store.attachments`` in memory: evidence files by digest."""

    def put(
        self, digest: str, content: bytes, at: datetime, connection: Connection | None = None
    ) -> bool:
        if connection is not None:
            raise StorageError(UNJOINABLE)
        as_utc(at)
        with self._writing() as rows:
            if digest in rows.attachments:
                return False
            rows.attachments[digest] = bytes(content)
        return True

    def get(self, digest: str) -> bytes | None:
        return self._rows.attachments.get(digest)

    def cases(self, digest: str) -> list[CaseRecord]:
        rows = self._rows
        return [
            rows.cases[case_id]
            for case_id in sorted(rows.events)
            if any(_attaches(e.data, digest) for e in event_records(rows, case_id))
        ]


def _attaches(data: Any, digest: str) -> bool:
    return isinstance(data, dict) and data.get("digest") == digest
