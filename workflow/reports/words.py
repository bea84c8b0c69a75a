"""The words of the report pages in the viewer's language.

Each page is rendered with ``_`` (an interface sentence of the label catalogue: its
English text is its message id, ``{name}`` fields filled from keywords) and ``label``
(an identifier's label), both bound to the page's language, and ``lang`` for the
page's ``lang`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

    return {"_": say, "label": named, "lang": HTML_LANG.get(code, code)}


def sayer(lang: str | None) -> Callable[..., str]:
    """The ``_`` of :func:`page_words`, for chart titles and units."""
    said: Callable[..., str] = page_words(lang)["_"]
    return said
