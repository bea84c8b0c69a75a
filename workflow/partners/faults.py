"""Recording a partner's violation (``partner_fault``): the fault checked against the
partner rules in force (seed 003's table and what ``[partners]`` adds), and the sums its
fine is computed from checked as money."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casework.machines.partner_rules import (
    CHARGE_FIELD,
    COMPENSATION_FIELD,
    FEE_FIELD,
    PartnerRules,
    yuan,
)
from casework.workflow.errors import InvalidInput


def fault_data(rules: PartnerRules, data: Mapping[str, Any]) -> dict[str, Any]:
    """The event data of a ``partner_fault`` the rules know, its sums as money;
    :class:`InvalidInput` naming the violations or the missing sum otherwise."""
    fault = str(data.get("fault", ""))
    rule = rules.deductions.get(fault)
    if rule is None:
        raise InvalidInput(
            f"fault {fault!r} is no violation of the partner rules (v{rules.version}); "
            f"known: {', '.join(sorted(rules.deductions))}",
            field="fault",
        )
    for name in (CHARGE_FIELD, FEE_FIELD, COMPENSATION_FIELD):
        if data.get(name) is not None and yuan(data[name]) is None:
            raise InvalidInput(f"{name} must be a sum in yuan, e.g. 150 or 99.50", field=name)
    for name in rule.needs():
        if not yuan(data.get(name)):
            raise InvalidInput(
                f"fault {fault} needs the {name} in yuan: its fine is "
                f"{rule.charge_multiple} times that sum",
                field=name,
            )
    return dict(data)
