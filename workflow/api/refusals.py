"""Refusals only HTTP has: a stale ``If-Match`` (412), a token revoking itself and a
conflict with what is there (409)."""

from __future__ import annotations

from casework.workflow.errors import CaseworkError, ConcurrentUpdate, InvalidInput


class PreconditionFailed(ConcurrentUpdate):
    """The case is not at the version ``If-Match`` names (HTTP 412 Precondition Failed);
    a lost race without ``If-Match`` stays a :class:`ConcurrentUpdate` (409)."""


class TokenInUse(CaseworkError):
    """A token may not revoke itself: the request would lock its own caller out (409)."""

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(
            f"token {token_id} is the one this request is made with: revoke it with another "
            "administrator's token, or with `casework tokens revoke`"
        )


class StateConflict(InvalidInput):
    """The request conflicts with what is there now: an id registered already, a retry of
    a row that is no dead letter (HTTP 409 Conflict)."""
