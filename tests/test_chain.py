"""The canonical encoding of events: stable bytes, equal to the reference JSON encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from casework.storage import canonical_event, canonical_json, chain_hash, iso
from casework.storage.chain import column_json, parse_json

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
INSTANTS = st.datetimes(
    # hypothesis bounds are naive by its API; the drawn values carry UTC
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(
    case_id=st.text(min_size=1),
    seq=st.integers(1, 10**9),
    event=st.text(min_size=1),
    from_state=st.none() | st.text(),
    to_state=st.text(),
    actor=st.text(),
    occurred=INSTANTS,
    recorded=INSTANTS,
    data=st.dictionaries(st.text(), JSON_VALUES, max_size=4),
)
def test_canonical_bytes_equal_the_reference_encoding(
    case_id: str,
    seq: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    occurred: datetime,
    recorded: datetime,
    data: dict[str, Any],
) -> None:
    """The field-by-field encoding is byte for byte sorted, compact, UTF-8 JSON."""
    reference = json.dumps(
        {"v": 1, "case_id": case_id, "seq": seq, "event": event, "from_state": from_state,
         "to_state": to_state, "actor": actor, "occurred_at": iso(occurred),
         "recorded_at": iso(recorded), "data": data},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    ).encode()  # fmt: skip
    fields = (case_id, seq, event, from_state, to_state, actor)
    assert canonical_event(*fields, occurred, recorded, data) == reference
    assert canonical_event(*fields, iso(occurred), iso(recorded), data) == reference


def test_the_same_instant_in_any_offset_hashes_alike() -> None:
    """An instant given in +08:00 encodes as the same UTC text."""
    utc = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    shanghai = utc.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    a = canonical_event("c", 1, "open", None, "received", "x", utc, utc, {})
    b = canonical_event("c", 1, "open", None, "received", "x", shanghai, shanghai, {})
    assert a == b
    assert chain_hash("0" * 64, a) == chain_hash("0" * 64, b)
    assert iso(utc + timedelta(microseconds=1)).endswith(".000001+00:00")


@given(value=JSON_VALUES | st.dictionaries(st.integers(), JSON_VALUES, max_size=2))
def test_a_stored_column_decodes_to_what_the_canonical_form_does(value: object) -> None:
    """orjson writes the stored columns; what it refuses (integers beyond 64 bits, keys
    that are not text, lone surrogates) the standard library's canonical form writes,
    and either way the text reads back as the canonical form's does."""
    stored, canonical = column_json(value), canonical_json(value)
    assert parse_json(stored) == parse_json(canonical)
    if not _holds_a_float(value):  # a float may be spelled otherwise (1e16, 1e+16)
        assert stored == canonical


def _holds_a_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list) and any(_holds_a_float(item) for item in value)
