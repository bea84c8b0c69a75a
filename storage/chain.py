"""The hash chain over a case's events: canonical encoding, format versions 1 and 2.

``hash = SHA-256(prev_hash || "\\n" || canonical JSON of the event)`` in hex, where the
canonical JSON is the object below with sorted keys, no spaces, UTF-8 text (not
``\\u`` escapes) and the format version under ``"v"``::

    {"actor":…,"case_id":…,"data":{…},"event":…,"from_state":…,"occurred_at":…,
     "recorded_at":…,"seq":…,"to_state":…,"v":1}

Times are ISO 8601 in UTC with microseconds and ``+00:00``. The first event of a case
chains to :data:`GENESIS_HASH`.

Format 2 encodes the same way under ``"v":2``; what differs is what the data holds:
the opening event of a format-2 history names the customer, the contact and personal
attributes only by keyed commitments (``hmac-sha256:`` and 64 hex digits; the values and
the keys are kept apart and can be erased), with ``"format":2`` and the ``"subject"``
whose key it is. Every event of a case has its case's format.

The object is assembled field by field (it is on the hot path of every write and of
verification); a test proves the bytes equal those of
``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from casework.storage.timestamps import iso

EVENT_FORMAT = 1
"""The format of histories written before personal data was kept out of them."""
PERSONAL_FORMAT = 2
"""The format of new histories: personal values only as commitments."""
GENESIS_HASH = "0" * 64

_data_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
canonical_json = _data_encoder.encode
"""JSON with sorted keys, no spaces and UTF-8 text: how event data is hashed and stored."""


_STORED = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def column_json(value: Any) -> str:
    """JSON text for a stored column (a case's facts, clocks and attributes): sorted keys,
    no spaces, UTF-8 text, written by orjson (a case's clocks in a tenth of the standard
    library's time); :data:`canonical_json` for what orjson refuses (an integer beyond 64
    bits, a key that is not text, a time, a dataclass, a subclass of str or int). It
    decodes to the same values as :data:`canonical_json`'s text, which it equals but
    where a float is spelled otherwise (``1e16`` for ``1e+16``); the history's hash is
    never over it."""
    try:
        return _dumps(value, option=_STORED).decode()
    except orjson.JSONEncodeError:
        return canonical_json(value)


def parse_json(text: str | bytes) -> Any:
    """Decode stored JSON, as text or as the UTF-8 bytes a driver hands over (orjson,
    several times faster on the verification path; the standard library for what
    orjson refuses, such as integers beyond 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def canonical_event(
    case_id: str,
    seq: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    occurred_at: datetime | str,
    recorded_at: datetime | str,
    data: Mapping[str, Any] | str,
    v: int = EVENT_FORMAT,
) -> bytes:
    """The canonical bytes of one event of format ``v``, the input to its hash.

    Times may be given as datetimes or as their canonical text, and ``data`` as a
    mapping or as its canonical JSON text (as the database stores both). orjson writes
    the object (its keys are given in sorted order; it escapes strings exactly as the
    standard library's encoder without ``ensure_ascii``); every field but ``from_state``
    must be text, as the standard encoder would insist.
    """
    occurred = occurred_at if isinstance(occurred_at, str) else iso(occurred_at)
    recorded = recorded_at if isinstance(recorded_at, str) else iso(recorded_at)
    if not (
        type(case_id) is str
        and type(event) is str
        and type(to_state) is str
        and type(actor) is str
        and (from_state is None or type(from_state) is str)
    ):
        raise TypeError(f"an event's names must be text: {case_id!r} {event!r} {actor!r}")
    return _dumps(
        {
            "actor": actor,
            "case_id": case_id,
            "data": _Fragment(data if isinstance(data, str) else canonical_json(data)),
            "event": event,
            "from_state": from_state,
            "occurred_at": occurred,
            "recorded_at": recorded,
            "seq": int(seq),
            "to_state": to_state,
            "v": int(v),
        }
    )


_dumps = orjson.dumps
_Fragment = orjson.Fragment


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """The hash of an event whose canonical bytes follow ``prev_hash`` in the chain."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()
