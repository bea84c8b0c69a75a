"""Percentiles for the benchmarks' figures, one way everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest sample with at least ``share`` of all
    samples at or below it. Always one of the samples, so never above the maximum (as
    ``statistics.quantiles``' default exclusive method can be on few samples)."""
    if not values:
        raise ValueError("a percentile of no samples")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], not {share}")
    ordered = sorted(values)
    rank = math.ceil(round(share * len(ordered), 9))  # 0.99 * 100 is 99.00000000000001
    return ordered[rank - 1]
