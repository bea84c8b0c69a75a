"""Finding cases as a person asks for them: by an id prefix, a customer, a phone or
contact, a serial number or an order number.

The customer and the contact are found among the personal values (``personal_data``,
indexed by field and value), never in the hashed history; a phone number is found
with its spaces, dashes and ``+`` left out on both sides. Serial and order numbers are
the case's attributes. An erased value is gone, so it finds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, or_, select

from casework.storage.records import CaseRecord

if TYPE_CHECKING:
    from casework.storage.transition_sql import TransitionSQL

SEARCHED_ATTRIBUTES = ("serial_number", "order_number")
"""The attributes a search matches exactly."""
MIN_DIGITS = 6
"""A query with at least this many digits also finds the contacts that contain them."""
MIN_ID_PREFIX = 4
"""The shortest id prefix a search tries."""


def _digits_only(column: ColumnElement[str]) -> ColumnElement[str]:
    for mark in (" ", "-", "+", "(", ")"):
        column = func.replace(column, mark, "")
    return column


class CaseSearch:
    """The case log's search (a part of :class:`casework.storage.case_store.SqlCaseLog`)."""

    sql: TransitionSQL

    def find(
        self, asked: str, limit: int, branches: Sequence[str] | None = None
    ) -> list[CaseRecord]:
        """Up to ``limit`` cases that ``asked`` names (the latest received first); only
        cases of ``branches`` when given."""
        from casework.storage.tables import cases_table as cases
        from casework.storage.tables import personal_table as personal

        with self.sql.reading() as conn:
            text = asked.strip()
            if not text:
                return []
            named = select(personal.c.case_id).where(
                personal.c.field.in_(("customer", "contact")), personal.c.value == text
            )
            conditions: list[ColumnElement[bool]] = [cases.c.id.in_(named)]
            digits = re.sub(r"[\s\-+()]", "", text)
            if digits.isdigit() and len(digits) >= MIN_DIGITS:
                like = select(personal.c.case_id).where(
                    personal.c.field == "contact",
                    _digits_only(personal.c.value).like(f"%{digits}%"),
                )
                conditions.append(cases.c.id.in_(like))
            if len(text) >= MIN_ID_PREFIX and re.fullmatch(r"[0-9a-fA-F]+", text):
                conditions.append(cases.c.id.like(text.lower() + "%"))
            for name in SEARCHED_ATTRIBUTES:
                conditions.append(cases.c.attributes[name].as_string() == text)
            query = select(cases).where(or_(*conditions))
            if branches is not None:
                query = query.where(cases.c.branch.in_(list(branches)))
            query = query.order_by(cases.c.received_at.desc(), cases.c.id).limit(limit)
            return [CaseRecord.from_row(row) for row in conn.execute(query)]
