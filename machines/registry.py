"""The registry of machine definitions, keyed by (name, version)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from casework.machines.definition import MachineDefinition


class UnknownMachineError(LookupError):
    """No machine of that name (and version) is registered."""

    def __init__(self, name: str, version: int | None, known: list[str]) -> None:
        self.name = name
        self.version = version
        self.known = known
        wanted = name if version is None else f"{name} v{version}"
        super().__init__(f"unknown machine {wanted!r}; registered: {', '.join(known) or 'none'}")


class MachineRegistry:
    """Maps (name, version) to a definition. A registered version never changes."""

    def __init__(self, definitions: Iterable[MachineDefinition] = ()) -> None:
        self._by_key: dict[tuple[str, int], MachineDefinition] = {}
        self._evidenced: set[str] = set()
        self._relating: set[str] = set()
        for definition in definitions:
            self.register(definition)

    def register(self, definition: MachineDefinition) -> None:
        """Add a definition; registering another one under a taken key is an error."""
        existing = self._by_key.get(definition.key)
        if existing is not None and existing is not definition:
            raise ValueError(
                f"machine {definition.name} v{definition.version} is already registered; "
                "a changed machine needs a new version"
            )
        self._by_key[definition.key] = definition
        self._evidenced.update(definition.checks.evidenced)
        if definition.relations is not None:
            self._relating.update(definition.relations.events)

    def evidenced(self, event: str) -> bool:
        """Whether a registered machine's remedy rules read the evidence ``event`` gives
        (looked up once per fire: kept as one set, not found by walking the machines)."""
        return event in self._evidenced

    def relates(self, event: str) -> bool:
        """Whether a registered machine relates cases by ``event`` (``link``,
        ``merge_into``...), kept as one set as :meth:`evidenced` is."""
        return event in self._relating

    def get(self, name: str, version: int | None = None) -> MachineDefinition:
        """The definition of that version, or the newest version when none is given."""
        if version is not None:
            found = self._by_key.get((name, version))
        else:
            versions = [d for (n, _), d in self._by_key.items() if n == name]
            found = max(versions, key=lambda d: d.version) if versions else None
        if found is None:
            raise UnknownMachineError(name, version, self.names())
        return found

    def names(self) -> list[str]:
        """Every registered machine as ``name vN``, sorted."""
        return [f"{n} v{v}" for n, v in sorted(self._by_key)]

    def __iter__(self) -> Iterator[MachineDefinition]:
        return iter(self._by_key[key] for key in sorted(self._by_key))

    def __len__(self) -> int:
        return len(self._by_key)
