"""What the customer's page shows and records: the case's status in plain words, and
once it is resolved the survey, whose answer lands in the history as the customer's.

The page shows the case number, the status and what the customer was told (a visit's
window, a part's expected date), never a name, a contact, the summary or who works on
the case. The first answer records ``follow_up`` (actor ``customer``) on a resolved
case, or ``survey_answered`` after an agent recorded the follow-up; a score of
:data:`~casework.machines.complaint.LOW_SATISFACTION` or less reopens the case as an
agent's reopen would. A case takes one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from casework.machines.complaint import LOW_SATISFACTION
from casework.machines.definition import ERASED_FACT
from casework.storage.records import EventRecord
from casework.workflow.cases.firing import fire
from casework.workflow.cases.reading import get
from casework.workflow.errors import ConcurrentUpdate, InvalidInput
from casework.workflow.labels import text
from casework.workflow.notify.messages import date_text, window_text
from casework.workflow.storage_boundary import at_storage_boundary
from casework.workflow.survey import token as tokens

if TYPE_CHECKING:
    from casework.workflow.context import Context

CUSTOMER = "customer"
"""The actor of what the customer records through their link."""
ANSWERS = ("follow_up", "survey_answered")
SURVEY_STATES = ("resolved", "followed_up")
"""States in which the page asks for the survey."""
MAX_COMMENT_CHARS = 1000
LANGUAGES = ("zh", "en")


@at_storage_boundary
def link(context: Context, case_id: str) -> str:
    """The customer's link to case ``case_id``: ``<[console] base_url>/s/<token>``."""
    base = context.settings.console_base_url
    if base is None:
        raise InvalidInput(
            "no [console] base_url is configured: a link needs the address the page is served at",
            field="base_url",
        )
    notify = context.settings.notify
    case = get(context, case_id)
    signed = tokens.sign(case.id, notify.survey_secrets, context.clock.now(), notify.survey_days)
    return f"{base}/s/{quote(signed, safe='.-_')}"


def language(case_lang: Any, accept: str | None, default: str) -> str:
    """The page's language: the case's ``language`` attribute, else the browser's first
    of zh and en (``Accept-Language``), else ``default``."""
    if case_lang in LANGUAGES:
        return str(case_lang)
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        for lang in LANGUAGES:
            if tag == lang or tag.startswith(f"{lang}-"):
                return lang
    return default


def answered(events: Sequence[EventRecord]) -> bool:
    """Whether the customer answered the survey already."""
    return any(e.actor == CUSTOMER and e.event in ANSWERS for e in events)


@dataclass(frozen=True)
class Status:
    """The page of one case: its number, status lines and whether it asks the survey."""

    case_id: str
    lang: str
    lines: tuple[str, ...]
    survey_open: bool
    answered: bool


def _latest(events: Sequence[EventRecord], name: str) -> EventRecord | None:
    return next((e for e in reversed(events) if e.event == name), None)


def _after(events: Sequence[EventRecord], first: EventRecord, names: tuple[str, ...]) -> bool:
    return any(e.seq > first.seq and e.event in names for e in events)


@at_storage_boundary
def status(context: Context, case_id: str, accept: str | None = None) -> Status:
    """The status page of case ``case_id`` in the customer's language."""
    case, events = context.store.cases.with_events(case_id)
    if case is None or case.facts.get(ERASED_FACT):
        raise tokens.LinkInvalid()
    settings = context.settings.notify
    lang = language(case.attributes.get("language"), accept, settings.language)
    zone = settings.zone(case.branch)
    definition = context.registry.get(case.machine, case.machine_version)
    final = definition.final_states
    lines: list[str] = []
    if case.state in SURVEY_STATES:
        lines.append(text(lang, "survey.status.resolved"))
    elif case.state in final:
        lines.append(text(lang, "survey.status.closed"))
    else:
        lines.append(text(lang, "survey.status.received"))
        booked = _latest(events, "book_visit")
        if booked is not None and not _after(events, booked, ("arrive", "appointment_missed")):
            window = window_text(booked.data.get("from"), booked.data.get("to"), zone, lang)
            if window is not None:
                lines.append(text(lang, "survey.status.visit_booked", window=window))
        lines += _part(events, zone, lang)
    done = answered(events)
    asks = case.state in SURVEY_STATES and _answer_event(case.state) in definition.events
    return Status(case.id, lang, tuple(lines), asks and not done, done)


def _answer_event(state: str) -> str:
    """What the customer's answer records in ``state``: the follow-up itself, or after
    an agent's follow-up the survey answer (a machine without it asks no survey then)."""
    return "follow_up" if state == "resolved" else "survey_answered"


def _part(events: Sequence[EventRecord], zone: Any, lang: str) -> list[str]:
    """The line of a part waited for, if one is."""
    routed = next(
        (
            e
            for e in reversed(events)
            if (e.event == "route" and e.data.get("to") == "procurement")
            or (e.event == "wait" and e.data.get("reason") == "part")
        ),
        None,
    )
    if routed is None or _after(events, routed, ("part_arrived", "resume", "resolve")):
        return []
    expected = date_text(routed.data.get("promised") or routed.data.get("expected"), zone, lang)
    if expected is None:
        return [text(lang, "survey.status.part_wait_no_date")]
    return [text(lang, "survey.status.part_wait", expected=expected)]


@at_storage_boundary
def answer(context: Context, case_id: str, score: int, fixed: bool, comment: str | None) -> str:
    """Record the customer's answer once: ``recorded``, ``reopened`` (a low score
    opened the case again) or ``already`` (an answer was recorded before)."""
    if not 1 <= score <= 5:
        raise InvalidInput("the score is a whole number from 1 to 5", field="score")
    data: dict[str, Any] = {"satisfaction": score, "fixed": fixed, "via": "survey"}
    if comment and comment.strip():
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidInput(f"at most {MAX_COMMENT_CHARS} characters", field="comment")
        data["comment"] = comment.strip()
    for _ in range(3):  # another writer may move the case on between our read and write
        case, events = context.store.cases.with_events(case_id)
        if case is None or case.facts.get(ERASED_FACT):
            raise tokens.LinkInvalid()
        if answered(events):
            return "already"
        if case.state not in SURVEY_STATES:
            raise InvalidInput("this case does not ask for an answer now", field="state")
        event = _answer_event(case.state)
        try:
            after = fire(
                context, case.id, event, actor=CUSTOMER, data=data, expected_version=case.version
            )
        except ConcurrentUpdate:
            continue
        if score > LOW_SATISFACTION:
            return "recorded"
        try:
            fire(context, case.id, "reopen", actor=CUSTOMER, expected_version=after.version)
        except ConcurrentUpdate:  # an agent acted at once: theirs is the next step
            return "recorded"
        return "reopened"
    raise ConcurrentUpdate(case_id, 0, None)


def now_valid(context: Context, token: str) -> str:
    """The case id a token opens now (:class:`~.token.LinkInvalid` if none)."""
    notify = context.settings.notify
    return tokens.verify(token, notify.survey_secrets, context.clock.now())
