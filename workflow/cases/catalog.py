"""Finding machine definitions: the ``casework.machines`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from machines import COMPLAINT_V1, MachineDefinition, MachineRegistry

ENTRY_POINT_GROUP = "casework.machines"


def installed_registry() -> MachineRegistry:
    """A registry of every machine installed under ``casework.machines``.

    The standard complaint machine registers itself there too; it is added directly
    as well so that a source checkout that was never installed still has it.
    """
    registry = MachineRegistry([COMPLAINT_V1])
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        definition = entry.load()
        if not isinstance(definition, MachineDefinition):
            raise TypeError(
                f"entry point {entry.name} = {entry.value} in {ENTRY_POINT_GROUP} "
                "must name a MachineDefinition"
            )
        registry.register(definition)
    return registry
