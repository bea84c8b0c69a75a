"""How partners are rated each quarter (seed 003): 100 points less a deduction per fault,
a fine per fault, and the band the points fall in. A pure, versioned value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deduction:
    """What one fault costs a partner: points off its quarter, and a fine in yuan (or a
    multiple of the basic repair fee)."""

    points: int
    fine_yuan: int = 0
    fee_multiple: int = 0

    def fine(self, basic_repair_fee: int) -> int:
        """The fine of one occurrence, in yuan."""
        return self.fine_yuan + self.fee_multiple * basic_repair_fee


@dataclass(frozen=True)
class PartnerRules:
    """The rating rules of one version."""

    version: int
    deductions: Mapping[str, Deduction]
    bands: tuple[tuple[int, str], ...]
    """(lowest points, band), highest first."""
    basic_repair_fee: int = 100
    start: int = 100
    extra: Mapping[str, str] = field(default_factory=dict)

    def band(self, points: int) -> str:
        """The band ``points`` fall in."""
        return next(name for lowest, name in self.bands if points >= lowest)


PARTNER_RULES_V1 = PartnerRules(
    version=1,
    deductions={
        "missed_appointment": Deduction(points=2, fine_yuan=300),
        "repeat_repair": Deduction(points=2, fee_multiple=2),
        "return_forced_by_installation": Deduction(points=2, fine_yuan=600),
        "not_cleaned_up": Deduction(points=1, fine_yuan=100),
        "damaged_property": Deduction(points=1, fine_yuan=100),
        "unreasonable_charge": Deduction(points=3, fine_yuan=500),
        "no_feedback": Deduction(points=1, fine_yuan=100),
        "major_complaint": Deduction(points=2, fine_yuan=300),
    },
    bands=(
        (96, "★★★★★"),
        (90, "★★★★"),
        (85, "★★★"),
        (80, "★★"),
        (70, "★"),
        (60, "qualified"),
        (-(10**9), "not qualified"),
    ),
)
"""Seed 003's rating: a missed booked time, a repeat repair (twice the basic repair
fee), a return or exchange forced by poor installation, not cleaning up, damaged
property, an unreasonable charge, missing feedback, a major complaint; five stars
96-100 down to not qualified under 60."""
