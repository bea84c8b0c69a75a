"""Pages of cases: a cursor names the last case of a page, the next page starts after it.

A cursor is opaque to clients: URL-safe base64 of the case's received time and id, so a
page continues in the same order however many cases are opened meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.records import CaseRecord
from workflow.errors import InvalidInput

MAX_PAGE = 500
"""The most cases one page holds."""


@dataclass(frozen=True)
class Page:
    """Cases of one page and the cursor of the next (``None`` on the last page)."""

    items: list[CaseRecord]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        """``{"items": [...], "next_cursor": ...}``."""
        return {"items": [c.to_json() for c in self.items], "next_cursor": self.next_cursor}


def cursor_after(case: CaseRecord) -> str:
    """The cursor of the page that follows ``case``."""
    text = f"{case.received_at.isoformat()}|{case.id}"
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def position(cursor: str) -> tuple[datetime, str]:
    """Where a cursor continues: (received time, case id); :class:`InvalidInput` if it
    is not one this module made."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        received, _, case_id = base64.urlsafe_b64decode(padded).decode("utf-8").partition("|")
        moment = datetime.fromisoformat(received)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one a list returned", field="cursor") from None
    if moment.tzinfo is None or not case_id:
        raise InvalidInput("cursor is not one a list returned", field="cursor")
    return moment, case_id


def page_limit(limit: int | None, default: int = 50) -> int:
    """A page size from 1 to :data:`MAX_PAGE` (``default`` when not given)."""
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}", field="limit")
    return limit
