"""Durations as people read them, in one place: every command, page and mail uses these.

``2d 3h 10m``, ``35m``, ``1d`` or ``2天3小时10分钟`` (:func:`spoken`,
:func:`hours_minutes` for English from seconds). Both round down to the minute, leave
out units that are zero and drop the sign (the words around them say "late", "left" or
"overdue by").
"""

from __future__ import annotations

from datetime import timedelta


def _minutes(seconds: float) -> int:
    return int(abs(seconds) // 60)


def hours_minutes(seconds: float) -> str:
    """A number of seconds as ``2d 3h 10m`` (English)."""
    return spoken(timedelta(seconds=seconds), "en")


_UNITS = {"en": ("d ", "h ", "m"), "zh": ("天", "小时", "分钟")}


def spoken(delta: timedelta, language: str) -> str:
    """A duration in days, hours and minutes, in ``language`` (``en`` or ``zh``):
    ``2d 3h 10m``, ``3h``, ``35m``, ``0m``."""
    days, minutes = divmod(_minutes(delta.total_seconds()), 1440)
    hours, minutes = divmod(minutes, 60)
    units = _UNITS["zh" if language == "zh" else "en"]
    parts = [(n, unit) for n, unit in zip((days, hours, minutes), units, strict=True) if n]
    return "".join(f"{n}{unit}" for n, unit in parts or [(0, units[2])]).strip()
