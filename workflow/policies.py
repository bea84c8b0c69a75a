"""The SLA policies an engine knows: the configured one and every stored version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from machines.sla import SlaPolicy, policy_from_document


class PolicyBook:
    """The current policy and every stored version, loaded again when one is missing."""

    def __init__(
        self,
        current: Mapping[str, Any],
        states: Sequence[str],
        load_stored: Callable[[], Mapping[str, Mapping[str, Any]]],
        events: Sequence[str] = (),
    ) -> None:
        self.states = tuple(states)
        self.current = policy_from_document(current, self.states, events)
        self._load_stored = load_stored
        self._known: dict[str, SlaPolicy] = {self.current.version: self.current}

    def refresh(self) -> None:
        """Read the stored policies again."""
        for version, document in self._load_stored().items():
            if version not in self._known:
                self._known[version] = policy_from_document(document, self.states)

    def known(self, *versions: str | None) -> Mapping[str, SlaPolicy]:
        """Every known policy, after making sure the named versions are among them."""
        if any(v is not None and v not in self._known for v in versions):
            self.refresh()
        return self._known

    def get(self, version: str | None) -> SlaPolicy | None:
        """The policy of that version (``None`` for no version or an unknown one)."""
        return None if version is None else self.known(version).get(version)
