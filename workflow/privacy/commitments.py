"""Keyed commitments to personal values (HMAC-SHA-256 under a per-customer secret).

A format-2 opening event names each personal value (the customer, the contact, an
attribute its machine declares personal) by ``hmac-sha256:`` and the hex HMAC of
``case id, field, value`` under the customer's secret. Given the value and the secret,
anyone can check the commitment; without the secret the commitment says nothing about
the value, and once both are deleted nothing in the history does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from casework.machines import MachineDefinition

PREFIX = "hmac-sha256:"
PERSONAL_COLUMNS = ("customer", "contact")
"""The case columns that hold personal values."""
ATTRIBUTE = "attributes."
"""How a personal attribute's field is named: ``attributes.address``."""


def new_subject() -> tuple[str, str]:
    """A fresh subject id and its secret (32 random bytes, hex)."""
    return secrets.token_hex(8), secrets.token_hex(32)


def commit(secret: str, case_id: str, field: str, value: str) -> str:
    """The commitment to ``value`` as ``field`` of ``case_id``."""
    message = f"{case_id}\n{field}\n{value}".encode()
    return PREFIX + hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()


def is_commitment(value: Any) -> bool:
    """Whether ``value`` is a commitment rather than a value."""
    return isinstance(value, str) and value.startswith(PREFIX) and len(value) == len(PREFIX) + 64


def field_of(record: Mapping[str, Any], name: str) -> Any:
    """A personal field's value in an opening's data or a case row's columns:
    ``customer`` and ``contact`` at the top, ``attributes.X`` inside ``attributes``."""
    if name.startswith(ATTRIBUTE):
        return (record.get("attributes") or {}).get(name.removeprefix(ATTRIBUTE))
    return record.get(name)


def with_fields(record: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with each personal field of ``values`` put in its place."""
    result = dict(record)
    attributes = dict(result.get("attributes") or {})
    for name, value in values.items():
        if name.startswith(ATTRIBUTE):
            attributes[name.removeprefix(ATTRIBUTE)] = value
        else:
            result[name] = value
    result["attributes"] = attributes
    return result


def commitments(opening: Mapping[str, Any]) -> dict[str, str]:
    """The commitments a format-2 opening's data holds, by field."""
    fields = [*PERSONAL_COLUMNS, *(ATTRIBUTE + n for n in opening.get("attributes") or {})]
    return {name: field_of(opening, name) for name in fields
            if is_commitment(field_of(opening, name))}  # fmt: skip


def personal_values(opening: Mapping[str, Any], definition: MachineDefinition) -> dict[str, str]:
    """The personal values of an opening, by field."""
    fields = [
        *PERSONAL_COLUMNS,
        *(ATTRIBUTE + n for n, spec in definition.attributes.items() if spec.personal),
    ]
    return {name: str(field_of(opening, name)) for name in fields
            if field_of(opening, name) not in (None, "")}  # fmt: skip


def committed(
    opening: Mapping[str, Any], values: Mapping[str, str], subject: str, secret: str,
    case_id: str,
) -> dict[str, Any]:  # fmt: skip
    """The opening event's data: each personal value replaced by its commitment, with
    the format and the subject whose secret keys them."""
    commitments = {name: commit(secret, case_id, name, value) for name, value in values.items()}
    return {**with_fields(opening, commitments), "format": 2, "subject": subject}
