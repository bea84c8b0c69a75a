"""The fold without clocks (checking an export) decides exactly as the fold with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from casework.machines import COMPLAINT_V1, ENGINE_EVENTS, Allowed, Blocked, CaseRules, opened, step
from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document

STANDARD = policy_from_document(DEFAULT_DOCUMENT, COMPLAINT_V1.states)
SHORT = policy_from_document(
    {**DEFAULT_DOCUMENT, "name": "short", "clocks": {"first_response": {
        "runs_in": ["received", "apologised"], "within_s": 3600}}},
    COMPLAINT_V1.states,
)  # fmt: skip
POLICIES = {STANDARD.version: STANDARD, SHORT.version: SHORT}
PROFILE = {"priority": "normal", "category": "quality", "channel": "phone", "branch": "Guangzhou"}
DATA: list[dict[str, Any]] = [
    {},
    {"solution": "fix"},
    {"satisfaction": 1},
    {"satisfaction": 5},
    {"to": "wang.wei"},
    {"reason": "customer"},
    {"reason": "part"},
    {"policy": SHORT.version},
    {"policy": STANDARD.version},
    {"policy": "unknown"},
    {"clock": "first_response", "cycle": 1, "level": 1},
    {"clock": "resolution", "cycle": 1, "level": 2},
]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(COMPLAINT_V1.events + tuple(sorted(ENGINE_EVENTS))),
        st.sampled_from(DATA),
        st.integers(0, 36_000),
    ),
    max_size=30,
)


@settings(max_examples=300)
@given(steps=STEPS, policy=st.sampled_from([STANDARD.version, SHORT.version, None]))
def test_without_clocks_every_decision_and_all_but_the_clocks_are_the_same(
    steps: list[tuple[str, dict[str, Any], int]], policy: str | None
) -> None:
    """An export is checked without folding the clocks: nothing else may differ."""
    with_clocks = CaseRules(COMPLAINT_V1, POLICIES, PROFILE)
    without = CaseRules(COMPLAINT_V1, POLICIES, PROFILE, with_clocks=False)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    full, bare = opened(with_clocks, "li.na", at, policy), opened(without, "li.na", at, policy)
    for event, data, seconds in steps:
        at += timedelta(seconds=seconds)
        decision, full = step(with_clocks, full, event, data, at)
        same_decision, bare = step(without, bare, event, data, at)
        assert same_decision == decision
        assert bare._replace(sla=full.sla) == full
        assert bare.sla.waiting == full.sla.waiting
        assert bare.sla.clocks == ()


def test_a_fired_deadline_without_its_clock_cycle_and_level_is_refused() -> None:
    """Only a history written behind the engine's back holds one: verify names it."""
    rules = CaseRules(COMPLAINT_V1, POLICIES, PROFILE)
    folded = opened(rules, "li.na", datetime(2026, 3, 2, 9, tzinfo=UTC), STANDARD.version)
    at = datetime(2026, 3, 3, 9, tzinfo=UTC)
    for event, data in [
        ("escalate", {}),
        ("escalate", {"clock": "first_response", "cycle": 1, "level": 0}),
        ("escalate", {"clock": "first_response", "cycle": "1", "level": 1}),
        ("sla_warning", {"clock": 7, "cycle": 1}),
    ]:
        decision, after = step(rules, folded, event, data, at)
        assert isinstance(decision, Blocked), (event, data)
        assert decision.condition == "deadline_named"
        assert after is folded
    decision, after = step(rules, folded, "escalate", DATA[10], at)
    assert isinstance(decision, Allowed)
    assert after.escalation_level == 1


@settings(max_examples=50)
@given(
    seconds=st.lists(st.integers(0, 10**8), min_size=1, max_size=5),
    policy=st.sampled_from([STANDARD.version, SHORT.version, None]),
    priority=st.sampled_from(["normal", "urgent"]),
)
def test_one_set_of_rules_opens_each_case_as_its_own_rules_would(
    seconds: list[int], policy: str | None, priority: str
) -> None:
    """Verification shares a case's rules with the cases alike, and the clocks they open
    with are worked out once: each opening still gets the clocks of its own instant."""
    profile = {**PROFILE, "priority": priority}
    shared = CaseRules(COMPLAINT_V1, POLICIES, profile)
    for offset in seconds:
        at = datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(seconds=offset)
        fresh = CaseRules(COMPLAINT_V1, POLICIES, profile)
        assert opened(shared, "li.na", at, policy) == opened(fresh, "li.na", at, policy)
