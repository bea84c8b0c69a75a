"""``[warranty]`` settings: the three guarantees' windows, zone and brand classes.

    [warranty]
    timezone = "Asia/Shanghai"
    return_days = 7
    exchange_days = 15
    repair_months = { phone = 12, battery = 6, earphones = 3, charger = 12 }
    brands = { apple = "strict", motorola = "special" }   # added to the defaults
    repeat_escalates = true     # a repeat not-fixed complaint goes up a level at once

A changed table is a new version of the rules; every decision names the version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.machines.warranty import BRAND_CLASSES, WARRANTY_RULES_V1, WarrantyRules
from casework.workflow.errors import ConfigError

_KEYS = ("timezone", "return_days", "exchange_days", "repair_months", "brands")


def _days(value: Any, where: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
        raise ConfigError(f"{where} must be a whole number from 1 to {most}")
    return value


def warranty_rules(body: Any, source: str) -> tuple[WarrantyRules, bool | None]:
    """The rules ``[warranty]`` gives (seed 000's for what it leaves out), and its
    ``repeat_escalates`` (``None`` when not given)."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [warranty] must be a table")
    rules = WARRANTY_RULES_V1
    changes: dict[str, Any] = {}
    escalates = None
    for key, value in body.items():
        where = f"{source}: warranty.{key}"
        if key == "repeat_escalates":
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false")
            escalates = value
        elif key == "timezone":
            try:
                ZoneInfo(str(value))
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}: unknown time zone {value!r}") from None
            changes["zone"] = str(value)
        elif key in ("return_days", "exchange_days"):
            changes[key] = _days(value, where, 365)
        elif key == "repair_months":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be a table of product class = months")
            months = {str(k): _days(v, f"{where}.{k}", 120) for k, v in value.items()}
            changes[key] = {**rules.repair_months, **months}
        elif key == "brands":
            if not isinstance(value, Mapping) or any(
                v not in BRAND_CLASSES for v in value.values()
            ):
                raise ConfigError(f"{where} must map brands to {', '.join(BRAND_CLASSES)}")
            changes[key] = {**rules.brands, **{str(k).lower(): str(v) for k, v in value.items()}}
        else:
            raise ConfigError(f"{where}: unknown key; known: {', '.join(_KEYS)}, repeat_escalates")
    if changes:
        rules = replace(rules, version=rules.version * 1000 + 1, **changes)
    return rules, escalates
