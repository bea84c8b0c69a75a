"""The webhook deliveries an event queues, in its own transaction, beside the mails.

One delivery per subscription that asked for the event, keyed by subscription, case and
sequence number: its ``webhook-id`` follows from that key, so a resend carries the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from casework.storage.chain import parse_json
from casework.storage.port import Store, Tx
from casework.storage.records import WEBHOOK_KIND, CaseRecord, EventRecord, OutboxMail
from casework.workflow.access.organisation import Organisation
from casework.workflow.transitions import with_deadlines

ANSWER_CHARS = 300
"""How much of a receiver's answer a failed delivery keeps and shows."""


def message_id(dedupe_key: str) -> str:
    """The ``webhook-id`` of a delivery: the same for every attempt."""
    return "msg_" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:32]


def event_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """An event row as written (data as canonical text) in the CLI's JSON shape."""
    data = record["data"]
    parsed = parse_json(data) if isinstance(data, str) else data
    return EventRecord(**{**record, "data": parsed}).to_json()


def case_json(case: CaseRecord) -> dict[str, Any]:
    """A case in the CLI's JSON shape, its pending deadlines included."""
    return with_deadlines(case).to_json()


def queue_webhooks(
    store: Store,
    tx: Tx,
    happened: Iterable[tuple[CaseRecord, Mapping[str, Any]]],
    now: datetime,
    organisation: Organisation | None = None,
) -> int:
    """Queue a delivery of each (case after the event, event row) to every subscription
    that wants it (one of a branch: the cases of that branch and, under
    ``organisation``, of its stores); how many. Runs in the events' transaction."""
    targets = store.webhooks.targets(tx)
    if not targets:
        return 0
    covered = organisation.covered if organisation is not None else lambda b: frozenset((b,))
    rows = []
    for case, record in happened:
        name = record["event"]
        wanted = [
            (hook, url)
            for hook, url, events, branch in targets
            if ("*" in events or name in events)
            and (branch is None or case.branch in covered(branch))
        ]
        if not wanted:
            continue
        body = {"type": f"case.{name}", "case": case_json(case), "event": event_json(record)}
        for hook, url in wanted:
            key = f"webhook:{hook}:{case.id}:{record['seq']}"
            rows.append(
                {
                    "dedupe_key": key,
                    "case_id": case.id,
                    "deadline_id": None,
                    "kind": WEBHOOK_KIND,
                    "level": 0,
                    "recipients": [url],
                    "body": {"webhook": hook, "message_id": message_id(key), "payload": body},
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    store.outbox.queue(tx, rows)
    return len(rows)


def answer_text(answer: str | bytes | None, limit: int = ANSWER_CHARS) -> str:
    """A receiver's answer as printable text on one line, at most ``limit`` characters:
    control characters (ESC and its terminal sequences among them), line breaks and
    invisible format characters become spaces, so what it sent never reaches a terminal
    or a log as anything but text."""
    if answer is None:
        return ""
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def delivery_json(delivery: OutboxMail) -> dict[str, Any]:
    """A delivery as listed: the outbox row, its subscription, ``webhook-id``, event type
    and URL lifted out of the stored body; the last answer as printable text."""
    row = delivery.as_json()
    if row.get("last_error") is not None:
        row["last_error"] = answer_text(row["last_error"], 2 * ANSWER_CHARS)
    body = row.pop("body")
    payload = body.get("payload", {})
    return {
        **row,
        "webhook": body.get("webhook"),
        "webhook_id": body.get("message_id"),
        "type": payload.get("type") if isinstance(payload, dict) else None,
        "url": delivery.recipients[0] if delivery.recipients else None,
    }
