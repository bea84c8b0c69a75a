"""Finding machine definitions: the ``casework.machines`` entry-point group."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint, distributions
from typing import Any

from casework.machines import COMPLAINT_V1, MachineDefinition, MachineRegistry
from casework.machines.after_sales import COMPLAINT_V2

ENTRY_POINT_GROUP = "casework.machines"


def installed_registry() -> MachineRegistry:
    """A registry of every machine installed under ``casework.machines``.

    The standard complaint machine registers itself there too; it is added directly
    as well so that a source checkout that was never installed still has it.
    """
    registry = MachineRegistry([COMPLAINT_V1, COMPLAINT_V2])
    for entry in _entry_points():
        definition = entry.load()
        if not isinstance(definition, MachineDefinition):
            raise TypeError(
                f"entry point {entry.name} = {entry.value} in {ENTRY_POINT_GROUP} "
                "must name a MachineDefinition"
            )
        registry.register(definition)
    return registry


_FOUND: dict[tuple[tuple[str, float], ...], tuple[EntryPoint, ...]] = {}
"""The entry points found for a state of ``sys.path`` (its folders and their times)."""


def _path_state() -> tuple[tuple[str, float], ...]:
    """``sys.path`` with each folder's modification time: installing or removing a
    distribution changes its folder's time, so a cached scan is never stale."""
    state = []
    for folder in sys.path:
        try:
            state.append((folder, os.stat(folder or ".").st_mtime))
        except OSError:
            state.append((folder, -1.0))
    return tuple(state)


def _entry_points() -> Iterator[EntryPoint]:
    """The group's entry points, unique by name, read once per state of ``sys.path``
    (each engine opened in a process would otherwise read every distribution's
    metadata again)."""
    key = _path_state()
    found = _FOUND.get(key)
    if found is None:
        found = tuple(_scanned())
        _FOUND.clear()
        _FOUND[key] = found
    return iter(found)


def _scanned() -> Iterator[EntryPoint]:
    """The group's entry points, unique by name. Only the distributions whose
    ``entry_points.txt`` names the group are parsed (parsing every installed one cost a
    short command a tenth of its time)."""
    seen = set()
    header = f"[{ENTRY_POINT_GROUP}]"
    for dist in distributions():
        text = dist.read_text("entry_points.txt")
        if not text or header not in text:
            continue
        for entry in dist.entry_points.select(group=ENTRY_POINT_GROUP):
            if entry.name not in seen:
                seen.add(entry.name)
                yield entry


def describe(definition: MachineDefinition) -> dict[str, Any]:
    """A machine's JSON description."""
    return {
        "name": definition.name,
        "version": definition.version,
        "title": definition.title,
        "initial_state": definition.initial_state,
        "states": list(definition.states),
        "final_states": sorted(definition.final_states),
        "events": list(definition.events),
        "transitions": [
            {
                "event": rule.event,
                "from": rule.source,
                "to": rule.target,
                "conditions": [c.name for c in rule.conditions],
            }
            for rules in definition.rules.values()
            for rule in rules
        ],
        "attributes": {name: spec.kind for name, spec in definition.attributes.items()},
    }
