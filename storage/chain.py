"""The hash chain over a case's events: canonical encoding, format version 1.

``hash = SHA-256(prev_hash || "\\n" || canonical JSON of the event)`` in hex, where the
canonical JSON has sorted keys, no spaces, UTF-8 text and the format version under
``"v"``. The first event of a case chains to :data:`GENESIS_HASH`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from storage.timestamps import iso

EVENT_FORMAT = 1
GENESIS_HASH = "0" * 64

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_event(
    case_id: str,
    seq: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    occurred_at: datetime,
    recorded_at: datetime,
    data: Mapping[str, Any],
) -> bytes:
    """The canonical bytes of one event, the input to its hash."""
    return _encoder.encode(
        {
            "v": EVENT_FORMAT,
            "case_id": case_id,
            "seq": seq,
            "event": event,
            "from_state": from_state,
            "to_state": to_state,
            "actor": actor,
            "occurred_at": iso(occurred_at),
            "recorded_at": iso(recorded_at),
            "data": data,
        }
    ).encode()


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """The hash of an event whose canonical bytes follow ``prev_hash`` in the chain."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()
