"""The context the services below the engine work with.

The services (opening and firing, reading, verification, erasure, reports, partners,
checkpoints, what-if, the outbox) take a :class:`Context` instead of the
:class:`~casework.workflow.engine.Engine`: what they need is the store, the clock,
the settings, the machines and policies, how a case's rules are found, and the log,
not the engine's methods. An engine builds one and hands it out as
``Engine.context``, the handle of the composition layer (the command line, the HTTP
API, the console) for the services it builds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from casework.machines import CaseRules, MachineDefinition, MachineRegistry, UnknownMachineError
from casework.machines.clocks import Planned
from casework.storage import CaseRecord
from casework.storage.database import HostConnection, after_commit
from casework.storage.port import Store
from casework.workflow.clock import Clock
from casework.workflow.config import Settings
from casework.workflow.errors import InvalidInput, TimeOutOfOrder, UnknownMachine
from casework.workflow.policies import PolicyBook, current_policies
from casework.workflow.server_clock import ServerClock
from casework.workflow.transitions import profile_of


class Context:
    """One engine's parts, shared with the services it delegates to. Thread-safe as
    its parts are; listeners are added while the engine is set up."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        registry: MachineRegistry,
        log: Any,
        *,
        installed: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.log = log
        self.installed = installed
        """Whether ``registry`` is the installed machines (another process finds them too)."""
        self.policies = PolicyBook(
            current_policies(registry, settings), settings.default_machine, store.deadlines.policies
        )
        self.server_clock = ServerClock(store, clock, settings.max_clock_skew)
        """This host's clock checked against the database server's before a write."""
        self.planned_listeners: list[Callable[[datetime], None]] = []

    def definition(self, name: str, version: int | None) -> MachineDefinition:
        """The machine ``name`` at ``version`` (``None``: its latest); :class:`UnknownMachine`."""
        try:
            return self.registry.get(name, version)
        except UnknownMachineError as err:
            raise UnknownMachine(str(err), field="machine") from None

    def definition_or_none(self, name: str, version: int) -> MachineDefinition | None:
        """The machine ``name`` at ``version``, ``None`` if it is not installed."""
        try:
            return self.registry.get(name, version)
        except UnknownMachineError:
            return None

    def rules(self, case: CaseRecord) -> CaseRules:
        """The machine, policies and profile that decide a case's fold."""
        definition = self.definition(case.machine, case.machine_version)
        return CaseRules(definition, self.policies.known(case.sla_policy), profile_of(case))

    def not_in_future(self, moment: datetime, now: datetime, field: str) -> None:
        """Refuse ``moment`` (given as ``field``) further ahead of ``now`` than the skew allowed."""
        if moment > now + self.settings.future_skew:
            raise TimeOutOfOrder(
                f"{field} {moment.isoformat()} lies in the future (now is {now.isoformat()})",
                field=field,
            )

    def joinable(self, connection: HostConnection | None) -> None:
        """Refuse a host's ``connection`` whose transaction casework cannot join."""
        problem = None if connection is None else self.store.unjoinable(connection)
        if problem is not None:
            raise InvalidInput(problem, field="connection")

    def planned(self, moved: list[Planned], connection: HostConnection | None = None) -> None:
        """Tell this process's listeners of the earliest deadline ``moved``: now, or
        when the host commits its transaction on ``connection`` (never, if it rolls back)."""
        if not moved or not self.planned_listeners:
            return
        due = min(p.due_at for p in moved)

        def tell() -> None:
            for listener in self.planned_listeners:
                listener(due)

        after_commit(connection, tell)
