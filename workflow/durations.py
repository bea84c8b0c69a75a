"""Durations as people read them, in one place: every command, page and mail uses these.

``26h05m`` (:func:`hours_minutes`) where a column of figures is compared at a glance;
``1d 2h 05m`` or ``1天2小时05分钟`` (:func:`spoken`) in the sentences of a mail.
Both round down to the minute and drop the sign (the words around them say "late",
"left" or "overdue by").
"""

from __future__ import annotations

from datetime import timedelta


def _minutes(seconds: float) -> int:
    return int(abs(seconds) // 60)


def hours_minutes(seconds: float) -> str:
    """A duration as ``<hours>h<minutes>m`` (``26h05m``)."""
    minutes = _minutes(seconds)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def spoken(delta: timedelta, language: str) -> str:
    """A duration in days, hours and minutes, in ``language`` (``en`` or ``zh``)."""
    days, minutes = divmod(_minutes(delta.total_seconds()), 1440)
    hours, minutes = divmod(minutes, 60)
    if language == "zh":
        text = f"{hours}小时{minutes:02d}分钟"
        return f"{days}天{text}" if days else text
    text = f"{hours}h {minutes:02d}m"
    return f"{days}d {text}" if days else text
