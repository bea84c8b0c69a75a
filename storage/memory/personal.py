"""``store.personal`` in memory: personal values, each customer's secret, erasure."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from casework.storage.chain import parse_json
from casework.storage.errors import WriteConflict
from casework.storage.memory.tx import Role, rows_of
from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.personal_sql import ERASED_TEXT, PENDING_KEY, scrub, scrub_text
from casework.storage.records import DUE_STATUSES, CaseRecord
from casework.storage.timestamps import as_utc, iso
from casework.storage.tx import Tx


class MemoryPersonalData(Role):
    """``store.personal`` in memory: personal values, each customer's secret, erasure."""

    def subject_for(
        self, tx: Tx, customer: str, new: tuple[str, str], now: datetime
    ) -> tuple[str, str]:
        cursor = rows_of(tx)
        theirs = [
            subject
            for (_, name), (subject, value) in cursor.personal.items()
            if name == "customer" and value == customer and subject in cursor.subjects
        ]
        if theirs:
            latest = max(theirs, key=lambda s: cursor.subjects[s][1])
            return latest, cursor.subjects[latest][0]
        if new[0] in cursor.subjects:
            raise WriteConflict(f"subject {new[0]!r} exists")
        cursor.subjects[new[0]] = (new[1], as_utc(now))
        return new

    def put(self, tx: Tx, case_id: str, subject_id: str, values: Mapping[str, str]) -> None:
        cursor = rows_of(tx)
        cursor.case_must_exist(case_id, "a personal value")
        if subject_id not in cursor.subjects:
            raise WriteConflict(f"subject {subject_id!r} does not exist")
        for name, value in values.items():
            if (case_id, name) in cursor.personal:
                raise WriteConflict(f"case {case_id!r} keeps a {name} already")
            cursor.personal[case_id, name] = (subject_id, value)

    def subjects_named(self, tx: Tx, customer: str) -> list[str]:
        cursor = rows_of(tx)
        return sorted(
            {
                s
                for (_, name), (s, v) in cursor.personal.items()
                if (name, v) == ("customer", customer)
            }
        )

    def values_of(self, tx: Tx, subjects: Sequence[str]) -> dict[str, dict[str, str]]:
        cursor = rows_of(tx)
        found: dict[str, dict[str, str]] = {}
        for (case_id, name), (subject, value) in sorted(cursor.personal.items()):
            if subject in subjects:
                found.setdefault(case_id, {})[name] = value
        return found

    def erase(
        self, tx: Tx, subjects: Sequence[str], cases: Sequence[str], values: Sequence[str],
        now: datetime,
    ) -> None:  # fmt: skip
        cursor = rows_of(tx)
        if not subjects:
            return
        cursor.personal = {k: v for k, v in cursor.personal.items() if v[0] not in subjects}
        cursor.subjects = {k: v for k, v in cursor.subjects.items() if k not in subjects}
        cursor.outbox = {  # messages to the customer not sent yet are never sent
            i: m for i, m in cursor.outbox.items()
            if not (m.kind == NOTIFY_KIND and m.status in DUE_STATUSES and m.case_id in cases)
        }  # fmt: skip
        since = cursor.meta.get(PENDING_KEY, iso(now)).split(" ", 1)[0]
        cursor.meta[PENDING_KEY] = f"{since} {secrets.token_hex(8)}"
        gone = {v for v in values if v}
        if not gone:
            return
        for mail in cursor.outbox.values():
            if mail.case_id in cases:
                body, recipients = scrub(mail.body, gone), scrub(mail.recipients, gone)
                mail.body = mail.body if body is None else body
                mail.recipients = mail.recipients if recipients is None else recipients
                mail.last_error = scrub_text(mail.last_error, gone) or mail.last_error
        for key, answer in cursor.answers.items():
            body = scrub(answer.body, gone, cases=set(cases))
            if body is not None:
                cursor.answers[key] = replace(answer, body=body)

    def expunge(self) -> str:
        """Nothing is kept in files: the pending mark is cleared."""
        if PENDING_KEY in self._rows.meta:
            with self._writing() as rows:
                del rows.meta[PENDING_KEY]
        return "nothing to compact: the memory store keeps no files"

    def compaction_pending(self) -> datetime | None:
        value = self._rows.meta.get(PENDING_KEY)
        return None if value is None else as_utc(datetime.fromisoformat(value.split(" ")[0]))

    def rows(
        self, case_id: str | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, tuple[str, str]]]]:
        rows = self._rows
        cases = [
            (c.id, c.customer, c.contact, dict(c.attributes), dict(c.facts),
             parse_json(rows.events[c.id][0]["data"]))
            for c in sorted(rows.cases.values(), key=lambda c: c.id)
            if c.event_format == 2 and case_id in (None, c.id)
        ]  # fmt: skip
        values: dict[str, dict[str, tuple[str, str]]] = {}
        for (of_case, name), (subject, value) in rows.personal.items():
            if case_id in (None, of_case):
                secret = rows.subjects[subject][0] if subject in rows.subjects else ""
                values.setdefault(of_case, {})[name] = (value, secret)
        return cases, values

    def resting_customers(self, resting: Sequence[str], before: datetime) -> list[str]:
        before = as_utc(before)
        by_customer: dict[str, list[CaseRecord]] = {}
        for case in self._rows.cases.values():
            if case.customer != ERASED_TEXT:
                by_customer.setdefault(case.customer, []).append(case)
        return sorted(
            customer
            for customer, cases in by_customer.items()
            if all(c.event_format == 2 and c.state in resting and c.last_event_at < before
                   for c in cases)
        )  # fmt: skip
