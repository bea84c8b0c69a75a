"""Authority (seeds 000, 003: 在自己授权范围内): which decisions each role may take.

Per role, ``[authority.ROLE]`` says which remedies it may decide (``decide_remedy``),
whether it may record partner sanctions (``partner_fault``, ``suspend_settlement``),
up to how many yuan a ``refund`` or ``compensation`` on one event may be, and the
escalation level the role stands at (0: the first receiver; the ladder's levels from
1). A decision above a role's authority is refused with :class:`BeyondAuthority`,
naming the lowest role that may take it and its level: ``escalate_now`` takes the
case there. ``[authority.actors]`` gives the command line a role for an actor.

Defaults (seed 000: "if you have the authority handle it quickly, if not find someone
who can"): an agent decides repairs and paid repairs and up to 200 yuan; returns,
exchanges and partner sanctions need a supervisor (up to 2,000 yuan, level 1, the
store supervisor); an administrator decides everything (level 3, headquarters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any

from casework.machines.partner_rules import yuan
from casework.machines.warranty import REMEDIES
from casework.workflow.errors import BeyondAuthority, ConfigError, InvalidInput

DECIDING_ROLES = ("agent", "supervisor", "admin")
"""The roles that write, each with its authority (auditors write nothing)."""
SANCTIONS = ("partner_fault", "suspend_settlement")
"""The events that sanction a partner."""
MONEY_FIELDS = ("refund", "compensation")
"""The event data fields that pay money out, in yuan (on any event: ``resolve``,
``decide_remedy``, ``quote``, ``partner_fault``...)."""
REMEDY_EVENT = "decide_remedy"
ESCALATE = "escalate_now"

REMEDY_WORDS = {
    "return": "a return (退货)",
    "exchange": "an exchange (换货)",
    "repair": "a repair (维修)",
    "paid_repair": "a paid repair (收费维修)",
}
ROLE_WORDS = {"agent": "an agent", "supervisor": "a supervisor", "admin": "an administrator"}


@dataclass(frozen=True)
class RoleAuthority:
    """What one role may decide."""

    remedies: frozenset[str]
    sanctions: bool
    max_yuan: Decimal | None
    """The largest refund or compensation on one event (``None``: no limit)."""
    level: int
    """The escalation level the role decides at (0: the first receiver)."""


@dataclass(frozen=True)
class Authority:
    """The authority matrix: each deciding role's authority, and the actors' roles."""

    roles: Mapping[str, RoleAuthority] = field(
        default_factory=lambda: {
            "agent": RoleAuthority(frozenset({"repair", "paid_repair"}), False, Decimal(200), 0),
            "supervisor": RoleAuthority(frozenset(REMEDIES), True, Decimal(2000), 1),
            "admin": RoleAuthority(frozenset(REMEDIES), True, None, 3),
        }
    )
    actors: Mapping[str, str] = field(default_factory=dict)
    """``[authority.actors]``: the role of an actor on the command line."""

    def role_of(self, actor: str) -> str | None:
        """The role ``[authority.actors]`` gives ``actor``, if any."""
        return self.actors.get(actor)

    def check(
        self,
        role: str,
        event: str,
        data: Mapping[str, Any],
        ladder: Callable[[int], str | None] = lambda level: None,
        standing: Callable[[], int] = lambda: 0,
    ) -> None:
        """Refuse ``event`` with ``data`` above ``role``'s authority:
        :class:`BeyondAuthority`, naming who may decide it (``ladder`` names a level,
        ``standing`` gives the case's level now; both are asked only on a refusal)."""
        if role not in self.roles:
            if role in ("auditor",):
                raise BeyondAuthority(
                    "an auditor decides nothing", role=role, needed=None, level=None
                )
            raise InvalidInput(
                f"unknown role {role!r}; roles: {', '.join(self.roles)}", field="role"
            )
        mine = self.roles[role]
        if event == REMEDY_EVENT and data.get("remedy") in REMEDIES:
            remedy = str(data["remedy"])
            if remedy not in mine.remedies:
                what = f"decide {REMEDY_WORDS.get(remedy, remedy)}"
                self._refuse(role, what, lambda r: remedy in r.remedies, ladder, standing)
        if event in SANCTIONS and not mine.sanctions:
            what = (
                "record a partner's fault (partner_fault)"
                if event == "partner_fault"
                else "suspend a partner's settlement (suspend_settlement)"
            )
            self._refuse(role, what, lambda r: r.sanctions, ladder, standing)
        for name in MONEY_FIELDS:
            if data.get(name) is None:
                continue
            amount = yuan(data[name])
            if amount is None:
                raise InvalidInput(
                    f"{name} must be an amount in yuan, such as 150 or 99.50", field=name
                )
            if mine.max_yuan is not None and amount > mine.max_yuan:
                what = f"grant a {name} of {amount} yuan (up to {mine.max_yuan} yuan)"
                self._refuse(role, what, partial(_affords, amount), ladder, standing)

    def _refuse(
        self,
        role: str,
        what: str,
        may: Callable[[RoleAuthority], bool],
        ladder: Callable[[int], str | None],
        standing: Callable[[], int],
    ) -> None:
        """Raise :class:`BeyondAuthority`: ``role`` may not do ``what``; the lowest role
        ``may`` allow, its level, and whether the case must be escalated there."""
        able = sorted(
            ((r, a) for r, a in self.roles.items() if may(a)), key=lambda pair: pair[1].level
        )
        me = ROLE_WORDS.get(role, f"a {role}")
        if not able:
            raise BeyondAuthority(
                f"{me} may not {what}, and no role may under [authority]",
                role=role,
                needed=None,
                level=None,
            )
        needed, theirs = able[0]
        named = ladder(theirs.level)
        level = f"escalation level {theirs.level}" + (f", {named}" if named else "")
        current = standing()
        advice = (
            f"escalate the case (escalate_now) to take it to level {theirs.level}"
            if theirs.level > current
            else f"the case stands at level {current} already: hand it to them"
        )
        raise BeyondAuthority(
            f"beyond your authority: {me} may not {what}; "
            f"{ROLE_WORDS.get(needed, needed)} decides it ({level}): {advice}",
            role=role,
            needed=needed,
            level=theirs.level,
        )


def _affords(amount: Decimal, role: RoleAuthority) -> bool:
    """Whether ``role`` may pay out ``amount`` yuan on one event."""
    return role.max_yuan is None or amount <= role.max_yuan


def authority(body: Any, source: str) -> Authority:
    """The ``[authority]`` section: ``[authority.ROLE]`` tables (``remedies``,
    ``sanctions``, ``max_yuan`` or ``"unlimited"``, ``level``) over the defaults, and
    ``[authority.actors]``; every error names the key."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [authority] must be a table")
    base = Authority()
    roles = dict(base.roles)
    actors: dict[str, str] = {}
    for key, table in body.items():
        where = f"{source}: authority.{key}"
        if key == "actors":
            if not isinstance(table, Mapping) or not all(
                isinstance(v, str) and v in (*DECIDING_ROLES, "auditor") for v in table.values()
            ):
                raise ConfigError(
                    f"{where} must map actors to roles: {', '.join(DECIDING_ROLES)}, auditor"
                )
            actors = dict(table)
            continue
        if key not in DECIDING_ROLES:
            raise ConfigError(
                f"{source}: unknown key authority.{key}; known: actors, "
                + ", ".join(DECIDING_ROLES)
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        roles[key] = _role(roles[key], table, where)
    return Authority(roles, actors)


def _role(current: RoleAuthority, table: Mapping[str, Any], where: str) -> RoleAuthority:
    """One role's table over its current authority."""
    found = current
    for key, value in table.items():
        if key == "remedies":
            if not isinstance(value, list) or not all(v in REMEDIES for v in value):
                raise ConfigError(f"{where}.remedies must list remedies of: {', '.join(REMEDIES)}")
            found = replace(found, remedies=frozenset(value))
        elif key == "sanctions":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.sanctions must be true or false")
            found = replace(found, sanctions=value)
        elif key == "max_yuan":
            amount = None if value == "unlimited" else yuan(value)
            if value != "unlimited" and (amount is None or isinstance(value, bool)):
                raise ConfigError(f'{where}.max_yuan must be an amount in yuan or "unlimited"')
            found = replace(found, max_yuan=amount)
        elif key == "level":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
                raise ConfigError(f"{where}.level must be a whole number from 0 to 20")
            found = replace(found, level=value)
        else:
            raise ConfigError(
                f"{where}: unknown key {key}; known: remedies, sanctions, max_yuan, level"
            )
    return found
