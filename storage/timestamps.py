"""Timezone-aware UTC timestamps in both databases.

PostgreSQL stores ``timestamptz``. SQLite has no time type, so it stores a fixed-width
ISO 8601 text in UTC, which sorts in time order. A naive datetime is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from casework.storage.errors import MalformedRow


def as_utc(moment: datetime, what: str = "timestamp") -> datetime:
    """``moment`` in UTC; a naive datetime raises ``ValueError`` naming ``what``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """The canonical text of an aware instant: UTC, microseconds, explicit offset (as
    ``isoformat(timespec="microseconds")`` writes it, by orjson at a fifth of the cost)."""
    global _last_iso
    last = _last_iso
    if last[0] is moment:  # a write formats its one instant several times
        return last[1]
    utc = moment if moment.tzinfo is UTC else as_utc(moment)
    text = orjson.dumps(utc).decode()  # '"2026-01-05T01:00:00[.123456]+00:00"'
    # orjson leaves out zero microseconds
    text = text[1:-1] if utc.microsecond else f"{text[1:20]}.000000{text[20:-1]}"
    _last_iso = (moment, text)
    return text


_last_iso: tuple[datetime | None, str] = (None, "")
"""The instant :func:`iso` formatted last and its text: an event's time, as its hash,
its row and its case's row each take it (the instant is held, so no other object can
take its identity; the pair is replaced whole, so threads read a consistent one)."""


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime column; naive values are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return iso(value)
        return as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:  # tampering or a broken copy: verify names the case
                moment = None
            if moment is None or moment.tzinfo is None:  # casework stores every offset
                raise MalformedRow(f"a stored time does not parse: {value[:64]!r}")
            return moment
        return as_utc(value)
