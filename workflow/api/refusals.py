"""Refusals only HTTP has: a stale ``If-Match`` (412), a token revoking itself and a
conflict with what is there (409)."""

from __future__ import annotations

from casework.workflow.errors import ConcurrentUpdate, Conflict


class PreconditionFailed(ConcurrentUpdate):
    """The case is not at the version ``If-Match`` names (HTTP 412 Precondition Failed);
    a lost race without ``If-Match`` stays a :class:`ConcurrentUpdate` (409)."""

    http_status = 412


class TokenInUse(Conflict):
    """A token may not revoke itself: the request would lock its own caller out (409)."""

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(
            f"token {token_id} is the one this request is made with: revoke it with another "
            "administrator's token"
        )


class StateConflict(Conflict):
    """The request conflicts with what is there now: an id registered already, a retry of
    a row that is no dead letter (HTTP 409 Conflict); ``field`` names the field at odds."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
