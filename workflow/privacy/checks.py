"""Verifying personal data beside the history: each kept value matches the commitment
its case's opening event holds, under the customer's secret, and the case row shows
it; an erased case keeps none and shows ``[erased]``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from casework.machines.definition import ERASED_FACT
from casework.storage.personal_sql import ERASED_TEXT
from casework.workflow.privacy.commitments import commit, commitments, field_of
from casework.workflow.results import Problem


def personal_problems(
    cases: list[tuple[Any, ...]], kept: Mapping[str, Mapping[str, tuple[str, str]]]
) -> Iterator[Problem]:
    """Each format-2 case (id, customer, contact, attributes, facts, opening data)
    whose personal values do not hold, given the values ``kept`` (case -> field ->
    (value, secret))."""
    for case in cases:
        case_id, facts, opening = case[0], case[4] or {}, case[5] or {}
        row = {"customer": case[1], "contact": case[2], "attributes": case[3]}
        values = kept.get(case_id, {})
        if facts.get(ERASED_FACT):
            if values:
                yield Problem(
                    case_id, None, f"erased, yet personal values are kept: {', '.join(values)}"
                )
            for name in commitments(opening):
                if field_of(row, name) not in (ERASED_TEXT, None):
                    yield Problem(case_id, None, f"erased, yet the case row shows its {name}")
            continue
        for name, commitment in commitments(opening).items():
            if name not in values:
                yield Problem(case_id, 1, f"the personal value {name} is gone, and no erased "
                              "event says so: it was deleted behind the engine's back")  # fmt: skip
                continue
            value, secret = values[name]
            if not secret or commit(secret, case_id, name, value) != commitment:
                yield Problem(case_id, 1, f"the kept {name} does not match the commitment of "
                              "the opening event: the value or its secret was altered")  # fmt: skip
            elif field_of(row, name) != value:
                yield Problem(case_id, None, "case row differs from its kept personal value: "
                              f"{name} is {field_of(row, name)!r}")  # fmt: skip
