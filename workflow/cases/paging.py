"""Pages of cases: a cursor names the last case of a page, the next page starts after it.

A cursor is opaque to clients: URL-safe base64 of the case's received time and id (and,
for a list in next-deadline order, that deadline), so a page continues in the same
order however many cases are opened meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from casework.storage.records import CaseRecord
from casework.workflow.errors import InvalidInput

MAX_PAGE = 500
"""The most cases one page holds."""


@dataclass(frozen=True)
class Page:
    """Cases of one page and the cursor of the next (``None`` on the last page)."""

    items: list[CaseRecord]
    next_cursor: str | None
    total: int | None = None
    """How many cases match in all, when the caller asked."""

    def to_json(self) -> dict[str, Any]:
        """``{"items": [...], "next_cursor": ...}``."""
        return {"items": [c.to_json() for c in self.items], "next_cursor": self.next_cursor}


def _encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def cursor_after(case: CaseRecord) -> str:
    """The cursor of the page that follows ``case`` in received order."""
    return _encoded(f"{case.received_at.isoformat()}|{case.id}")


def due_cursor_after(case: CaseRecord, due: datetime | None) -> str:
    """The cursor of the page that follows ``case`` (next due ``due``) in due order."""
    shown = "" if due is None else due.isoformat()
    return _encoded(f"due|{shown}|{case.received_at.isoformat()}|{case.id}")


Position = tuple[datetime, str] | tuple[datetime | None, datetime, str]
"""(received, id) in received order; (next due or ``None``, received, id) in due order."""


def position(cursor: str) -> Position:
    """Where a cursor continues; :class:`InvalidInput` if it is not one this module made."""
    wrong = InvalidInput("cursor is not one a list returned", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded).decode("utf-8").split("|")
        if len(parts) == 4 and parts[0] == "due":
            due = _instant(parts[1]) if parts[1] else None
            if not parts[3]:
                raise wrong
            return due, _instant(parts[2]), parts[3]
        if len(parts) != 2 or not parts[1]:
            raise wrong
        return _instant(parts[0]), parts[1]
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise wrong from None


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(text)
    return moment


def page_limit(limit: int | None, default: int = 50) -> int:
    """A page size from 1 to :data:`MAX_PAGE` (``default`` when not given)."""
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}", field="limit")
    return limit
