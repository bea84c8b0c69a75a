"""The organisation's three levels (seed 003): headquarters (总部), branches (分部) and
their stores (门店).

A case's ``branch`` holds a store or a branch. ``[organisation.branches]`` says which
stores belong to which branch; every branch belongs to headquarters. A scope (a token's
branch, a list's ``--branch``) covers the value itself and, for a branch, its stores; no
scope covers everything (headquarters). A value the organisation does not name is a
unit of its own: it covers itself only, and in a rollup it is a branch of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from casework.workflow.errors import ConfigError

LEVELS = ("company", "branch", "store")
"""The levels of a rollup, top first."""


@dataclass(frozen=True)
class Organisation:
    """Which stores belong to which branch; branches belong to the company."""

    branches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each branch's stores."""
    company: str = "company"
    """What the company's total row is called (``[organisation] company``)."""

    def covered(self, scope: str) -> frozenset[str]:
        """The ``branch`` values a scope covers: itself, and a branch's stores."""
        return frozenset((scope, *self.branches.get(scope, ())))

    def branch_of(self, unit: str) -> str:
        """The branch a store belongs to; a branch, or a unit not named, itself."""
        for branch, stores in self.branches.items():
            if unit in stores:
                return branch
        return unit

    def level(self, unit: str) -> str:
        """``branch`` for a configured branch or an unnamed unit, ``store`` for a store."""
        return "store" if self.branch_of(unit) != unit else "branch"


def organisation(body: Any, source: str) -> Organisation:
    """The ``[organisation]`` section: ``company`` and ``[organisation.branches]``, each
    branch a list of its stores; a store in two branches, or named like a branch, is
    refused naming the key."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [organisation] must be a table")
    unknown = set(body) - {"company", "branches"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown key organisation.{sorted(unknown)[0]}; known: company, branches"
        )
    company = body.get("company", "company")
    if not isinstance(company, str) or not company.strip():
        raise ConfigError(f"{source}: organisation.company must be a name")
    table = body.get("branches", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [organisation.branches] must be a table of branches")
    branches: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for branch, stores in table.items():
        where = f"{source}: organisation.branches.{branch}"
        if not branch.strip() or len(branch) > 200:
            raise ConfigError(f"{where}: a branch is named by 1 to 200 characters")
        if not isinstance(stores, list) or not all(
            isinstance(s, str) and s.strip() and len(s) <= 200 for s in stores
        ):
            raise ConfigError(f"{where} must be a list of store names (1 to 200 characters)")
        for store in stores:
            if store in owner or store in table:
                other = owner.get(store, store)
                raise ConfigError(f"{where}: store {store!r} is already the unit {other!r}")
            owner[store] = branch
        branches[branch] = tuple(stores)
    return Organisation(branches, company.strip())


def rollup(
    organisation: Organisation,
    rows: Iterable[tuple[str, Mapping[str, int]]],
) -> list[dict[str, Any]]:
    """Counts per unit rolled up store -> branch -> company: for each branch with counts
    (as ``[organisation]`` lists them, then units it does not name, by name) its row,
    then its stores' rows (as listed); last the company's total row.
    Each row: ``level``, ``name``, ``branch`` (a store's), and the summed counts."""
    per_unit: dict[str, dict[str, int]] = {}
    for unit, counts in rows:
        into = per_unit.setdefault(unit, {})
        for key, value in counts.items():
            into[key] = into.get(key, 0) + value
    grouped: dict[str, list[str]] = {}
    for unit in per_unit:
        grouped.setdefault(organisation.branch_of(unit), []).append(unit)
    found: list[dict[str, Any]] = []
    total: dict[str, int] = {}
    named = [b for b in organisation.branches if b in grouped]
    for branch in named + sorted(set(grouped) - set(named)):
        summed: dict[str, int] = {}
        for unit in grouped[branch]:
            for key, value in per_unit[unit].items():
                summed[key] = summed.get(key, 0) + value
                total[key] = total.get(key, 0) + value
        found.append({"level": "branch", "name": branch, "branch": branch, **summed})
        for store in (s for s in organisation.branches.get(branch, ()) if s in per_unit):
            found.append({"level": "store", "name": store, "branch": branch, **per_unit[store]})
    found.append({"level": "company", "name": organisation.company, "branch": None, **total})
    return found
