"""``[warranty]`` settings: the three guarantees' windows, zone and brand classes.

    [warranty]
    timezone = "Asia/Shanghai"
    return_days = 7
    exchange_days = 15
    repair_days = 15            # a warranty repair's promised days (repair_overdue after)
    manufacturer_decides = ["apple", "苹果"]   # returns and exchanges the maker decides
    repair_months = { phone = 12, battery = 6, earphones = 3, charger = 12 }
    brands = { apple = "strict", motorola = "special" }   # added to the defaults
    repeat_escalates = true     # a repeat not-fixed complaint goes up a level at once
    [warranty.product_classes.tablet]   # a term added to (or replacing one of) the list
    zh = "平板"
    en = "tablet"
    aliases = ["pad"]

A changed table is a new version of the rules; every decision names the version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.machines.warranty import (
    BRAND_CLASSES,
    WARRANTY_RULES,
    Term,
    Vocabulary,
    WarrantyRules,
)
from casework.workflow.errors import ConfigError

_KEYS = (
    "timezone", "return_days", "exchange_days", "repair_days", "repair_months", "brands",
    "manufacturer_decides", "product_classes", "fault_classes",
)  # fmt: skip
_TERM_KEYS = ("zh", "en", "aliases")


def _terms(value: Any, where: str, vocabulary: Vocabulary) -> Vocabulary:
    """``vocabulary`` with the terms of a ``[warranty.<name>]`` table added."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table of id = {{ zh, en, aliases }}")
    terms = []
    for term_id, spec in value.items():
        at = f"{where}.{term_id}"
        if not isinstance(spec, Mapping) or set(spec) - set(_TERM_KEYS):
            raise ConfigError(f"{at} must be a table of {', '.join(_TERM_KEYS)}")
        names = [spec.get("zh", term_id), spec.get("en", term_id)]
        aliases = spec.get("aliases", [])
        if not all(isinstance(n, str) and n.strip() for n in names) or not (
            isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)
        ):
            raise ConfigError(f"{at}: zh and en must be text, aliases a list of text")
        terms.append(Term(str(term_id), names[0], names[1], tuple(aliases)))
    return vocabulary.with_terms(tuple(terms))


def _days(value: Any, where: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
        raise ConfigError(f"{where} must be a whole number from 1 to {most}")
    return value


def warranty_rules(body: Any, source: str) -> tuple[WarrantyRules, bool | None]:
    """The rules ``[warranty]`` gives (seed 000's for what it leaves out), and its
    ``repeat_escalates`` (``None`` when not given)."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [warranty] must be a table")
    rules = WARRANTY_RULES
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
        elif key in ("return_days", "exchange_days", "repair_days"):
            changes[key] = _days(value, where, 365)
        elif key == "manufacturer_decides":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where} must be a list of brands")
            changes[key] = frozenset(v.strip().lower() for v in value)
        elif key == "repair_months":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be a table of product class = months")
            months = {str(k): _days(v, f"{where}.{k}", 120) for k, v in value.items()}
            changes[key] = {**rules.repair_months, **months}
        elif key in ("product_classes", "fault_classes"):
            changes[key] = _terms(value, where, getattr(rules, key))
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
    known = (*rules.product_classes.ids(), "*")
    unknown = sorted(set(rules.repair_months) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: warranty.repair_months.{unknown[0]} is no product class; "
            f"known: {rules.product_classes.choices()} (add it under [warranty.product_classes])"
        )
    return rules, escalates
