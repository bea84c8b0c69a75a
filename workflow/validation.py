"""Checking what callers hand in before anything is written: ids, texts, choices,
attributes and event data, for every room that takes input."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from casework.machines import AttributeSpec
from casework.workflow.errors import InvalidInput, UnknownChoice

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 and C1 control characters (U+0085 NEXT LINE among them) but tab, CR and LF."""
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029]")
"""Line breaks, the Unicode line and paragraph separators included."""
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE among them): in a name they make
``photo\u202egpj.exe`` read as ``photoexe.jpg``."""
_SURROGATE = re.compile(r"[\ud800-\udfff]")
"""Lone surrogates: what undecodable bytes of a command line become; not text."""
_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}")
MAX_NESTING = 8
_SIZED = json.JSONEncoder(ensure_ascii=False).encode
"""Event data as ``json.dumps(data, ensure_ascii=False)`` writes it, whose bytes the size
limit counts (``dumps`` builds such an encoder on every call with a keyword)."""
MAX_AGENT_CHARS = 100
"""An agent id's length limit (the owner column holds 200)."""
MAX_CASE_REF_CHARS = 200
"""The longest text taken as a case id to look up (ids are at most 40 characters)."""
EMPTY_TEXT = "{field} must be a non-empty text"
"""The refusal of an empty text (which a page words as a field to fill in)."""
LONG_TEXT = re.compile(r"(?P<field>\S+) is \d+ characters long; the limit is (?P<limit>\d+)")
"""The refusal of a text over its limit (which a page words with the field's label)."""


class Limits(Protocol):
    """The sizes event data may take (the settings' ``[limits]``)."""

    @property
    def max_note_chars(self) -> int:
        """The longest note."""

    @property
    def max_data_bytes(self) -> int:
        """The most bytes an event's data may take as JSON."""


def text(value: object, field: str, *, max_chars: int, multiline: bool = False) -> str:
    """A non-empty text without control characters (line breaks only if ``multiline``)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(EMPTY_TEXT.format(field=field), field=field)
    if len(value) > max_chars:
        raise InvalidInput(
            f"{field} is {len(value)} characters long; the limit is {max_chars}", field=field
        )
    if _SURROGATE.search(value):
        raise InvalidInput(f"{field} is not valid UTF-8 text", field=field)
    if _CONTROL.search(value) or (not multiline and _LINE_BREAK.search(value)):
        raise InvalidInput(f"{field} contains control characters", field=field)
    if not multiline and _BIDI.search(value):
        raise InvalidInput(
            f"{field} contains bidirectional control characters (such as U+202E), which "
            "make a name read as another",
            field=field,
        )
    return value


def agent_id(value: object, field: str) -> str:
    """An agent id: one line of text, no ``@`` (an id is mapped to an address by the
    configuration alone, never taken as one), at most :data:`MAX_AGENT_CHARS`."""
    agent = text(value, field, max_chars=MAX_AGENT_CHARS)
    if "@" in agent:
        raise InvalidInput(
            f"{field} {agent!r} is an agent id, not a mail address: it may not contain '@' "
            "(mail.agents maps ids to addresses)",
            field=field,
        )
    return agent


def case_ref(value: object) -> str:
    """A case id to look up: text that could name a case (else :class:`InvalidInput`)."""
    if not isinstance(value, str):
        raise InvalidInput(f"a case id is text, not {type(value).__name__}", field="case_id")
    if not value or len(value) > MAX_CASE_REF_CHARS or _SURROGATE.search(value) or "\x00" in value:
        raise InvalidInput(f"{value[:60]!r} is not a case id", field="case_id")
    return value


def new_case_id(value: object) -> str:
    """A case id a caller chooses: 1 to 40 letters, digits and ``_ . : -``, starting with
    a letter or digit (the same on every database)."""
    case = case_ref(value)
    if not _CASE_ID.fullmatch(case):
        raise InvalidInput(
            f"case id {case[:60]!r} must be 1 to 40 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
            field="case_id",
        )
    return case


def choice(value: str, field: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else :class:`UnknownChoice` listing them."""
    if value not in choices:
        raise UnknownChoice(field, value, choices)
    return value


def event_data(
    data: Mapping[str, Any] | None, note: str | None, settings: Limits
) -> dict[str, Any]:
    """The event's data as JSON-safe values within the size limits; ``note`` goes in it."""
    if data is not None and not isinstance(data, Mapping):
        raise InvalidInput(
            f"data must be a map of names to values, not {type(data).__name__}", field="data"
        )
    result = dict(data or {})
    for key in result:
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput(
                f"data key {key!r} must be a name: a letter or underscore, then letters, "
                "digits or underscores (64 at most)",
                field="data",
            )
    if note is not None:
        result["note"] = note
    if "note" in result:
        result["note"] = text(
            result["note"], "note", max_chars=settings.max_note_chars, multiline=True
        )
    _check_json_value(result, "data", 0)
    size = len(_SIZED(result).encode())
    if size > settings.max_data_bytes:
        raise InvalidInput(
            f"data is {size} bytes as JSON; the limit is {settings.max_data_bytes}", field="data"
        )
    return result


def _check_json_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_NESTING:
        raise InvalidInput(f"{where} is nested more than {MAX_NESTING} levels", field="data")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InvalidInput(f"{where} is a whole number beyond 64 bits", field="data")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where} must be a finite number", field="data")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{where} contains a NUL character", field="data")
        if _SURROGATE.search(value):
            raise InvalidInput(f"{where} is not valid UTF-8 text", field="data")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{where} has a non-text key {key!r}", field="data")
            _check_json_value(item, f"{where}.{key}", depth + 1)
        return
    raise InvalidInput(
        f"{where} holds a {type(value).__name__}; use text, numbers, true/false, lists or maps",
        field="data",
    )


def attributes(
    values: Mapping[str, Any] | None, specs: Mapping[str, AttributeSpec], machine: str
) -> dict[str, Any]:
    """Validate case attributes against the machine's declared ones."""
    given = dict(values or {})
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise InvalidInput(
            f"unknown attribute {unknown[0]!r} for machine {machine}; "
            f"declared: {', '.join(specs) or 'none'}",
            field="attributes",
        )
    result: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in given:
            if spec.required:
                raise InvalidInput(f"attribute {name!r} is required", field=name)
            continue
        result[name] = _attribute(given[name], name, spec)
    return result


def _attribute(value: Any, name: str, spec: AttributeSpec) -> Any:
    if spec.kind == "integer":
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InvalidInput(f"attribute {name!r} must be a whole number", field=name)
    if spec.kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise InvalidInput(
                f"attribute {name!r} must be a date like 2026-11-23", field=name
            ) from None
    return text(value, f"attribute {name}", max_chars=spec.max_length)
