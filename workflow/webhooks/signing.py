"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``.

A secret reads ``whsec_<base64>``; the HMAC key is its decoded bytes. A receiver checks
the signature with the same secret and refuses a timestamp too far from its clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_S = 300
"""How far a receiver lets ``webhook-timestamp`` stray from its clock."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def key_of(secret: str) -> bytes:
    """The HMAC key of a secret (its base64 part, decoded)."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}`` keyed with ``key``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one message, keyed with ``key``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def verify_key(key: bytes, given: Mapping[str, str], body: bytes, now: int) -> bool:
    """Whether ``given`` headers sign ``body`` with ``key`` within the tolerance (any of
    several space-separated signatures may match)."""
    try:
        msg_id, stamp = given["webhook-id"], int(given["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now - stamp) > TOLERANCE_S:
        return False
    expected = sign(key, msg_id, stamp, body)
    return any(hmac.compare_digest(expected, s) for s in given.get("webhook-signature", "").split())


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    return sign(key_of(secret), msg_id, timestamp, body)


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one message."""
    return signed_headers(key_of(secret), msg_id, timestamp, body)


def verify(secret: str, given: dict[str, str], body: bytes, now: int) -> bool:
    """Whether ``given`` headers sign ``body`` with ``secret`` within the tolerance (what a
    receiver does; any of several space-separated signatures may match)."""
    return verify_key(key_of(secret), given, body, now)
