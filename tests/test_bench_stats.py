"""The benchmarks' percentiles: nearest rank, always a sample, never above the maximum."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import percentile


def test_nearest_rank_on_a_known_list() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0  # the order given does not matter


def test_eighty_samples_give_a_p99_no_higher_than_the_maximum() -> None:
    """The case the README showed: 80 samples, where the exclusive method extrapolates
    past the largest one."""
    samples = [random.Random(7).uniform(600, 691) for _ in range(79)] + [691.0]
    assert statistics.quantiles(samples, n=100)[98] > max(samples)  # what went wrong
    assert percentile(samples, 0.99) == max(samples)
    assert percentile(samples, 0.5) <= percentile(samples, 0.99) <= max(samples) == 691.0


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=300),
    st.floats(min_value=0.001, max_value=1.0),
)
def test_a_percentile_is_one_of_the_samples_and_covers_its_share(
    values: list[float], share: float
) -> None:
    found = percentile(values, share)
    assert found in values
    assert min(values) <= found <= max(values)
    at_or_below = sum(v <= found for v in values)
    assert at_or_below >= share * len(values) - 1e-9
    assert sum(v < found for v in values) < share * len(values) + 1e-9


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        percentile([1.0, 2.0], share)


def test_no_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)
