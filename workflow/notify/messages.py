"""The words of a notification: one template per moment, in Chinese and English.

Every sentence comes from the label catalogue (``notify.<template>.text`` and
``notify.<template>.subject``); times are shown in the customer's zone. A message
names the case number and what the event told, never the customer's name or contact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from casework.workflow.labels import text


@dataclass(frozen=True)
class Message:
    """A notification ready to send: a subject (for mail) and the text."""

    subject: str
    text: str


def _when(value: Any, zone: ZoneInfo, lang: str, *, date_only: bool = False) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    local = moment.astimezone(zone)
    if date_only:
        return local.strftime("%Y年%m月%d日" if lang == "zh" else "%d %b %Y")
    return local.strftime("%Y-%m-%d %H:%M")


def window_text(start: Any, end: Any, zone: ZoneInfo, lang: str) -> str | None:
    """A visit window in ``zone``: ``2026-12-05 14:00-16:00 (Asia/Shanghai)``."""
    first, last = _when(start, zone, lang), _when(end, zone, lang)
    if first is None or last is None:
        return None
    same_day = first[:10] == last[:10]
    return f"{first}-{last[11:] if same_day else last} ({zone.key})"


def date_text(value: Any, zone: ZoneInfo, lang: str) -> str | None:
    """A date in ``zone`` as the customer reads it."""
    return _when(value, zone, lang, date_only=True)


def render(
    template: str,
    lang: str,
    case_id: str,
    values: Mapping[str, Any],
    zone: ZoneInfo,
    link: str | None = None,
) -> Message:
    """The message of ``template`` for case ``case_id`` in ``lang``; ``link`` the survey
    and status page (a resolved case's message invites to it; others may name it)."""
    fields: dict[str, Any] = {"case": case_id}
    msgid = f"notify.{template}.text"
    if template == "opened":
        hours = values.get("hours")
        fields["hours"] = hours
        if not isinstance(hours, int):
            msgid = "notify.opened.text_no_target"
    elif template == "visit_booked":
        fields["window"] = window_text(values.get("from"), values.get("to"), zone, lang) or "-"
    elif template == "part_wait":
        expected = date_text(values.get("expected"), zone, lang)
        fields["expected"] = expected
        if expected is None:
            msgid = "notify.part_wait.text_no_date"
    body = text(lang, msgid, **fields)
    if link is not None:
        key = "notify.survey_link" if template == "resolved" else "notify.status_link"
        body = f"{body} {text(lang, key, link=link)}"
    return Message(subject=text(lang, f"notify.{template}.subject", **fields), text=body)
