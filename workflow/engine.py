"""The engine: opens cases, fires events, reads, replays and verifies them.

A short command loads only what it uses: replay, verification and deadline
processing are imported by the methods that need them.

One transition is one database transaction: the event is checked against the stored
state through the case's machine version, appended to the hash chain, and the case row
moved on with ``WHERE version = expected``. Either all of it is stored or none of it.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine as SAEngine

from casework.machines import (
    OPEN_EVENT,
    SYSTEM_EVENTS,
    CaseRules,
    Folded,
    MachineDefinition,
    MachineRegistry,
    UnknownMachineError,
)
from casework.machines.clocks import Planned
from casework.machines.definition import (
    ATTACH_EVENT,
    EVIDENCE_KINDS,
    HAND_EVENTS,
    MANUAL_ESCALATION,
    RECLASSIFY,
)
from casework.machines.sla import SlaPolicy
from casework.storage import (
    CaseRecord,
    iso,
    make_engine,
    prepare_engine,
    upgrade,
)
from casework.storage.database import HostConnection, after_commit, is_pooled, sqlite_file
from casework.storage.errors import MalformedRow, WriteConflict
from casework.storage.migrate import HEAD, revision_of
from casework.storage.port import Store
from casework.storage.records import CaseQuery
from casework.storage.sql_store import SqlStore
from casework.workflow.cases import validation
from casework.workflow.cases.catalog import installed_registry
from casework.workflow.cases.classification import reclassify_data
from casework.workflow.cases.opening import new_case_id, opened_case, opening_data
from casework.workflow.cases.paging import (
    Page,
    cursor_after,
    due_cursor_after,
    page_limit,
    position,
)
from casework.workflow.cases.remedies import (
    CHECKED_EVENTS,
    EVIDENCED_EVENTS,
    NO_EVIDENCE,
    RemedyEvidence,
    checked_data,
    remedy_evidence,
    sold_by,
)
from casework.workflow.cases.transitions import (
    decide,
    decide_with_wait_ended,
    pending_json,
    profile_of,
    stored_plan,
    sync_deadlines,
)
from casework.workflow.clock import EARLIEST, LATEST, Clock, SystemClock, aware
from casework.workflow.config import Settings
from casework.workflow.context import Context
from casework.workflow.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    InvalidInput,
    TimeOutOfOrder,
    UnknownChoice,
    UnknownEvent,
    UnknownMachine,
)
from casework.workflow.logs import library_logger
from casework.workflow.mail.escalation import manual_escalation_row
from casework.workflow.notify.queue import queue_notifications
from casework.workflow.partners.faults import fault_data
from casework.workflow.privacy.checks import personal_problems
from casework.workflow.privacy.commitments import new_subject, personal_values
from casework.workflow.results import POLICIES, Case, Event, Problem, Replay, VerifyReport
from casework.workflow.sla.due import SYSTEM_ACTOR
from casework.workflow.storage_boundary import at_storage_boundary
from casework.workflow.webhooks.queue import queue_webhooks

if TYPE_CHECKING:
    from casework.workflow.sla.due import Fired
    from casework.workflow.sla.views import Overdue


def _with_deadlines(case: CaseRecord) -> CaseRecord:
    """The case with its pending deadlines, as its row's clocks list them."""
    return replace(case, deadlines=tuple(case.sla.get("pending", ())))


def _before_previous(at: datetime | None, now: datetime, previous: datetime) -> str:
    """Why an event cannot be recorded: it would fall before the case's previous event."""
    if at is not None:
        return f"at {at.isoformat()} lies before the case's previous event ({previous.isoformat()})"
    return (
        f"the case's previous event is recorded at {previous.isoformat()}, after this "
        f"host's clock ({now.isoformat()}); an event is recorded when it happens and never "
        "moved: check this host's clock, or give the time it happened (--at)"
    )


def _verify_from(url: str, settings: Settings, low: str) -> VerifyReport:
    """Verify the cases with ids from ``low`` on (in the second process of a verify)."""
    with Engine.open(url, config=settings, read_only=True) as engine:
        return engine._verify_part(None, (low, None), None)


MIN_PREFIX = 4
"""The shortest case-id prefix :meth:`Engine.resolve` takes."""


def _known_event(definition: MachineDefinition, case_id: str, event: str) -> None:
    """Refuse an event the machine does not have, naming the nearest one it does."""
    known = (*definition.events, *definition.agent_events, *HAND_EVENTS, ATTACH_EVENT)
    if event not in known and event not in SYSTEM_EVENTS:
        import difflib

        near = difflib.get_close_matches(event, known, n=1, cutoff=0.6)
        raise UnknownEvent(case_id, event, definition.name, known, near[0] if near else None)


def _known_state(registry: MachineRegistry, state: str | None) -> None:
    """Refuse a state no installed machine has (a list of it would be empty for ever)."""
    if state is None:
        return
    states = sorted({s for d in registry for s in d.states})
    if state not in states:
        raise UnknownChoice("state", state, states)


