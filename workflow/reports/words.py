"""The words of the report pages in the viewer's language.

Each page is rendered with ``_`` (an interface sentence of the label catalogue: its
English text is its message id, ``{name}`` fields filled from keywords), ``label``
(an identifier's label), ``period`` (a period as the reports describe it) and
``duration`` (seconds as days, hours and minutes), bound to the page's language, and
``lang`` for the page's ``lang`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from casework.workflow.durations import spoken
from casework.workflow.labels import label, language, text

HTML_LANG = {"zh": "zh-CN", "en": "en"}
"""The ``lang`` attribute of a page in each language."""


def page_words(lang: str | None) -> dict[str, Any]:
    """``_``, ``label`` and ``lang`` of a page read in ``lang`` (English by default)."""
    code = language(lang)

    def say(msgid: str, **values: Any) -> str:
        return text(code, msgid, **values)

    def named(kind: str, ident: object) -> str:
        return label(code, kind, ident)

    def period(described: str) -> str:
        """A period as ``described`` writes it (``2026-11-01 to 2026-11-30 (Asia/Shanghai)``)
        in the page's language."""
        return described.replace(" to ", f" {say('to')} ", 1)

    def duration(seconds: float) -> str:
        """A number of seconds as ``2d 3h`` (``2天3小时`` in Chinese)."""
        return spoken(timedelta(seconds=seconds), code)

    return {
        "_": say,
        "label": named,
        "lang": HTML_LANG.get(code, code),
        "period": period,
        "duration": duration,
    }


def sayer(lang: str | None) -> Callable[..., str]:
    """The ``_`` of :func:`page_words`, for chart titles and units."""
    said: Callable[..., str] = page_words(lang)["_"]
    return said
