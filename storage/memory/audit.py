"""``store.audit`` in memory: whole-history streams from one moment."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from casework.storage.checkpoint_sql import Heads
from casework.storage.memory.rows import CASE_TIMES, EVENT_TIMES
from casework.storage.memory.tx import Role
from casework.storage.records import CASE_FIELDS, EVENT_FIELDS, CaseRecord, Streams
from casework.storage.timestamps import as_utc, iso


class MemoryAuditStreams(Role):
    """``store.audit`` in memory: whole-history streams from one moment."""

    def replication(self) -> dict[str, Any] | None:
        return None

    @contextmanager
    def _snapshot(
        self,
        case_ids: Sequence[str] | None,
        id_range: tuple[str | None, str | None],
        received: tuple[datetime, datetime] | None,
    ) -> Iterator[Streams]:
        rows = self._rows
        low, high = id_range

        def wanted(case: CaseRecord) -> bool:
            if received is not None:
                return as_utc(received[0]) <= case.received_at < as_utc(received[1])
            if case_ids is not None:
                return case.id in case_ids
            return (low is None or case.id >= low) and (high is None or case.id < high)

        cases = sorted((c for c in rows.cases.values() if wanted(c)), key=lambda c: c.id)
        yield Streams(
            cases=iter([_case_tuple(c) for c in cases]),
            events=iter([_event_tuple(e) for c in cases for e in rows.events[c.id]]),
            deadlines=iter([
                (d.case_id, *d.key, iso(d.due_at))
                for d in sorted(rows.deadlines.values(), key=lambda d: (d.case_id, d.id))
                if d.status == "pending" and wanted(rows.cases[d.case_id])
            ]),
        )  # fmt: skip

    def snapshot(
        self,
        case_ids: Sequence[str] | None = None,
        id_range: tuple[str | None, str | None] = (None, None),
        received: tuple[datetime, datetime] | None = None,
    ) -> AbstractContextManager[Streams]:
        return self._snapshot(case_ids, id_range, received)

    def middle_case_id(self, min_events: int = 0) -> str | None:
        if sum(map(len, self._rows.events.values())) < min_events:
            return None
        ids = sorted(self._rows.cases)
        return None if len(ids) < 2 else ids[len(ids) // 2]

    @contextmanager
    def _exported(
        self, case_id: str | None, since: str | None, until: str | None
    ) -> Iterator[Iterator[tuple[Any, ...]]]:
        rows = self._rows
        start = None if since is None else as_utc(datetime.fromisoformat(since))
        end = None if until is None else as_utc(datetime.fromisoformat(until))
        found = []
        for case in sorted(rows.cases.values(), key=lambda c: c.id):
            if case_id not in (None, case.id):
                continue
            for event in rows.events[case.id]:
                at = event["occurred_at"]
                if (start is None or at >= start) and (end is None or at < end):
                    personal = None
                    if event["seq"] == 1 and case.event_format == 2:
                        kept = {n: v for (c, n), (_, v) in rows.personal.items() if c == case.id}
                        personal = json.dumps(kept, ensure_ascii=False) if kept else None
                    found.append((*_event_tuple(event), case.machine, case.machine_version,
                                  case.event_format, personal))  # fmt: skip
        yield iter(found)

    def export_rows(
        self,
        case_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AbstractContextManager[Iterator[tuple[Any, ...]]]:
        return self._exported(case_id, since, until)

    @contextmanager
    def _heads(self, at: datetime) -> Iterator[Heads]:
        at = as_utc(at)
        rows = self._rows
        recorded = [
            (e["case_id"], e["seq"], e["hash"])
            for case_id in sorted(rows.events)
            for e in rows.events[case_id]
            if e["recorded_at"] <= at
        ]
        yield Heads(_Fetched(recorded))

    def case_heads(self, at: datetime) -> AbstractContextManager[Heads]:
        return self._heads(at)


class _Fetched:
    """Rows handed out as a driver cursor's ``fetchmany`` would."""

    def __init__(self, rows: list[tuple[str, int, str]]) -> None:
        self._rows = rows

    def fetchmany(self, size: int) -> list[tuple[str, int, str]]:
        batch, self._rows = self._rows[:size], self._rows[size:]
        return batch


def _case_tuple(case: CaseRecord) -> tuple[Any, ...]:
    """A case as a snapshot streams it: times as canonical text, JSON decoded."""
    return tuple(
        iso(v) if name in CASE_TIMES else copy.deepcopy(v) if isinstance(v, Mapping) else v
        for name in CASE_FIELDS
        for v in (getattr(case, name),)
    )


def _event_tuple(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """An event as a snapshot streams it: times as canonical text, data as stored."""
    return tuple(iso(event[n]) if n in EVENT_TIMES else event[n] for n in EVENT_FIELDS)