class Engine:
    """Runs complaint cases on one database. Safe to share between threads."""

    def __init__(
        self,
        db: SAEngine,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        registry: MachineRegistry | None = None,
        logger: Any = None,
        owns_db: bool = False,
    ) -> None:
        self.db = db
        self._owns_db = owns_db
        self.context = Context(
            SqlStore(db),
            clock or SystemClock(),
            settings or Settings(),
            registry if registry is not None else installed_registry(),
            logger if logger is not None else library_logger(),
            installed=registry is None,
        )
        """The services' handle on this engine's parts (:mod:`.context`), for the
        composition layer (the command line, the HTTP API, the console)."""
        self.settings = self.context.settings
        self.clock: Clock = self.context.clock
        self.registry = self.context.registry
        self.policies = self.context.policies
        self.store: Store = self.context.store
        self._log = self.context.log
        self._installed_registry = registry is None
        self._server_clock = self.context.server_clock
        self._planned_listeners = self.context.planned_listeners
        self._rules = self.context.rules

    @classmethod
    @at_storage_boundary
    def open(
        cls,
        url: str | SAEngine,
        *,
        config: Settings | None = None,
        clock: Clock | None = None,
        registry: MachineRegistry | None = None,
        logger: Any = None,
        read_only: bool = False,
        migrate: bool = True,
        schema: str | None = None,
    ) -> Engine:
        """An engine on ``url`` (or an existing SQLAlchemy engine), schema brought up to date.

        A current schema costs one query to confirm. With ``migrate=False`` (operators
        who run ``casework migrate`` themselves) a schema that is not current is an
        error instead. With ``read_only`` (a URL only) the database refuses every write,
        nothing is migrated, and a schema that is not current is an error: auditing
        needs no more. A ``schema`` (PostgreSQL, a URL only) keeps casework's tables in
        a schema of their own beside a host application's (made when first migrated);
        ``None`` is ``public``, as before.
        """
        if isinstance(url, str):
            path = sqlite_file(url)
            if read_only and path is not None and not os.path.exists(path):
                raise InvalidInput(f"no database file {path}", field="db")
            db, owns = make_engine(url, read_only=read_only, schema=schema), True
        elif schema not in (None, "", "public"):
            raise InvalidInput(
                "a schema is given with a URL: casework's engine sets its sessions'"
                " search_path, which a host's engine keeps for its own",
                field="db",
            )
        else:
            prepare_engine(url)
            db, owns = url, False
        try:
            current, own_table = revision_of(db)
            if current == HEAD and not own_table and migrate and not read_only:
                upgrade(db)  # the revision moves from alembic_version to casework's table
            elif current != HEAD:
                if read_only:
                    raise InvalidInput(
                        f"the database schema is at revision {current}, casework needs {HEAD}:"
                        " open it once with write access to upgrade it, then audit read-only",
                        field="db",
                    )
                if not migrate:
                    raise InvalidInput(
                        f"the database schema is at revision {current}, casework needs {HEAD}:"
                        " run `casework migrate` (or open it with migrate=True)",
                        field="db",
                    )
                upgrade(db)
            return cls(
                db, settings=config, clock=clock, registry=registry, logger=logger, owns_db=owns
            )
        except BaseException:
            if owns:
                db.dispose()
            raise

    def close(self) -> None:
        """Release the database connections (the pool too, for an engine made from a URL)."""
        self.store.close()
        if self._owns_db:
            self.db.dispose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------

    @at_storage_boundary
    def open_case(
        self,
        *,
        customer: str,
        summary: str,
        channel: str | None = None,
        category: str | None = None,
        actor: str = "intake",
        contact: str | None = None,
        branch: str | None = None,
        priority: str = "normal",
        received_at: datetime | None = None,
        machine: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        case_id: str | None = None,
        within: str | None = None,
        connection: HostConnection | None = None,
    ) -> Case:
        """Open a case; ``actor`` (the first receiver) owns it. Returns the stored case.

        ``channel`` and ``category`` are required by machines that declare them in their
        ``intake`` (the complaint machine does), optional for others. An earlier case
        it repeats is looked for among the cases of branch ``within`` only, if given
        (the caller's scope). With a ``connection`` the case is written inside the
        host's transaction on it (see :meth:`fire`).
        """
        self._joinable(connection)
        s = self.settings
        name = machine if machine is None else validation.text(machine, "machine", max_chars=64)
        definition = self._definition(s.default_machine if name is None else name, None)
        opening = opening_data(
            s, definition, customer=customer, summary=summary, channel=channel,
            category=category, actor=actor, contact=contact, branch=branch,
            priority=priority, attributes=attributes,
        )  # fmt: skip
        now = self.clock.now()
        self._server_clock.check()
        received = now if received_at is None else aware(received_at, "received_at")
        self._not_in_future(received, now, "received_at")
        sold_by(s.warranty, opening["attributes"], received)
        case_id = new_case_id() if case_id is None else validation.new_case_id(case_id)
        policy = self.policies.current_for(definition.name)
        opening["policy"] = None if policy is None else policy.version
        rules = CaseRules(definition, self.policies.known(), profile_of(opening))
        try:
            with self.store.transaction(connection) as cursor:
                # the customer's secret: theirs if they have cases, else a new one
                subject = self.store.subject_for(cursor, opening["customer"], new_subject(), now)
                case, event, plan = opened_case(
                    case_id, rules, opening, actor, received, now, subject
                )
                if policy is not None:
                    self.store.store_policy(
                        cursor, policy.version, policy.name, policy.document, now
                    )
                self.store.insert_case(cursor, case, event)
                values = personal_values(opening, definition)
                self.store.put_personal(cursor, case_id, subject[0], values)
                moved = sync_deadlines(self.store, cursor, case_id, {}, plan)
                queue_webhooks(
                    self.store, cursor, [(CaseRecord(**case), event)], now,
                    self.settings.organisation,
                )  # fmt: skip
                queue_notifications(
                    self.store, cursor, [(CaseRecord(**case), event)], now, self.settings.notify
                )
        except WriteConflict:
            raise InvalidInput(f"case id {case_id!r} is taken", field="case_id") from None
        self._planned(moved, connection)
        self._log.info(
            "case_opened",
            case_id=case_id,
            machine=definition.name,
            channel=channel,
            category=category,
        )
        opened = _with_deadlines(CaseRecord(**case))
        earlier = self._repeat_of(opened, within) if "link" in definition.events else None
        if earlier is None:
            return opened
        data = {"case": earlier, "kind": "repeat", "repeat_of": earlier}
        linked = self._fire(case_id, "link", actor=SYSTEM_ACTOR, data=data, connection=connection)
        if not (self.settings.repeat_escalates and category == "not_fixed_first_visit"):
            return linked
        reason = f"the same fault again: a repeat of case {earlier} (seed 002)"
        return self._fire(
            case_id, MANUAL_ESCALATION, actor=SYSTEM_ACTOR, data={"reason": reason},
            connection=connection,
        )  # fmt: skip

    def _repeat_of(self, case: CaseRecord, within: str | None) -> str | None:
        """The latest earlier case of the same customer about the same serial number,
        received within the repeat window (of branch ``within``, if given), if any."""
        serial = case.attributes.get("serial_number")
        if not serial:
            return None
        since = case.received_at - self.settings.repeat_window
        mine = self.scoped(CaseQuery(customer=case.customer, branch=within))
        earlier = [
            c for c in self.store.cases(mine)
            if c.id != case.id and c.attributes.get("serial_number") == serial
            and since <= c.received_at <= case.received_at
        ]  # fmt: skip
        return max(earlier, key=lambda c: (c.received_at, c.id)).id if earlier else None

    @at_storage_boundary
    def related(self, case_id: str) -> builtins.list[dict[str, Any]]:
        """The cases ``case_id`` is linked to or merged with, either way, oldest first:
        each with the event that relates them (case, number, event, kind, when)."""
        case_id = self.get(validation.case_ref(case_id)).id
        found = []
        relating = self.store.named_events(EARLIEST, LATEST, ("link", "merge_into"))
        for events in relating.values():
            for e in events:
                other = str(e.data.get("case"))
                if case_id not in (e.case_id, other):
                    continue
                kind = "merged" if e.event == "merge_into" else e.data.get("kind") or "linked"
                found.append({
                    "case": other if e.case_id == case_id else e.case_id,
                    "relation": kind,
                    "direction": "to" if e.case_id == case_id else "from",
                    "event": {"case_id": e.case_id, "seq": e.seq, "event": e.event,
                              "at": iso(e.occurred_at), "actor": e.actor},
                })  # fmt: skip
        return sorted(found, key=lambda r: (r["event"]["at"], r["event"]["case_id"]))

    def _other_case(
        self, case_id: str, event: str, data: Mapping[str, Any], within: str | None
    ) -> dict[str, Any]:
        """The data of ``link``/``merge_into`` with the other case named in full; a case
        that does not exist or is not in ``within`` (a branch, if given: answered alike),
        the case itself, or a merged one to merge into, refused."""
        other = self.resolve(str(data.get("case") or ""), within)
        if other == case_id:
            raise InvalidInput(f"case {case_id} cannot be related to itself", field="case")
        target = self.store.case(other)
        if target is None:
            raise CaseNotFound(other)
        if "repeat_of" in data:
            data = {**data, "repeat_of": self.resolve(str(data["repeat_of"] or ""), within)}
        if event == "merge_into" and target.state == "merged":
            raise InvalidInput(
                f"case {other} is merged itself: merge into the case it was merged into",
                field="case",
            )
        return {**data, "case": other}

    @at_storage_boundary
    def fire(
        self,
        case_id: str,
        event: str,
        *,
        actor: str,
        data: Mapping[str, Any] | None = None,
        note: str | None = None,
        at: datetime | None = None,
        expected_version: int | None = None,
        within: str | None = None,
        role: str | None = None,
        connection: HostConnection | None = None,
    ) -> Case:
        """Apply ``event`` to the case as ``actor``; returns the case after it. Another
        case its data names (``link``, ``merge_into``) is looked for among the cases of
        branch ``within`` only, if given (the caller's scope). With a ``role`` the
        decision must be within its ``[authority]`` (:class:`BeyondAuthority` otherwise);
        without one (the library's own use) nothing is checked.

        With a ``connection`` (a SQLAlchemy ``Connection`` of the engine's database,
        inside a transaction the host began) the event, the case row, its deadlines
        and its outbox and webhook rows are written in a savepoint of the host's
        transaction: they commit or roll back with it, and the connection is neither
        committed nor closed. The case's row stays locked until the host's transaction
        ends; a worker in this process hears of planned deadlines at the host's commit
        (one elsewhere by ``NOTIFY`` on PostgreSQL, by its poll on SQLite). Checks that
        read other cases (``link``, evidence, authority) see committed data only.

        Raises :class:`CaseNotFound`, :class:`EventNotAllowed`, :class:`GuardFailed`,
        :class:`ConcurrentUpdate` (``expected_version`` is stale) or :class:`InvalidInput`.
        """
        case_id = validation.case_ref(case_id)
        actor = validation.agent_id(actor, "actor")
        event = validation.text(event, "event", max_chars=64)
        if event in SYSTEM_EVENTS or event == OPEN_EVENT:
            raise InvalidInput(
                f"{event!r} is recorded by casework itself, not fired; "
                "see `casework tick` and `casework replan`",
                field="event",
            )
        if event == ATTACH_EVENT:
            raise InvalidInput(
                "a file is attached with its content: `casework attach CASE FILE --kind K`",
                field="event",
            )
        payload = validation.event_data(data, note, self.settings)
        self._joinable(connection)
        if role is not None:
            self._within_authority(case_id, role, event, payload)
        evidence = self._remedy_evidence(case_id) if event in EVIDENCED_EVENTS else NO_EVIDENCE
        if event in ("link", "merge_into") and payload.get("case"):
            payload = self._other_case(validation.case_ref(case_id), event, payload, within)
        given = None if at is None else aware(at, "at")
        if given is not None:
            self._not_in_future(given, self.clock.now(), "at")
        return self._fire(
            case_id, event, actor=actor, data=payload, at=given,
            expected_version=expected_version, evidence=evidence, connection=connection,
        )  # fmt: skip

    def _fire(
        self,
        case_id: str,
        event: str,
        *,
        actor: str,
        data: Mapping[str, Any],
        at: datetime | None = None,
        expected_version: int | None = None,
        evidence: RemedyEvidence = NO_EVIDENCE,
        connection: HostConnection | None = None,
    ) -> Case:
        """The transaction of :meth:`fire`, for checked input (``evidence``: what the
        warranty rules read from the case's history, for ``decide_remedy``), inside the
        host's on ``connection`` if given."""
        self._server_clock.check()
        try:
            with self.store.transaction(connection) as cursor:
                case = self.store.load_case(cursor, case_id)
                if case is None:
                    raise CaseNotFound(case_id)
                if expected_version is not None and case.version != expected_version:
                    raise ConcurrentUpdate(case_id, expected_version, case.version)
                # Read the clock only once the case is ours: a writer we waited for may
                # have stored a later event. Without an explicit time the event happens
                # now, and never before its predecessor (clocks of two hosts may differ).
                now = self.clock.now()
                occurred = at or now
                if occurred < case.last_event_at:
                    raise TimeOutOfOrder(_before_previous(at, now, case.last_event_at), field="at")
                rules = self._rules(case)
                _known_event(rules.definition, case_id, event)
                handover = rules.definition.handover
                if handover is not None and event == handover[0] and handover[1] in data:
                    owner = validation.agent_id(data[handover[1]], handover[1])
                    data = {**data, handover[1]: owner}
                if event in CHECKED_EVENTS and "decide_remedy" in rules.definition.events:
                    warranty = self.settings.warranty
                    data = checked_data(warranty, case, event, data, occurred, evidence)
                if event == "partner_fault" and event in rules.definition.events:
                    data = fault_data(self.settings.partners, data)
                if event == RECLASSIFY and case.state not in rules.definition.final_states:
                    data = reclassify_data(self.settings, rules.definition, case, data)
                steps = decide_with_wait_ended(rules, case, event, data, actor, occurred, now)
                after_case = case
                happened = []
                for step in steps:
                    if not self.store.append(
                        cursor, step.record, step.update, expected=after_case.version
                    ):
                        raise ConcurrentUpdate(case_id, case.version, None)
                    after_case = replace(after_case, **step.update)
                    happened.append((after_case, step.record))
                queue_webhooks(self.store, cursor, happened, now, self.settings.organisation)
                queue_notifications(self.store, cursor, happened, now, self.settings.notify)
                self._escalated_by_hand(rules, cursor, happened, now)
                moved = []
                after_plan = next((s.plan for s in reversed(steps) if s.plan is not None), None)
                if after_plan is not None:  # the clocks moved: so do the deadline rows
                    before_plan = stored_plan(case)
                    moved = sync_deadlines(self.store, cursor, case_id, before_plan, after_plan)
        except WriteConflict:
            raise ConcurrentUpdate(case_id, expected_version or 0, None) from None
        self._planned(moved, connection)
        for step in steps:
            self._log.info(
                "event_fired",
                case_id=case_id,
                event_name=step.record["event"],
                from_state=step.before.state,
                to_state=step.after.state,
                version=step.after.version,
                actor=actor,
            )
        return replace(after_case, deadlines=tuple(after_case.sla.get("pending", ())))

    def _attachment_problems(self, case_id: str | None) -> builtins.list[Problem]:
        """Each attached file that is missing, or whose content no longer has the digest
        its ``attach`` event recorded."""
        import hashlib

        if case_id is not None:
            found = {case_id: self.store.case_with_events(case_id)[1]}
        else:
            found = self.store.named_events(EARLIEST, LATEST, (ATTACH_EVENT,))
        problems = []
        for events in found.values():
            for event in events:
                if event.event != ATTACH_EVENT:
                    continue
                digest = str(event.data.get("digest"))
                what = (
                    f"attachment {digest[:16]} ({event.data.get('kind')}, {event.data.get('name')})"
                )
                try:
                    content = self.store.attachment(digest)
                except MalformedRow as err:  # a malformed row: named, and the check goes on
                    problems.append(Problem(event.case_id, event.seq, f"{what}: {err}"))
                    continue
                if content is None:
                    problems.append(Problem(event.case_id, event.seq, f"{what} is missing"))
                elif hashlib.sha256(content).hexdigest() != digest:
                    problems.append(
                        Problem(event.case_id, event.seq, f"{what} was altered: its content "
                                "no longer has the digest recorded")
                    )  # fmt: skip
        return problems

    def _within_authority(
        self, case_id: str, role: str, event: str, data: Mapping[str, Any]
    ) -> None:
        """Refuse a decision above ``role``'s authority, naming who may take it and the
        case's ladder level where they stand (:mod:`casework.workflow.access.authority`)."""

        def ladder(level: int) -> str | None:
            case = self.store.case(case_id)
            policy = None if case is None else self._rules(case).policy(case.sla_policy)
            names = {} if policy is None else {rung.level: rung.name for rung in policy.ladder}
            return names.get(level)

        def standing() -> int:
            case = self.store.case(case_id)
            return 0 if case is None else case.escalation_level

        self.settings.authority.check(role, event, data, ladder, standing)

    def _remedy_evidence(self, case_id: str) -> RemedyEvidence:
        """What the warranty rules read from a case's history: its test reports, a
        repair's overrun, whether its quote was accepted."""
        _, events = self.store.case_with_events(validation.case_ref(case_id))
        return remedy_evidence(events)

    @at_storage_boundary
    def attach(
        self, case_id: str, content: bytes, *, kind: str, name: str, actor: str,
        connection: HostConnection | None = None,
    ) -> Case:  # fmt: skip
        """Keep ``content`` by its SHA-256 digest and record an ``attach`` event naming
        it (``kind`` test_report, photo or invoice; ``name`` the file's name), so that
        ``verify`` can later prove the file is still the one attached. With a
        ``connection``, event and file are written inside the host's transaction on it
        (see :meth:`fire`); the case must be committed already."""
        import hashlib

        if kind not in EVIDENCE_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(EVIDENCE_KINDS)}", field="kind")
        limit = self.settings.max_attachment_bytes
        if len(content) > limit:
            raise InvalidInput(
                f"the file has {len(content):,} bytes; the limit is {limit:,} "
                "(limits.max_attachment_bytes)",
                field="file",
            )
        if not content:
            raise InvalidInput("the file is empty", field="file")
        case_id = validation.case_ref(case_id)
        actor = validation.agent_id(actor, "actor")
        shown = validation.text(name, "name", max_chars=200)
        self._joinable(connection)
        self.get(case_id)
        digest = hashlib.sha256(content).hexdigest()
        data = {"digest": digest, "kind": kind, "name": shown, "size": len(content)}
        case = self._fire(case_id, ATTACH_EVENT, actor=actor, data=data, connection=connection)
        # Kept only once the event is accepted: a refused attach leaves no file behind.
        self.store.put_attachment(digest, content, self.clock.now(), connection)
        return case

    @at_storage_boundary
    def erase(
        self, customer: str, *, actor: str, reason: str, dry_run: bool = False
    ) -> dict[str, Any]:
        """Erase a customer's personal data: values and secret deleted, copies in mail,
        webhook bodies and kept answers overwritten, an ``erased`` event on each of their
        cases, in one transaction; then no trace left in the database files.
        Histories, checkpoints and reports stay valid (:mod:`casework.workflow.privacy`).

        It takes no host ``connection``: the files are compacted after its transaction
        commits (``VACUUM``, a truncated log), which cannot wait inside a transaction
        the host still holds, and an erasure rolled back by a host would leave the
        compaction to chase values that were never removed."""
        from casework.workflow.privacy.erasure import erase

        if not dry_run:  # its erased events carry this host's time
            self._server_clock.check()
        return erase(self.context, customer, actor=actor, reason=reason, dry_run=dry_run)

    @at_storage_boundary
    def erase_due(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Erase every customer ``[privacy] erase_after_days`` makes due (retention)."""
        from casework.workflow.privacy.erasure import erase_due

        if not dry_run:
            self._server_clock.check()
        return erase_due(self.context, dry_run=dry_run)

    @at_storage_boundary
    def finish_erasure(self) -> dict[str, Any]:
        """Complete the compaction of the database files that earlier erasures left
        pending because a reader held them (nothing to do if none is)."""
        from casework.workflow.privacy.erasure import finish

        return finish(self.context)

    def _escalated_by_hand(
        self, rules: CaseRules, cursor: Any, happened: builtins.list[Any], now: datetime
    ) -> None:
        """Queue the mail of each ``escalate_now`` among ``happened``, in its transaction:
        the level's recipients hear of it as of a timed escalation."""
        policy = None
        for case, record in happened:
            if record["event"] != MANUAL_ESCALATION:
                continue
            policy = policy or rules.policy(case.sla_policy)
            if policy is not None:
                row = manual_escalation_row(policy, case, case.escalation_level, record["seq"], now)
                self.store.queue_mails(cursor, [row])

    # -- reading ---------------------------------------------------------------------

    @at_storage_boundary
    def get(self, case_id: str) -> Case:
        """The case, or :class:`CaseNotFound`."""
        case_id = validation.case_ref(case_id)
        case = self.store.case(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return _with_deadlines(case)

    @at_storage_boundary
    def resolve(self, ref: str, branch: str | None = None) -> str:
        """The id of the case ``ref`` names: its id, or (for people typing) a unique
        prefix of at least :data:`MIN_PREFIX` characters; among ``branch``'s cases only,
        if given (another branch's case answers as one that does not exist).
        :class:`CaseNotFound` for none, :class:`InvalidInput` naming the candidates when
        a prefix is not unique."""
        ref = validation.case_ref(ref)
        exact = self.store.case(ref)
        units = None if branch is None else self.settings.organisation.covered(branch)
        if exact is not None and (units is None or exact.branch in units):
            return ref
        if len(ref) < MIN_PREFIX:
            if exact is not None:
                raise CaseNotFound(ref)
            return ref
        found = (
            self.store.ids_starting(ref, 6)
            if units is None
            else sorted({i for unit in units for i in self.store.ids_starting(ref, 6, unit)})[:6]
        )
        if len(found) == 1:
            return found[0]
        if not found:
            raise CaseNotFound(ref)
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise InvalidInput(
            f"{ref!r} begins several cases: {shown}; give more of the id", field="case_id"
        )

    @at_storage_boundary
    def list(
        self,
        *,
        state: str | None = None,
        limit: int | None = None,
        branch: str | None = None,
        owner: str | None = None,
        customer: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        priority: str | None = None,
    ) -> list[Case]:
        """Cases in the order they were received, those matching every filter given (a
        branch: its stores' too)."""
        _known_state(self.registry, state)
        query = CaseQuery(state, branch, owner, customer, channel, category, priority)
        return self.store.cases(self.scoped(query), limit=limit)

    def scoped(self, query: CaseQuery) -> CaseQuery:
        """``query`` with its ``branch`` standing for the units it covers: a branch of
        ``[organisation]`` and its stores, a store or another unit itself."""
        if query.branch is None:
            return query
        units = self.settings.organisation.covered(query.branch)
        if query.branches is not None:
            units = units & frozenset(query.branches)
        return replace(query, branch=None, branches=tuple(sorted(units)))

    @at_storage_boundary
    def page(
        self,
        query: CaseQuery,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        by_due: bool = False,
        count: bool = False,
    ) -> Page:
        """One page of the cases matching ``query`` from ``cursor`` (a page's
        ``next_cursor``) on: in received order, or the next pending deadline first
        (``by_due``); ``limit`` from 1 to 500, 50 if not given; with the number of
        matching cases in all when ``count``."""
        _known_state(self.registry, query.state)
        query = self.scoped(query)
        size = page_limit(limit)
        after = None if cursor is None else position(cursor)
        if after is not None and (len(after) == 3) != by_due:
            raise InvalidInput("cursor belongs to a list in another order", field="cursor")
        if by_due:
            due_after = cast("tuple[datetime | None, datetime, str] | None", after)
            ranked = self.store.cases_by_due(replace(query, after_due=due_after), size + 1)
            items = [_with_deadlines(c) for c, _ in ranked[:size]]
            more = len(ranked) > size
            following = due_cursor_after(items[-1], ranked[size - 1][1]) if more else None
        else:
            received_after = cast("tuple[datetime, str] | None", after)
            found = self.store.cases(replace(query, after=received_after), limit=size + 1)
            items = [_with_deadlines(c) for c in found[:size]]
            more = len(found) > size
            following = cursor_after(items[-1]) if more else None
        total = self.store.count_cases(query) if count else None
        return Page(items, following, total)

    def closed_states(self) -> tuple[str, ...]:
        """The states in which a case of some machine is closed (final)."""
        return tuple(sorted({state for d in self.registry for state in d.final_states}))

    @at_storage_boundary
    def history(self, case_id: str) -> builtins.list[Event]:
        """The case's events, oldest first."""
        return self._case_with_events(case_id)[1]

    @at_storage_boundary
    def timeline(self, case_id: str) -> builtins.list[tuple[Event, Folded]]:
        """Each event of the case with the case as it stood right after it."""
        case, events = self._case_with_events(case_id)
        from casework.workflow.cases.history import fold_steps

        return builtins.list(fold_steps(self._rules(case), events))

    @at_storage_boundary
    def replay(self, case_id: str, at: datetime | None = None) -> Replay:
        """The case rebuilt from its events alone, at the end or as it stood at ``at``."""
        moment = None if at is None else aware(at, "at")
        case, events = self._case_with_events(case_id)
        from casework.workflow.cases.history import fold_history
        from casework.workflow.sla.views import standing

        folded = fold_history(self._rules(case), events, moment)
        if folded is None:
            raise TimeOutOfOrder(
                f"case {case_id} was not yet received at {moment}; it was received at "
                f"{case.received_at.isoformat()}",
                field="at",
            )
        last_at = max(e.occurred_at for e in events if moment is None or e.occurred_at <= moment)
        policy = self.policies.get(folded.policy)
        return Replay(
            case_id=case_id,
            machine=case.machine,
            machine_version=case.machine_version,
            state=folded.state,
            version=folded.version,
            owner=folded.owner,
            escalation_level=folded.escalation_level,
            facts=folded.facts,
            at=moment or last_at,
            sla=standing(policy, folded.sla, moment or last_at),
        )

    @at_storage_boundary
    def verify(
        self,
        case_id: str | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        workers: int = 1,
    ) -> VerifyReport:
        """Check every hash chain and that every case row equals its replay.

        ``progress(cases, events)`` is called every 1,000 cases, for long runs. With
        ``workers=2`` a whole-database check runs in two processes, each taking half
        the cases (by id) from its own snapshot; every case is still checked against
        one consistent view of its own rows. It needs the installed machines and a
        database other processes can open (not in-memory SQLite), else it runs in one.
        """
        report = self._verify_chains(case_id, progress, workers)
        problems = self._attachment_problems(case_id)
        from casework.workflow.cases.history import MALFORMED, malformed

        cases, kept = self.store.personal_rows(case_id)
        for case in cases:  # one case at a time: a malformed row is named, the rest checked
            try:
                problems += personal_problems([case], kept)
            except MALFORMED as err:
                problems.append(Problem(case[0], None, f"a row is malformed: {malformed(err)}"))
        return replace(report, problems=(*report.problems, *problems)) if problems else report

    def _verify_chains(
        self,
        case_id: str | None,
        progress: Callable[[int, int], None] | None,
        workers: int,
    ) -> VerifyReport:
        if case_id is not None:
            self.get(case_id)
            return self._verify_part([case_id], (None, None), progress)
        if workers > 1 and self._installed_registry and self.db.url.database not in (
            None, "", ":memory:",
        ):  # fmt: skip
            pivot = self.store.middle_case_id()
            if pivot is not None:
                from casework.workflow.audit.parallel_verify import verify_halves

                url = self.db.url.render_as_string(hide_password=False)
                if is_pooled(self.db):  # the second process goes through the bouncer too
                    url += ("&" if "?" in url else "?") + "pool_mode=transaction"
                return verify_halves(
                    pivot,
                    lambda high: self._verify_part(None, (None, high), progress),
                    partial(_verify_from, url, self.settings),
                )
        return self._verify_part(None, (None, None), progress)

    def _verify_part(
        self,
        ids: builtins.list[str] | None,
        id_range: tuple[str | None, str | None],
        progress: Callable[[int, int], None] | None,
    ) -> VerifyReport:
        problems: builtins.list[Problem] = []
        cases = events = 0
        self.policies.refresh()
        if ids is None and id_range[0] is None:  # the whole database, or its first half
            problems += [
                Problem(POLICIES, None, reason) for reason in self.policies.damaged.values()
            ]
        with self.store.snapshot(ids, id_range) as streams:
            from casework.workflow.cases.history import check_streams

            results = check_streams(
                streams.cases,
                streams.events,
                streams.deadlines,
                self._definition_or_none,
                self.policies.known(),
            )
            for checked, problem in results:
                cases += 1
                events += checked
                if problem is not None:
                    problems.append(problem)
                if progress is not None and cases % 1000 == 0:
                    progress(cases, events)
        return VerifyReport(cases, events, tuple(problems))

    # -- SLA deadlines ----------------------------------------------------------------

    def on_deadline_planned(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(due_at)`` after a commit that planned or moved a deadline.

        The worker uses it to re-arm at once when this process plans an earlier
        deadline than the one it sleeps for (others are found by its safety poll).
        """
        self._planned_listeners.append(listener)

    def _planned(
        self, moved: builtins.list[Planned], connection: HostConnection | None = None
    ) -> None:
        """Tell this process's listeners of the earliest deadline ``moved``: now, or
        when the host commits its transaction on ``connection`` (never, if it rolls back)."""
        if not moved or not self._planned_listeners:
            return
        due = min(p.due_at for p in moved)

        def tell() -> None:
            for listener in self._planned_listeners:
                listener(due)

        if connection is None:
            tell()
        else:
            after_commit(connection, tell)

    def _joinable(self, connection: HostConnection | None) -> None:
        """Refuse a host's ``connection`` whose transaction casework cannot join."""
        problem = None if connection is None else self.store.unjoinable(connection)
        if problem is not None:
            raise InvalidInput(problem, field="connection")

    @at_storage_boundary
    def process_due(
        self, now: datetime | None = None, *, batch: int = 200, max_batches: int | None = None
    ) -> builtins.list[Fired]:
        """Fire every deadline due at ``now`` (default: the clock's now) exactly once
        (``max_batches``: at most that many transactions of ``batch``; call again)."""
        moment = self.clock.now() if now is None else aware(now, "now")
        if now is not None:
            self._not_in_future(moment, self.clock.now(), "now")
        self._server_clock.check(moment)
        from casework.workflow.sla.due import process_due

        return process_due(
            self.store, self._rules, moment, batch, self._log, max_batches,
            self.settings.organisation, self.settings.notify,
        )  # fmt: skip

    @at_storage_boundary
    def next_due(self) -> datetime | None:
        """When the earliest pending deadline falls due."""
        return self.store.next_due()

    @at_storage_boundary
    def overdue(self, now: datetime | None = None) -> builtins.list[Overdue]:
        """Open cases with a clock past its target, latest first."""
        moment = self.clock.now() if now is None else aware(now, "now")
        from casework.workflow.sla.views import overdue

        return overdue(self.store.late_candidates(moment), self.policies, moment)

    @at_storage_boundary
    def heartbeat(self, worker: str, started_at: datetime) -> None:
        """Record that the worker named ``worker`` lives now (``/readyz`` reads it); not
        when this host's clock runs ahead (it could fire nothing: it must not look alive)."""
        self._server_clock.check()
        self.store.beat(worker, started_at, self.clock.now())

    @at_storage_boundary
    def worker_age(self) -> float | None:
        """Seconds since a worker last woke (its heartbeat), ``None`` if none ever ran:
        what ``/readyz?worker=1``, the metrics and the console's banner judge by."""
        beat = self.store.latest_beat()
        return None if beat is None else (self.clock.now() - beat.beat_at).total_seconds()

    @at_storage_boundary
    def explain_sla(self, case_id: str) -> dict[str, Any]:
        """How each SLA clock of the case stands and how its next deadline was computed."""
        case, events = self._case_with_events(case_id)
        case = _with_deadlines(case)
        policy = self.policies.get(case.sla_policy)
        from casework.workflow.sla.views import explain

        return explain(case, events, policy, self.clock.now())

    @at_storage_boundary
    def replan(self, case_id: str, *, actor: str) -> Case:
        """Move an open case to the configured SLA policy, recording a ``replan`` event."""
        case_id = validation.case_ref(case_id)
        actor = validation.agent_id(actor, "actor")
        policy = self._stored_current(self.get(case_id).machine)
        return self._fire(case_id, "replan", actor=actor, data={"policy": policy.version})

    def _stored_current(self, machine: str) -> SlaPolicy:
        """The configured policy of ``machine``, stored (once) so cases can refer to it."""
        policy = self.policies.current_for(machine)
        if policy is None:
            raise InvalidInput(f"machine {machine} has no SLA policy to move the case to")
        with self.store.transaction() as cursor:
            self.store.store_policy(
                cursor, policy.version, policy.name, policy.document, self.clock.now()
            )
        self.policies.refresh()
        return policy

    @at_storage_boundary
    def replan_all(self, *, actor: str, dry_run: bool = False) -> dict[str, Any]:
        """Move every open case not under its machine's configured policy to it (a
        ``replan`` each), or with ``dry_run`` only say what would change: each case's
        pending deadlines before and after. Returns the summary."""
        actor = validation.agent_id(actor, "actor")
        now = self.clock.now()
        moved = []
        by_policy: dict[str, int] = {}
        stored: set[str] = set()
        open_cases = CaseQuery(not_states=self.closed_states())
        for case in self.store.cases(open_cases):
            policy = self.policies.current_for(case.machine)
            if policy is None or case.sla_policy in (None, policy.version):
                continue
            definition = self._definition(case.machine, case.machine_version)
            known = {**self.policies.known(case.sla_policy), policy.version: policy}
            rules = CaseRules(definition, known, profile_of(case))
            data = {"policy": policy.version}
            after = decide(rules, case, "replan", data, actor, now, now).plan or {}
            by_policy[str(case.sla_policy)] = by_policy.get(str(case.sla_policy), 0) + 1
            moved.append({
                "case_id": case.id, "from": case.sla_policy, "to": policy.version,
                "before": list(case.sla.get("pending", ())),
                "after": list(pending_json(after)),
            })  # fmt: skip
            if not dry_run:
                if case.machine not in stored:  # each policy stored once, not per case
                    self._stored_current(case.machine)
                    stored.add(case.machine)
                self._fire(case.id, "replan", actor=actor, data=data)
        return {"dry_run": dry_run, "cases": len(moved), "from_policies": by_policy,
                "moved": moved}  # fmt: skip

    # -- helpers ---------------------------------------------------------------------

    def _definition(self, name: str, version: int | None) -> MachineDefinition:
        try:
            return self.registry.get(name, version)
        except UnknownMachineError as err:
            raise UnknownMachine(str(err), field="machine") from None

    def _case_with_events(self, case_id: str) -> tuple[CaseRecord, builtins.list[Event]]:
        case, events = self.store.case_with_events(validation.case_ref(case_id))
        if case is None:
            raise CaseNotFound(case_id)
        return case, events

    def _definition_or_none(self, name: str, version: int) -> MachineDefinition | None:
        try:
            return self.registry.get(name, version)
        except UnknownMachineError:
            return None

    def _not_in_future(self, moment: datetime, now: datetime, field: str) -> None:
        if moment > now + self.settings.future_skew:
            raise TimeOutOfOrder(
                f"{field} {moment.isoformat()} lies in the future (now is {now.isoformat()})",
                field=field,
            )
