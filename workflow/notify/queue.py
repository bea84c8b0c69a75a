"""The notifications an event queues for the customer, in the event's own transaction.

Five moments tell the customer something: the case is opened (its number and when
to expect an answer), a visit is booked (the window, in the customer's zone), the
case waits for a part (the estimate), a visit was missed (an apology, the new
booking step) and the case is resolved (with the survey link). One outbox row of
kind ``notify`` per event, keyed by case and sequence number: an event queues it
once, whatever retries. The row holds no personal value: the contact is read from
the case when the message is sent, so an erased customer is never written to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from casework.machines.definition import ERASED_FACT, OPEN_EVENT
from casework.storage.chain import parse_json
from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.port import Store, Tx
from casework.storage.records import CaseRecord
from casework.workflow.mail.settings import is_address
from casework.workflow.notify.settings import CHANNELS, NotifySettings

PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
"""A telephone number a text message can go to: digits, spaces and dashes, an
optional leading +."""
TEMPLATES = ("opened", "visit_booked", "part_wait", "visit_missed", "resolved")
"""The moments a customer is told of, in the order a case meets them."""


_TOLD_BY: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    OPEN_EVENT: lambda _data: "opened",
    "book_visit": lambda _data: "visit_booked",
    "route": lambda data: "part_wait" if data.get("to") == "procurement" else None,
    "wait": lambda data: "part_wait" if data.get("reason") == "part" else None,
    "appointment_missed": lambda _data: "visit_missed",
    "resolve": lambda _data: "resolved",
}
"""Each event that may send a message, and which one it sends given its data."""
TELLING_EVENTS = frozenset(_TOLD_BY)
"""The events that may send a message; others are passed over without their data being
read."""


def template_of(event: str, data: Mapping[str, Any]) -> str | None:
    """Which message an event with ``data`` sends, if any."""
    told = _TOLD_BY.get(event)
    return None if told is None else told(data)


def channel_of(case: CaseRecord, settings: NotifySettings) -> str:
    """How the customer of ``case`` is told: its ``notify`` attribute, else the default."""
    chosen = case.attributes.get("notify")
    return chosen if chosen in CHANNELS else settings.channel


def language_of(case: CaseRecord, settings: NotifySettings) -> str:
    """The customer's language: the case's ``language`` attribute, else the default."""
    chosen = case.attributes.get("language")
    return chosen if chosen in ("zh", "en") else settings.language


def reachable(contact: str | None, channel: str) -> bool:
    """Whether ``contact`` is something ``channel`` can reach."""
    if contact is None or channel == "none":
        return False
    if channel == "email":
        return is_address(contact)
    return PHONE.fullmatch(contact.strip()) is not None


def _hours(case: CaseRecord) -> int | None:
    """The first-response target in whole hours (rounded up), if the case has one."""
    for clock in case.sla.get("clocks", ()):
        if clock.get("name") == "first_response" and clock.get("target_us"):
            return max(1, -(-int(clock["target_us"]) // 3_600_000_000))
    return None


def values_of(template: str, case: CaseRecord, data: Mapping[str, Any]) -> dict[str, Any]:
    """What a message needs beside the case number: no personal value."""
    if template == "opened":
        return {"hours": _hours(case)}
    if template == "visit_booked":
        return {"from": data.get("from"), "to": data.get("to")}
    if template == "part_wait":
        expected = data.get("promised") or data.get("expected")
        return {"expected": expected if isinstance(expected, str) else None}
    return {}


def queue_notifications(
    store: Store,
    tx: Tx,
    happened: Iterable[tuple[CaseRecord, Mapping[str, Any]]],
    now: datetime,
    settings: NotifySettings | None,
) -> int:
    """Queue a message to the customer for each (case after the event, event row) that
    tells them something; how many. Nothing for a customer without a contact the
    channel reaches, with ``notify=none``, or erased. Runs in the events' transaction."""
    if settings is None:
        return 0
    rows: list[dict[str, Any]] = []
    for case, record in happened:
        if record["event"] not in TELLING_EVENTS:
            continue
        raw = record.get("data")
        parsed = parse_json(raw) if isinstance(raw, str) else raw
        data = parsed if isinstance(parsed, Mapping) else {}
        template = template_of(str(record["event"]), data)
        if template is None or case.facts.get(ERASED_FACT):
            continue
        channel = channel_of(case, settings)
        if not reachable(case.contact, channel):
            continue
        body = {
            "template": template,
            "channel": channel,
            "lang": language_of(case, settings),
            "seq": record["seq"],
            "branch": case.branch,
            "values": values_of(template, case, data),
        }
        rows.append(
            {
                "dedupe_key": f"{NOTIFY_KIND}:{case.id}:{record['seq']}",
                "case_id": case.id,
                "deadline_id": None,
                "kind": NOTIFY_KIND,
                "level": 0,
                "recipients": [],
                "body": body,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    store.outbox.queue(tx, rows)
    return len(rows)
