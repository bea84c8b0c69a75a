"""Verification: every hash chain, every case row against its replay, the attached
files against their digests and the personal values against their commitments."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from casework.storage.chain import parse_json
from casework.storage.errors import MalformedRow
from casework.workflow.cases.reading import get
from casework.workflow.privacy.checks import personal_problems
from casework.workflow.results import POLICIES, Problem, VerifyReport

if TYPE_CHECKING:
    from casework.workflow.context import Context

Progress = Callable[[int, int], None]
"""Called with (cases, events) every 1,000 cases of a long run."""
SecondHalf = Callable[[str], VerifyReport]
"""Verifies the cases with ids from the one given on, in a second process."""


def verify(
    context: Context,
    case_id: str | None = None,
    progress: Progress | None = None,
    second: SecondHalf | None = None,
    min_events: int = 0,
) -> VerifyReport:
    """Check one case or all (the upper half in ``second``, if given and the history
    holds at least ``min_events`` events), then the files attached and the personal
    values."""
    report = _chains(context, case_id, progress, second, min_events)
    problems: list[Problem] = []
    from casework.workflow.cases.history import MALFORMED, malformed

    cases, kept = context.store.personal.rows(case_id)
    for case in cases:  # one case at a time: a malformed row is named, the rest checked
        try:
            problems += personal_problems([case], kept)
        except MALFORMED as err:
            problems.append(Problem(case[0], None, f"a row is malformed: {malformed(err)}"))
    return replace(report, problems=(*report.problems, *problems)) if problems else report


def _chains(
    context: Context,
    case_id: str | None,
    progress: Progress | None,
    second: SecondHalf | None,
    min_events: int,
) -> VerifyReport:
    if case_id is not None:
        get(context, case_id)
        return verify_part(context, [case_id], (None, None), progress)
    pivot = None if second is None else context.store.audit.middle_case_id(min_events)
    if second is not None and pivot is not None:
        from casework.workflow.audit.parallel_verify import verify_halves

        return verify_halves(
            pivot, lambda high: verify_part(context, None, (None, high), progress), second
        )
    return verify_part(context, None, (None, None), progress)


def verify_part(
    context: Context,
    ids: list[str] | None,
    id_range: tuple[str | None, str | None],
    progress: Progress | None = None,
) -> VerifyReport:
    """Check the chains and rows of the cases ``ids`` (all if ``None``) with ids in
    ``id_range``, from one snapshot, and the files their events attached."""
    problems: list[Problem] = []
    attached: list[tuple[Any, ...]] = []
    cases = events = 0
    policies = context.policies
    policies.refresh()
    if ids is None and id_range[0] is None:  # the whole database, or its first half
        problems += [Problem(POLICIES, None, reason) for reason in policies.damaged.values()]
    with context.store.audit.snapshot(ids, id_range) as streams:
        from casework.workflow.cases.history import check_streams

        results = check_streams(
            streams.cases,
            streams.events,
            streams.deadlines,
            context.definition_or_none,
            policies.known(),
            attached,
        )
        for checked, problem in results:
            cases += 1
            events += checked
            if problem is not None:
                problems.append(problem)
            if progress is not None and cases % 1000 == 0:
                progress(cases, events)
    problems += attachment_problems(context, attached)
    return VerifyReport(cases, events, tuple(problems))


def attachment_problems(context: Context, attached: list[tuple[Any, ...]]) -> list[Problem]:
    """Each file the ``attached`` event rows (as the history's snapshot streams them)
    name that is missing, or whose content no longer has the digest its event recorded."""
    store = context.store
    problems = []
    for row in attached:
        case_id, seq, stored = row[0], row[1], row[8]
        try:
            data = parse_json(stored) if isinstance(stored, str) else stored
            digest = str(data.get("digest"))
        except (ValueError, AttributeError):  # the chain check names the event's data
            problems.append(Problem(case_id, seq, "an attach event's data is not an object"))
            continue
        what = f"attachment {digest[:16]} ({data.get('kind')}, {data.get('name')})"
        try:
            content = store.attachments.get(digest)
        except MalformedRow as err:  # a malformed row: named, and the check goes on
            problems.append(Problem(case_id, seq, f"{what}: {err}"))
            continue
        if content is None:
            problems.append(Problem(case_id, seq, f"{what} is missing"))
        elif hashlib.sha256(content).hexdigest() != digest:
            problems.append(
                Problem(case_id, seq, f"{what} was altered: its content "
                        "no longer has the digest recorded")
            )  # fmt: skip
    return problems
