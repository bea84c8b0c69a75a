"""Scope is a ceiling: what a token's role and branch let it do and see.

A token's role says which kinds of thing it may do (:data:`tokens.ALLOWED`); a branch,
if the token has one, bounds every one of them. A branch token reads, writes and
administers only within its branch: the cases, the tokens (it mints tokens of its
branch only, of a role not above its own), the webhook subscriptions and their
deliveries, the outbox, the attachments, the partners and jobs, the customers it may
erase. What lies outside its branch answers as if it did not exist. A branch of
``[organisation]`` covers its stores: its token reads and acts on their cases too; a
store's token on its store's only; a token without a branch on every case (headquarters).
An auditor writes nothing anywhere. The API's routes and the console call these same
checks; what each role may *decide* is :mod:`casework.workflow.access.authority`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from casework.storage.records import CaseRecord, TokenRecord, WebhookRecord
from casework.workflow.access.tokens import ALLOWED, ROLES, Principal
from casework.workflow.display.periods import Period, period_of
from casework.workflow.display.zones import zone_named
from casework.workflow.errors import (
    AttachmentNotFound,
    CaseNotFound,
    InvalidInput,
    NotPermitted,
    OutsideBranch,
    TokenNotFound,
)

NO_CUSTOMER = "no case names this customer (or they were erased)"
"""The answer to erasing a customer the caller may not see, as to one with no case."""


def powers(role: str) -> frozenset[str]:
    """The kinds of thing (keys of :data:`tokens.ALLOWED`) a role may do."""
    return frozenset(action for action, roles in ALLOWED.items() if role in roles)


def within(principal: Principal, branch: str | None, what: str) -> None:
    """Refuse a branch token ``what`` done for another branch, or for none (every
    branch): :class:`NotPermitted`."""
    if not principal.within(branch):
        raise NotPermitted(f"a token of branch {principal.branch} {what} of that branch only")


class Cases(Protocol):
    """Where cases are read by id (an engine)."""

    def get(self, case_id: str) -> CaseRecord:
        """The case, or :class:`CaseNotFound`."""
        ...


def opening_unit(principal: Principal, asked: str | None) -> str | None:
    """The branch (store or branch) a case the principal opens belongs to: the one asked
    for if it lies within the token's branch, the token's own if none is asked;
    :class:`OutsideBranch` for another."""
    if principal.branch is None or asked in (None, ""):
        return principal.branch if principal.branch is not None else asked or None
    if not principal.within(asked):
        raise OutsideBranch(principal.branch)
    return asked


def visible_case(cases: Cases, principal: Principal, case_id: str) -> CaseRecord:
    """The case, if the principal may see it; :class:`CaseNotFound` otherwise, so that a
    branch token learns nothing of other branches' cases."""
    case = cases.get(case_id)
    if not principal.sees(case):
        raise CaseNotFound(case_id)
    return case


def report_unit(principal: Principal, asked: str | None) -> str | None:
    """The branch a report covers: the one asked for if it lies within the token's
    branch, else the token's own (every branch, without one); :class:`NotPermitted` for
    one outside it."""
    if asked not in (None, "") and not principal.within(asked):
        raise NotPermitted(f"a token of branch {principal.branch} may not report on {asked}")
    return asked or principal.branch


def whole_database(principal: Principal, what: str) -> None:
    """Refuse a branch token what spans every branch (verifying, exporting the whole
    history, reports on every partner): :class:`NotPermitted`."""
    if principal.branch is not None:
        raise NotPermitted(f"a token of branch {principal.branch} may not {what} every branch")


def list_unit(principal: Principal, asked: str | None) -> str | None:
    """The branch a list of cases is narrowed to: the one asked for (within the
    token's), else the token's own; :class:`NotPermitted` for one outside it."""
    if asked in (None, ""):
        return principal.branch
    if not principal.within(asked):
        raise NotPermitted(f"a token of branch {principal.branch} sees its branch's cases only")
    return asked


def writes(principal: Principal) -> None:
    """Refuse a role that writes nothing (auditors): :class:`NotPermitted`."""
    principal.require("write")


def may_mint(principal: Principal, role: str, branch: str | None) -> None:
    """Refuse a token above the minter: a role with a power the minter's lacks, or a
    branch other than the minter's own (a branchless one included)."""
    principal.require("admin")
    if role in ROLES and not powers(role) <= powers(principal.role):
        raise NotPermitted(f"a token of role {principal.role} may not make a token of role {role}")
    within(principal, branch, "makes tokens")


def sees_token(principal: Principal, token: TokenRecord) -> bool:
    """Whether the principal may list or revoke ``token`` (its branch's or its stores',
    or any without a branch)."""
    return principal.within(token.branch)


def visible_tokens(principal: Principal, tokens: Iterable[TokenRecord]) -> list[TokenRecord]:
    """The tokens of ``tokens`` the principal may see."""
    return [t for t in tokens if sees_token(principal, t)]


def may_revoke(principal: Principal, tokens: Iterable[TokenRecord], token_id: str) -> None:
    """Refuse revoking a token the principal may not see: :class:`TokenNotFound`, as for
    an id no token has."""
    principal.require("admin")
    if principal.branch is not None and not any(
        t.id == token_id for t in visible_tokens(principal, tokens)
    ):
        raise TokenNotFound(token_id)


def sees_webhook(principal: Principal, hook: WebhookRecord) -> bool:
    """Whether the principal may list or end ``hook`` (a subscription of its branch or
    its stores, or any without a branch)."""
    return principal.within(hook.branch)


def sees_cases(principal: Principal, cases: Iterable[CaseRecord]) -> bool:
    """Whether the principal may see at least one of ``cases``."""
    return any(principal.sees(c) for c in cases)


def may_download(principal: Principal, digest: str, cases: Sequence[CaseRecord]) -> None:
    """Refuse the file under ``digest`` unless one of the ``cases`` it is attached to is
    the principal's to see (a branchless token: any file kept):
    :class:`AttachmentNotFound`, as for a digest never kept."""
    principal.require("replay")
    if principal.branch is not None and not sees_cases(principal, cases):
        raise AttachmentNotFound(digest)


def may_erase(principal: Principal, cases: Sequence[CaseRecord]) -> None:
    """Refuse erasing the customer of ``cases`` (all their cases) unless every one is
    the principal's to see. A customer with no case it sees is answered as one with no
    case at all; one with cases in other branches too, 403 without naming them."""
    principal.require("admin")
    if principal.branch is None:
        return
    if not sees_cases(principal, cases):
        raise InvalidInput(NO_CUSTOMER, field="customer")
    if not all(principal.sees(c) for c in cases):
        raise NotPermitted(
            f"this customer has cases outside branch {principal.branch}: "
            "an administrator without a branch erases them"
        )


def report_period(
    principal: Principal,
    asked: Mapping[str, str | None],
    tz: str | None,
    branch: str | None,
    *,
    display_zone: str | None,
    now: datetime,
) -> Period:
    """The period and branch a report covers for ``principal``: days cut in ``tz``, else
    the configured ``display_zone``, else UTC; a branch token's own branch or one of its
    stores (another: 403)."""
    unit = report_unit(principal, branch)
    name = tz or display_zone
    zone = UTC if not name else zone_named(name, "tz")
    period, _ = period_of(**asked, zone=zone, branch=unit, now=now)
    return period
