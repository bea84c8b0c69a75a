"""Checking what callers hand in before anything is written."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from machines import AttributeSpec
from workflow.config import Settings
from workflow.errors import InvalidInput, UnknownChoice

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n]")
MAX_NESTING = 8


def text(value: object, field: str, *, max_chars: int, multiline: bool = False) -> str:
    """A non-empty text without control characters (line breaks only if ``multiline``)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty text", field=field)
    if len(value) > max_chars:
        raise InvalidInput(
            f"{field} is {len(value)} characters long; the limit is {max_chars}", field=field
        )
    if _CONTROL.search(value) or (not multiline and _LINE_BREAK.search(value)):
        raise InvalidInput(f"{field} contains control characters", field=field)
    return value


def choice(value: str, field: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else :class:`UnknownChoice` listing them."""
    if value not in choices:
        raise UnknownChoice(field, value, choices)
    return value


def event_data(
    data: Mapping[str, Any] | None, note: str | None, settings: Settings
) -> dict[str, Any]:
    """The event's data as JSON-safe values within the size limits; ``note`` goes in it."""
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
    size = len(json.dumps(result, ensure_ascii=False).encode())
    if size > settings.max_data_bytes:
        raise InvalidInput(
            f"data is {size} bytes as JSON; the limit is {settings.max_data_bytes}", field="data"
        )
    return result


def _check_json_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_NESTING:
        raise InvalidInput(f"{where} is nested more than {MAX_NESTING} levels", field="data")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where} must be a finite number", field="data")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{where} contains a NUL character", field="data")
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
