"""The engine: opens cases, fires events, reads, replays and verifies them.

A thin facade: each method checks its input, opens the transaction where it writes,
and hands the work to a service on the engine's :class:`~.context.Context`
(``cases/`` opening, firing, reading, relations, attachments; ``sla/`` deadlines and
replanning; ``audit/`` verification; ``privacy/`` erasure). A short command loads
only what it uses: replay, verification and deadline processing are imported by the
methods that need them.

One transition is one database transaction: the event is checked against the stored
state through the case's machine version, appended to the hash chain, and the case row
moved on with ``WHERE version = expected``. Either all of it is stored or none of it.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine as SAEngine

from casework.machines import Folded, MachineRegistry
from casework.storage import make_engine, prepare_engine, upgrade
from casework.storage.database import (
    HostConnection,
    in_transactions,
    is_pooled,
    sqlite_file,
    tables_of,
)
from casework.storage.migrate import HEAD, revision_of
from casework.storage.port import Store
from casework.storage.records import CaseQuery
from casework.storage.sql_store import SqlStore
from casework.storage.table_prefix import use_prefix
from casework.workflow.cases import attachments, firing, opening, reading, relations
from casework.workflow.cases.paging import Page
from casework.workflow.cases.reading import MIN_PREFIX
from casework.workflow.catalog import installed_registry
from casework.workflow.clock import Clock, SystemClock, aware
from casework.workflow.config import Settings
from casework.workflow.context import Context
from casework.workflow.errors import InvalidInput
from casework.workflow.logs import library_logger
from casework.workflow.results import Case, Event, Replay, VerifyReport
from casework.workflow.storage_boundary import at_storage_boundary

if TYPE_CHECKING:
    from casework.workflow.audit.verification import SecondHalf
    from casework.workflow.sla.due import Fired
    from casework.workflow.sla.views import Overdue

__all__ = ["MIN_PREFIX", "Engine"]


def _verify_from(
    url: str, settings: Settings, tables: tuple[str | None, str | None], low: str
) -> VerifyReport:
    """Verify the cases with ids from ``low`` on (in the second process of a verify), in
    the schema and under the table prefix of ``tables``."""
    schema, prefix = tables
    with Engine.open(
        url, config=settings, read_only=True, schema=schema, table_prefix=prefix
    ) as engine:
        from casework.workflow.audit.verification import verify_part

        return verify_part(engine.context, None, (low, None))


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
        self._store: Store = self.context.store

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
        table_prefix: str | None = None,
    ) -> Engine:
        """An engine on ``url`` (or an existing SQLAlchemy engine), schema brought up to date.

        A current schema costs one query to confirm. With ``migrate=False`` (operators
        who run ``casework migrate`` themselves) a schema that is not current is an
        error instead. With ``read_only`` (a URL only) the database refuses every write,
        nothing is migrated, and a schema that is not current is an error: auditing
        needs no more. A ``schema`` (PostgreSQL, a URL only) keeps casework's tables in
        a schema of their own beside a host application's (made when first migrated);
        ``None`` is ``public``, as before. A ``table_prefix`` (``cw_``: lower-case
        letters, digits and ``_``) puts every table, index and the version table of
        casework's under that prefix, on any database: casework then shares a SQLite
        file, or a PostgreSQL schema, with a host's same-named tables.
        """
        if isinstance(url, str):
            path = sqlite_file(url)
            if read_only and path is not None and not os.path.exists(path):
                raise InvalidInput(f"no database file {path}", field="db")
            made = make_engine(url, read_only=read_only, schema=schema, table_prefix=table_prefix)
            db, owns = made, True
        elif schema not in (None, "", "public"):
            raise InvalidInput(
                "a schema is given with a URL: casework's engine sets its sessions'"
                " search_path, which a host's engine keeps for its own",
                field="db",
            )
        else:
            prepare_engine(url)
            host = in_transactions(url)  # casework's statements commit together
            # a copy sharing the host's pool: only casework's statements are translated
            db = use_prefix(host.execution_options(), table_prefix) if table_prefix else host
            owns = False
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
                        " open it with migrate=True (the default) to upgrade it, or run"
                        " `casework migrate` first",
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
        self._store.close()
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
        return opening.open_case(
            self.context, customer=customer, summary=summary, channel=channel,
            category=category, actor=actor, contact=contact, branch=branch, priority=priority,
            received_at=received_at, machine=machine, attributes=attributes, case_id=case_id,
            within=within, connection=connection,
        )  # fmt: skip

    @at_storage_boundary
    def related(self, case_id: str) -> builtins.list[dict[str, Any]]:
        """The cases ``case_id`` is linked to or merged with, either way, oldest first:
        each with the event that relates them (case, number, event, kind, when)."""
        return relations.related(self.context, case_id)

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
        (one elsewhere by ``NOTIFY`` on PostgreSQL, by its poll on SQLite), and the
        ``event_fired`` log line is written then. Checks that read other cases
        (``link``, evidence, authority) see committed data only.

        Raises :class:`CaseNotFound`, :class:`EventNotAllowed`, :class:`GuardFailed`,
        :class:`ConcurrentUpdate` (``expected_version`` is stale) or :class:`InvalidInput`.
        """
        return firing.fire(
            self.context, case_id, event, actor=actor, data=data, note=note, at=at,
            expected_version=expected_version, within=within, role=role, connection=connection,
        )  # fmt: skip

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
        return attachments.attach(
            self.context, case_id, content, kind=kind, name=name, actor=actor,
            connection=connection,
        )  # fmt: skip

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
            self.context.server_clock.check()
        return erase(self.context, customer, actor=actor, reason=reason, dry_run=dry_run)

    @at_storage_boundary
    def erase_due(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Erase every customer ``[privacy] erase_after_days`` makes due (retention)."""
        from casework.workflow.privacy.erasure import erase_due

        if not dry_run:
            self.context.server_clock.check()
        return erase_due(self.context, dry_run=dry_run)

    @at_storage_boundary
    def finish_erasure(self) -> dict[str, Any]:
        """Complete the compaction of the database files that earlier erasures left
        pending because a reader held them (nothing to do if none is)."""
        from casework.workflow.privacy.erasure import finish

        return finish(self.context)

    # -- reading ---------------------------------------------------------------------

    @at_storage_boundary
    def get(self, case_id: str) -> Case:
        """The case, or :class:`CaseNotFound`."""
        return reading.get(self.context, case_id)

    @at_storage_boundary
    def resolve(self, ref: str, branch: str | None = None) -> str:
        """The id of the case ``ref`` names: its id, or (for people typing) a unique
        prefix of at least :data:`MIN_PREFIX` characters; among ``branch``'s cases only,
        if given (another branch's case answers as one that does not exist).
        :class:`CaseNotFound` for none, :class:`InvalidInput` naming the candidates when
        a prefix is not unique."""
        return reading.resolve(self.context, ref, branch)

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
        query = CaseQuery(state, branch, owner, customer, channel, category, priority)
        return reading.matching(self.context, query, limit)

    def scoped(self, query: CaseQuery) -> CaseQuery:
        """``query`` with its ``branch`` standing for the units it covers: a branch of
        ``[organisation]`` and its stores, a store or another unit itself."""
        return reading.scoped(self.context, query)

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
        return reading.page(
            self.context, query, limit=limit, cursor=cursor, by_due=by_due, count=count
        )

    def closed_states(self) -> tuple[str, ...]:
        """The states in which a case of some machine is closed (final)."""
        return reading.closed_states(self.context)

    @at_storage_boundary
    def history(self, case_id: str) -> builtins.list[Event]:
        """The case's events, oldest first."""
        return reading.case_with_events(self.context, case_id)[1]

    @at_storage_boundary
    def timeline(self, case_id: str) -> builtins.list[tuple[Event, Folded]]:
        """Each event of the case with the case as it stood right after it."""
        return reading.timeline(self.context, case_id)

    @at_storage_boundary
    def replay(self, case_id: str, at: datetime | None = None) -> Replay:
        """The case rebuilt from its events alone, at the end or as it stood at ``at``."""
        return reading.replay(self.context, case_id, at)

    @at_storage_boundary
    def verify(
        self,
        case_id: str | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = 1,
    ) -> VerifyReport:
        """Check every hash chain and that every case row equals its replay.

        ``progress(cases, events)`` is called every 1,000 cases, for long runs. With
        ``workers=2`` a whole-database check runs in two processes, each taking half
        the cases (by id) from its own snapshot; every case is still checked against
        one consistent view of its own rows. It needs the installed machines and a
        database other processes can open (not in-memory SQLite), else it runs in one.
        ``workers=None`` leaves it to casework: two processes on a machine with two
        cores or more, for a history of at least
        :data:`~casework.workflow.audit.parallel_verify.SPLIT_EVENTS` events, where
        the second process's start-up pays for itself; else one.
        """
        from casework.workflow.audit.parallel_verify import SPLIT_EVENTS
        from casework.workflow.audit.verification import verify

        second = self._second_process(case_id, workers)
        min_events = SPLIT_EVENTS if workers is None else 0
        return verify(self.context, case_id, progress, second, min_events)

    def _second_process(self, case_id: str | None, workers: int | None) -> SecondHalf | None:
        """How a whole-database verify checks its upper half in a second process, if it
        can: with the installed machines, on a database another process can open."""
        if workers is None:
            from casework.workflow.audit.parallel_verify import usable_workers

            workers = usable_workers()
        if case_id is not None or workers < 2 or not self.context.installed:
            return None
        if self.db.url.database in (None, "", ":memory:"):
            return None
        url = self.db.url.render_as_string(hide_password=False)
        if is_pooled(self.db):  # the second process goes through the bouncer too
            url += ("&" if "?" in url else "?") + "pool_mode=transaction"
        return partial(_verify_from, url, self.settings, tables_of(self.db))

    # -- SLA deadlines ----------------------------------------------------------------

    def on_deadline_planned(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(due_at)`` after a commit that planned or moved a deadline.

        The worker uses it to re-arm at once when this process plans an earlier
        deadline than the one it sleeps for (others are found by its safety poll).
        """
        self.context.planned_listeners.append(listener)

    @at_storage_boundary
    def process_due(
        self, now: datetime | None = None, *, batch: int = 200, max_batches: int | None = None
    ) -> builtins.list[Fired]:
        """Fire every deadline due at ``now`` (default: the clock's now) exactly once
        (``max_batches``: at most that many transactions of ``batch``; call again)."""
        moment = self.clock.now() if now is None else aware(now, "now")
        if now is not None:
            self.context.not_in_future(moment, self.clock.now(), "now")
        self.context.server_clock.check(moment)
        from casework.workflow.sla.due import process_due

        return process_due(
            self._store, self.context.rules, moment, batch, self.context.log, max_batches,
            self.settings.organisation, self.settings.notify,
        )  # fmt: skip

    @at_storage_boundary
    def next_due(self) -> datetime | None:
        """When the earliest pending deadline falls due."""
        return self._store.deadlines.next_due()

    @at_storage_boundary
    def overdue(
        self, now: datetime | None = None, *, query: CaseQuery | None = None
    ) -> builtins.list[Overdue]:
        """Open cases with a clock past its target, latest first (of those ``query``
        matches, if given; its branch: its stores' too)."""
        moment = self.clock.now() if now is None else aware(now, "now")
        from casework.workflow.sla.views import overdue

        return overdue(self.context, moment, query)

    @at_storage_boundary
    def heartbeat(self, worker: str, started_at: datetime) -> None:
        """Record that the worker named ``worker`` lives now (``/readyz`` reads it); not
        when this host's clock runs ahead (it could fire nothing: it must not look alive)."""
        self.context.server_clock.check()
        self._store.service.beat(worker, started_at, self.clock.now())

    @at_storage_boundary
    def worker_age(self) -> float | None:
        """Seconds since a worker last woke (its heartbeat), ``None`` if none ever ran:
        what ``/readyz?worker=1``, the metrics and the console's banner judge by."""
        beat = self._store.service.latest_beat()
        return None if beat is None else (self.clock.now() - beat.beat_at).total_seconds()

    @at_storage_boundary
    def explain_sla(self, case_id: str) -> dict[str, Any]:
        """How each SLA clock of the case stands and how its next deadline was computed."""
        from casework.workflow.sla.views import explained

        return explained(self.context, case_id)

    @at_storage_boundary
    def replan(self, case_id: str, *, actor: str) -> Case:
        """Move an open case to the configured SLA policy, recording a ``replan`` event."""
        from casework.workflow.sla.replanning import replan

        return replan(self.context, case_id, actor=actor)

    @at_storage_boundary
    def replan_all(self, *, actor: str, dry_run: bool = False) -> dict[str, Any]:
        """Move every open case not under its machine's configured policy to it (a
        ``replan`` each), or with ``dry_run`` only say what would change: each case's
        pending deadlines before and after. Returns the summary."""
        from casework.workflow.sla.replanning import replan_all

        return replan_all(self.context, actor=actor, dry_run=dry_run)
