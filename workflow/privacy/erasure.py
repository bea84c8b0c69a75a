"""Erasing a customer: their personal values and secret deleted, the copies the
database holds overwritten, and an ``erased`` event on each of their cases, in one
transaction; then no trace left in the database files, or, while a reader holds them,
their compaction left pending for :func:`finish` (``casework erase --finish``, the
worker's daily pass). Retention erases the customers whose cases have all rested long
enough.

The history stays provable: a format-2 history never held the values, only keyed
commitments to them, so every chain, checkpoint and report stays as it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.machines.definition import ERASED, ERASED_FACT
from casework.storage.personal_sql import ERASED_TEXT
from casework.storage.records import CaseQuery
from casework.storage.timestamps import iso
from casework.workflow import validation
from casework.workflow.access.scope import NO_CUSTOMER
from casework.workflow.errors import ConcurrentUpdate, InvalidInput
from casework.workflow.privacy.commitments import ATTRIBUTE, with_fields
from casework.workflow.transitions import decide
from casework.workflow.webhooks.queue import queue_webhooks

if TYPE_CHECKING:
    from casework.workflow.context import Context


def erase(
    context: Context, customer: str, *, actor: str, reason: str, dry_run: bool = False,
    expunge: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Erase the customer named ``customer`` (or with ``dry_run`` say what would be);
    the summary names cases and fields, never a value. ``expunge=False`` leaves the
    files to the caller's :meth:`casework.storage.port.Store.expunge`."""
    customer = validation.text(customer, "customer", max_chars=200)
    actor = validation.agent_id(actor, "actor")
    reason = validation.text(reason, "reason", max_chars=1000)
    if customer == ERASED_TEXT:
        raise InvalidInput("that customer is erased already", field="customer")
    named = context.store.cases.matching(CaseQuery(customer=customer))
    older = sorted(c.id for c in named if c.event_format == 1)
    if older:
        raise InvalidInput(
            f"{len(older)} case(s) of this customer were opened before personal data was "
            f"kept apart (event format 1): {', '.join(older[:10])}; their values are inside "
            "hashed events, so erasing them would break the chains. Nothing was erased.",
            field="customer",
        )
    if not named:
        since = context.store.personal.compaction_pending()
        pending = "" if since is None else (
            f"; the database files still hold values of an erasure since {iso(since)}: "
            "finishing the erasure completes it (the worker's daily pass does)"
        )  # fmt: skip
        raise InvalidInput(
            f"{NO_CUSTOMER}{pending}",
            field="customer",
        )
    summary: dict[str, Any] = {"dry_run": dry_run, "cases": sorted(c.id for c in named)}
    if dry_run:
        return {**summary, "fields": None, "expunged": None}
    now = context.clock.now()
    happened = []
    with context.store.transaction() as tx:
        subjects = context.store.personal.subjects_named(tx, customer)
        kept = context.store.personal.values_of(tx, subjects)
        ids = sorted(set(kept) | {c.id for c in named})
        for case_id in ids:
            case = context.store.cases.load(tx, case_id)  # locked until the commit
            if case is None or case.facts.get(ERASED_FACT):  # another erasure was first
                continue
            fields = sorted(kept.get(case_id, {}))
            data = {"fields": fields, "reason": reason}
            step = decide(context.rules(case), case, ERASED, data, actor, now, now)
            update = {**step.update, **_scrubbed_columns(case, fields)}
            if not context.store.cases.append(tx, step.record, update, expected=case.version):
                raise ConcurrentUpdate(case_id, case.version, None)
            happened.append((replace(case, **update), step.record))
        values = sorted({v for by_field in kept.values() for v in by_field.values()} | {customer})
        context.store.personal.erase(tx, subjects, ids, values, now)
        queue_webhooks(context.store, tx, happened, now, context.settings.organisation)
    expunged = context.store.personal.expunge() if expunge else None
    context.log.info("customer_erased", cases=len(ids), subjects=len(subjects), actor=actor)
    fields = sorted({f for by_field in kept.values() for f in by_field})
    return {**summary, "cases": ids, "fields": fields, "expunged": expunged,
            "compaction_pending": _pending(context)}  # fmt: skip


def _pending(context: Context) -> str | None:
    """Since when the files' compaction is pending, if it is."""
    since = context.store.personal.compaction_pending()
    return None if since is None else iso(since)


def finish(context: Context) -> dict[str, Any]:
    """Complete the compaction of the database files that earlier erasures left pending
    (a reader held them); nothing to do if none is. ``compaction_pending`` says whether
    it still is (a reader holds them still: run again later)."""
    was = _pending(context)
    expunged = None if was is None else context.store.personal.expunge()
    done = {"pending_since": was, "expunged": expunged, "compaction_pending": _pending(context)}
    if was is not None:
        context.log.info("erasure_finished", done=done["compaction_pending"] is None)
    return done


def _scrubbed_columns(case: Any, fields: list[str]) -> dict[str, Any]:
    """The case row's personal columns once erased."""
    columns = {"customer": case.customer, "contact": case.contact, "attributes": case.attributes}
    gone: dict[str, str | None] = {n: ERASED_TEXT for n in fields if n.startswith(ATTRIBUTE)}
    gone |= {"customer": ERASED_TEXT, "contact": None if case.contact is None else ERASED_TEXT}
    return with_fields(columns, gone)


def resting_states(context: Context) -> list[str]:
    """States a case rests in: final, or where no SLA clock of its machine runs."""
    found: set[str] = set()
    for definition in context.registry:
        found |= definition.final_states
        policy = context.policies.current_for(definition.name)
        if policy is not None:
            running = {s for clock in policy.clocks for s in clock.runs_in}
            found |= set(definition.states) - running
    return sorted(found)


def due(context: Context, now: datetime | None = None) -> list[str]:
    """The customers ``[privacy] erase_after_days`` makes due: every case of theirs at
    rest, none with an event in that many days."""
    after = context.settings.erase_after
    if after is None:
        return []
    moment = context.clock.now() if now is None else now
    return context.store.personal.resting_customers(resting_states(context), moment - after)


def erase_due(context: Context, *, dry_run: bool = False) -> dict[str, Any]:
    """Erase every due customer (retention), or with ``dry_run`` list their cases."""
    after = context.settings.erase_after
    if after is None:
        raise InvalidInput(
            "no retention is configured: set [privacy] erase_after_days", field="due"
        )
    reason = f"retention: every case at rest for {after.days} days ([privacy] erase_after_days)"
    erased = [
        erase(context, customer, actor="casework", reason=reason, dry_run=dry_run, expunge=False)
        for customer in due(context)
    ]
    cases = sorted(c for e in erased for c in e["cases"])
    if dry_run:
        return {"dry_run": True, "customers": len(erased), "cases": cases, "expunged": None}
    pending = erased or context.store.personal.compaction_pending() is not None
    expunged = context.store.personal.expunge() if pending else None
    return {"dry_run": False, "customers": len(erased), "cases": cases, "expunged": expunged,
            "compaction_pending": _pending(context)}  # fmt: skip
