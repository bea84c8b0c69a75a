"""``Idempotency-Key`` on ``POST``: the same key and body within 24 hours returns the first
answer and does nothing again; the same key with another body is refused (422).

A key is reserved before the request runs (a placeholder with status 0), so a second
request with the key while the first is under way is refused (409) rather than run
twice; a request that fails drops its reservation, and may be sent again. A reservation
is a lease of :data:`LEASE` from its start: a placeholder whose request died with its
process (nothing recorded, nothing dropped) is taken over by the first retry after
that, which runs the request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from casework.storage.port import Store
from casework.storage.records import Remembered
from casework.workflow.access.tokens import Principal
from casework.workflow.errors import Conflict, InvalidInput

KEPT = timedelta(hours=24)
"""How long an answer is kept for its key."""
LEASE = timedelta(seconds=60)
"""How long a placeholder holds its key for the request under way (far longer than any
keyed request runs); a retry after that takes the key over."""
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class Answer:
    """What an endpoint answers: status, JSON body, and where the new thing lives."""

    status: int
    body: Any
    location: str | None = None
    replayed: bool = False


class RequestInProgress(Conflict):
    """A request with the same idempotency key is still under way (HTTP 409)."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"a request with Idempotency-Key {key!r} is still under way (if it died, the key "
            f"is free again {LEASE.seconds} s after it began)"
        )


def fingerprint(method: str, path: str, body: Any) -> str:
    """What identifies a request for its key: method, path and canonical body."""
    text = json.dumps([method, path, body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def answer_once(
    store: Store,
    principal: Principal,
    key: str | None,
    request_hash: str,
    now: datetime,
    run: Callable[[], Answer],
) -> Answer:
    """Run the request once per key; later the kept answer, marked ``replayed``."""
    if key is None:
        return run()
    if not 0 < len(key) <= MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable characters",
            field="Idempotency-Key",
        )
    for _ in range(2):
        kept = store.access.recall(principal.token_id, key)
        if kept is not None and kept.created_at < now - KEPT:
            store.access.forget(principal.token_id, key)
            kept = None
        if kept is not None:
            if kept.request_hash != request_hash:
                raise InvalidInput(
                    f"Idempotency-Key {key!r} was used for another request",
                    field="Idempotency-Key",
                )
            if kept.status != 0:
                return Answer(kept.status, kept.body, kept.location, replayed=True)
            if kept.created_at > now - LEASE:
                raise RequestInProgress(key)
            if store.access.take_over(principal.token_id, key, kept.created_at, now):
                break  # its request died: this one runs in its stead
            continue  # another retry took it over first
        if store.access.remember(
            principal.token_id, key, Remembered(request_hash, 0, {}, None, now)
        ):
            break
    else:
        raise RequestInProgress(key)
    try:
        answer = run()
    except BaseException:
        store.access.forget(principal.token_id, key)
        raise
    store.access.settle(
        principal.token_id,
        key,
        Remembered(request_hash, answer.status, answer.body, answer.location, now),
    )
    return answer
