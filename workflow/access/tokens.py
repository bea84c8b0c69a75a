"""Bearer tokens: issued once, stored as a SHA-256 hash, each with an actor, a role and
perhaps a branch.

A token reads ``cw_<id>_<secret>``: the id names it in lists and revocations, the
secret proves it. Roles:

- ``agent`` opens cases, fires events and reads cases;
- ``supervisor`` does what an agent does and replays cases;
- ``auditor`` reads, replays, verifies and exports, and writes nothing;
- ``admin`` does everything, webhooks included.

A token with a branch sees and touches only the cases of that branch: a branch's
token those of its stores too, a store's token its store's (``[organisation]``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from casework.storage.port import Store
from casework.storage.records import CaseRecord, TokenRecord
from casework.workflow import validation
from casework.workflow.access.organisation import Organisation
from casework.workflow.errors import InvalidInput, NotAuthenticated, NotPermitted, TokenNotFound

ROLES = ("agent", "supervisor", "auditor", "admin")
"""Every role a token can have."""

ALLOWED: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "write": frozenset({"agent", "supervisor", "admin"}),
    "replay": frozenset({"supervisor", "auditor", "admin"}),
    "audit": frozenset({"auditor", "admin"}),
    "admin": frozenset({"admin"}),
}
"""Which roles may do each kind of thing."""
ACTIONS: dict[str, str] = {
    "read": "read cases",
    "write": "open cases or record events",
    "replay": "replay cases or read reports",
    "audit": "audit the history",
    "admin": "administer casework",
}
"""Each kind of thing in the words of a refusal."""

PREFIX = "cw_"


@dataclass(frozen=True)
class Issued:
    """A token just made: its record and its secret text, shown this once."""

    record: TokenRecord
    token: str


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: the token's actor, role and branch (and the units
    that branch covers: itself and, for a branch of ``[organisation]``, its stores)."""

    token_id: str
    actor: str
    role: str
    branch: str | None
    covers: frozenset[str] = field(default=frozenset())

    def may(self, action: str) -> bool:
        """Whether the role may do ``action`` (a key of :data:`ALLOWED`)."""
        return self.role in ALLOWED[action]

    def require(self, action: str) -> None:
        """Raise :class:`NotPermitted` unless the role may do ``action``."""
        if not self.may(action):
            raise NotPermitted(f"a token of role {self.role} may not {ACTIONS[action]}")

    def within(self, unit: str | None) -> bool:
        """Whether ``unit`` (a case's branch: a store or a branch) is within the token's
        branch (every unit, without one)."""
        return self.branch is None or unit == self.branch or unit in self.covers

    def units(self) -> tuple[str, ...] | None:
        """The case branches the token covers, its own and its stores (``None``: every
        one)."""
        return None if self.branch is None else tuple(sorted(self.covers | {self.branch}))

    def sees(self, case: CaseRecord) -> bool:
        """Whether the case is within the token's branch (every case, without one)."""
        return self.within(case.branch)


def principal_of(record: TokenRecord, organisation: Organisation | None = None) -> Principal:
    """The principal of a token: its branch covering that branch's stores."""
    covers: frozenset[str] = frozenset()
    if record.branch is not None and organisation is not None:
        covers = organisation.covered(record.branch)
    return Principal(record.id, record.actor, record.role, record.branch, covers)


def secret_hash(token: str) -> str:
    """The hash a token is stored under."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(store: Store, actor: str, role: str, branch: str | None, now: datetime) -> Issued:
    """Make a token; its secret is in the result and nowhere else."""
    actor = validation.agent_id(actor, "actor")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; roles: {', '.join(ROLES)}", field="role")
    if branch is not None:
        branch = validation.text(branch, "branch", max_chars=200)
    token_id = secrets.token_hex(4)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    record = TokenRecord(token_id, actor, role, branch, now)
    store.access.add_token(record, secret_hash(token))
    return Issued(record, token)


def authenticate(
    store: Store, token: str | None, organisation: Organisation | None = None
) -> Principal:
    """Who ``token`` speaks for (its branch covering its stores under ``organisation``);
    :class:`NotAuthenticated` for none, an unknown one or a revoked one."""
    if not token:
        raise NotAuthenticated("give a token: Authorization: Bearer <token>")
    record = store.access.token_by_hash(secret_hash(token))
    if record is None:  # looked up by its hash: no secret is compared in Python
        raise NotAuthenticated("unknown token")
    if record.revoked_at is not None:
        raise NotAuthenticated(f"token {record.id} was revoked")
    return principal_of(record, organisation)


def revoke(store: Store, token_id: str, now: datetime) -> TokenRecord:
    """Revoke a token; it authenticates nothing from now on."""
    record = store.access.revoke_token(token_id, now)
    if record is None:
        raise TokenNotFound(token_id)
    return record
