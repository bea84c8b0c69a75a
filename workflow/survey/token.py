"""Survey links: ``/s/<token>``, an HMAC-SHA256 signature over one case and an expiry.

A token reads ``<case id>.<expiry, seconds since 1970 in base 36>.<signature>``; the
signature (base64url, 128 bits) covers the purpose, the case and the expiry, so it
opens that case's page only, and only until then. The first of ``[survey]``'s secrets
signs; every one of them verifies, so a secret is rotated by putting a new one first
and keeping the old one in ``previous`` for as long as the links it signed live.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from casework.workflow.errors import InvalidInput, NotAuthenticated

PURPOSE = b"casework-survey-v1"
SHAPE = re.compile(r"([0-9a-z_-]{1,64})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{22})")
"""What a token looks like; anything else is refused before any signature is computed."""


class LinkInvalid(NotAuthenticated):
    """A survey link that is malformed, signed by no configured secret, or expired."""

    def __init__(self) -> None:
        super().__init__("this link is not valid or has expired")


def _mac(secret: str, what: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), PURPOSE + b"\0" + what, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def sign(case_id: str, secrets: Sequence[str], now: datetime, days: int) -> str:
    """A token for ``case_id`` valid ``days`` from ``now``, signed with the first secret."""
    if not secrets:
        raise InvalidInput(
            "no survey secret is configured: set [survey] secret or secret_env", field="survey"
        )
    if SHAPE.fullmatch(f"{case_id}.0.{'A' * 22}") is None:
        raise InvalidInput("this case id cannot be put in a link", field="case")
    expires = _base36(int((now + timedelta(days=days)).timestamp()))
    signed = f"{case_id}.{expires}"
    return f"{signed}.{_mac(secrets[0], signed.encode('ascii'))}"


def verify(token: str, secrets: Sequence[str], now: datetime) -> str:
    """The case id ``token`` opens, or :class:`LinkInvalid`."""
    found = SHAPE.fullmatch(token)
    if found is None or not secrets:
        raise LinkInvalid()
    case_id, expires, mac = found.groups()
    signed = f"{case_id}.{expires}".encode("ascii")
    if not any(hmac.compare_digest(_mac(s, signed), mac) for s in secrets):
        raise LinkInvalid()
    if datetime.fromtimestamp(int(expires, 36), UTC) <= now:
        raise LinkInvalid()
    return case_id


def form_nonce(token: str, secrets: Sequence[str]) -> str:
    """The hidden value the survey form carries: only a page served for ``token`` has it."""
    return _mac(secrets[0], b"form\0" + token.encode("ascii")) if secrets else ""


def nonce_ok(token: str, given: str, secrets: Sequence[str]) -> bool:
    """Whether ``given`` is the form value of ``token`` under any configured secret."""
    if not given.isascii():
        return False
    what = b"form\0" + token.encode("ascii")
    return any(hmac.compare_digest(_mac(s, what), given) for s in secrets)
