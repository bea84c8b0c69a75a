"""The SLA policies an engine knows: each machine's current one and every stored version.

Every registered machine brings its own policy (:attr:`MachineDefinition.sla`), which
configuration may replace (``[sla]`` for the default machine, ``[machines.NAME.sla]``
for another); each is checked against its own machine's states and events. Stored
versions are read as stored, each checked against its digest: a document that no
longer matches its version was edited, and is reported, never used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from casework.machines import MachineRegistry
from casework.machines.calendars import Calendar
from casework.machines.sla import PolicyError, SlaPolicy, policy_from_document, policy_version
from casework.workflow.config import Settings, check_policy, configured_policies
from casework.workflow.errors import ConfigError, UnknownMachine


class PolicyBook:
    """Each machine's current policy and every stored version, loaded again when one is
    missing."""

    def __init__(
        self,
        currents: Mapping[str, SlaPolicy],
        default_machine: str,
        load_stored: Callable[[], Mapping[str, Mapping[str, Any]]],
    ) -> None:
        self.currents = dict(currents)
        self.default_machine = default_machine
        self._load_stored = load_stored
        self._known: dict[str, SlaPolicy] = {p.version: p for p in self.currents.values()}
        self.damaged: dict[str, str] = {}
        """Stored versions whose document does not match its digest or does not parse."""

    @property
    def current(self) -> SlaPolicy:
        """The default machine's current policy."""
        found = self.current_for(self.default_machine)
        if found is None:
            raise LookupError(f"machine {self.default_machine} has no SLA policy")
        return found

    def current_for(self, machine: str) -> SlaPolicy | None:
        """The policy new cases of ``machine`` run under (``None``: they have no clocks)."""
        return self.currents.get(machine)

    def calendars(self) -> dict[str, Calendar]:
        """The calendars of every current policy by name (the default machine's first)."""
        found: dict[str, Calendar] = {}
        ordered = sorted(self.currents.items(), key=lambda i: i[0] != self.default_machine)
        for _, policy in ordered:
            for name, calendar in policy.calendars.items():
                found.setdefault(name, calendar)
        return found

    def refresh(self) -> None:
        """Read the stored policies again, each checked against its digest."""
        for version, document in self._load_stored().items():
            if not isinstance(document, Mapping):
                self.damaged[version] = f"stored SLA policy {version}: its document is not JSON"
                continue
            if policy_version(document) != version:
                self.damaged[version] = (
                    f"stored SLA policy {version}: its document does not match its digest "
                    "(it was edited after it was stored)"
                )
                continue
            self.damaged.pop(version, None)
            if version in self._known:
                continue
            try:
                self._known[version] = policy_from_document(document, None)
            except PolicyError as err:
                self.damaged[version] = f"stored SLA policy {version}: {err}"

    def known(self, *versions: str | None) -> Mapping[str, SlaPolicy]:
        """Every known policy, after making sure the named versions are among them."""
        if any(v is not None and v not in self._known for v in versions):
            self.refresh()
        return self._known

    def get(self, version: str | None) -> SlaPolicy | None:
        """The policy of that version (``None`` for no version or an unknown one)."""
        return None if version is None else self.known(version).get(version)


def current_policies(registry: MachineRegistry, settings: Settings) -> dict[str, SlaPolicy]:
    """Each registered machine's current SLA policy: the configured one where the
    configuration gives one, else the machine's own; checked against the newest version
    of the machine (:class:`ConfigError` names the key)."""
    configured = configured_policies(settings)
    newest = {d.name: d for d in registry}  # the registry iterates oldest version first
    if settings.default_machine not in newest:
        raise UnknownMachine(
            f"{settings.source}: intake.default_machine: no machine {settings.default_machine!r}"
            f"; registered: {', '.join(registry.names())}",
            field="default_machine",
        )
    unknown = sorted(set(configured) - set(newest))
    if unknown:
        key = configured[unknown[0]][0]
        raise ConfigError(f"{settings.source}: {key}: no machine {unknown[0]!r} is registered")
    found = {}
    for name, definition in newest.items():
        key, document = configured.get(
            name, (f"machine {name} v{definition.version}: sla", definition.sla)
        )
        if document is not None:
            where = key if name not in configured else f"{settings.source}: {key}"
            found[name] = check_policy(document, definition.states, definition.events, where)
    return found
