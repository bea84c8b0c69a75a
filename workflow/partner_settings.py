"""``[partners]`` settings: the rating rules' deductions, fines and basic repair fee.

    [partners]
    basic_repair_fee = 120                  # yuan; a repeat repair costs twice this
    [partners.deductions.missed_appointment]
    points = 3
    fine_yuan = 300
    [partners.deductions.no_safety_helmet]  # a violation of the house's own, recordable
    points = 1
    fine_yuan = 200
    zh = "高空作业未戴安全帽"

A changed table is a new version of the rules; each report names the version it used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from casework.machines.partner_rules import PARTNER_RULES, Deduction, PartnerRules
from casework.workflow.errors import ConfigError

_DEDUCTION_KEYS = (
    "points", "fine_yuan", "fee_multiple", "charge_multiple", "compensated", "zh", "en",
)  # fmt: skip
_FAULT_ID = re.compile(r"[a-z][a-z0-9_]{0,59}")


def _whole(value: Any, where: str, *, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise ConfigError(f"{where} must be a whole number from 0 to {most}")
    return value


def partner_rules(body: Any, source: str) -> PartnerRules:
    """The rules ``[partners]`` gives (the defaults of seed 003 for what it leaves out)."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [partners] must be a table")
    rules = PARTNER_RULES
    changed = False
    for key, value in body.items():
        where = f"{source}: partners.{key}"
        if key == "basic_repair_fee":
            rules = replace(rules, basic_repair_fee=_whole(value, where, most=100_000))
            changed = True
        elif key == "deductions":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be a table of faults")
            deductions = dict(rules.deductions)
            for fault, spec in value.items():
                if not isinstance(spec, Mapping) or set(spec) - set(_DEDUCTION_KEYS):
                    raise ConfigError(
                        f"{where}.{fault} must be a table of {', '.join(_DEDUCTION_KEYS)}"
                    )
                if not _FAULT_ID.fullmatch(str(fault)):
                    raise ConfigError(
                        f"{where}.{fault}: a violation's id is lower-case letters, digits and _"
                    )
                base = deductions.get(fault, Deduction(points=0, item="configured"))
                texts = {k: spec.get(k, getattr(base, k)) for k in ("zh", "en")}
                if not all(isinstance(t, str) for t in texts.values()) or not isinstance(
                    spec.get("compensated", base.compensated), bool
                ):
                    raise ConfigError(
                        f"{where}.{fault}: zh and en are text, compensated true/false"
                    )
                deductions[str(fault)] = replace(
                    base,
                    zh=str(texts["zh"]) or str(fault),
                    en=str(texts["en"]) or str(fault).replace("_", " "),
                    compensated=bool(spec.get("compensated", base.compensated)),
                    charge_multiple=_whole(spec.get("charge_multiple", base.charge_multiple),
                                           f"{where}.{fault}.charge_multiple", most=100),
                    points=_whole(spec.get("points", base.points), f"{where}.{fault}.points",
                                  most=100),
                    fine_yuan=_whole(spec.get("fine_yuan", base.fine_yuan),
                                     f"{where}.{fault}.fine_yuan", most=1_000_000),
                    fee_multiple=_whole(spec.get("fee_multiple", base.fee_multiple),
                                        f"{where}.{fault}.fee_multiple", most=100),
                )  # fmt: skip
            rules = replace(rules, deductions=deductions)
            changed = True
        else:
            raise ConfigError(f"{where}: unknown key; known: basic_repair_fee, deductions")
    return replace(rules, version=rules.version * 1000 + 1) if changed else rules
