"""The partner report as a self-contained HTML page: the ranking, each partner's
deductions with the case, event and hash that show them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from casework.workflow.display.times import local_text, stamped
from casework.workflow.display.zones import zone_named
from casework.workflow.reports.case_page import PAGES
from casework.workflow.reports.words import page_words


def partners_page(report: Mapping[str, Any], lang: str | None = None) -> str:
    """The page of :func:`casework.workflow.partners.ratings.partner_report`'s report, in ``lang``
    (``zh`` or ``en``, the default)."""
    from casework.workflow.reports import charts  # matplotlib: the JSON report does without it

    words = page_words(lang)
    _ = words["_"]

    ranking = [(r["partner"] if not r["name"] else f"{r['name']} ({r['partner']})",
                float(r["points"])) for r in report["partners"]]  # fmt: skip
    figure = (
        charts.bar_chart(
            ranking, title=_("Points this quarter (best first)"), unit=_("points"), scale=100
        )
        if ranking
        else ""
    )
    zone = zone_named(report["zone"], "zone") if "/" in report["zone"] else UTC

    def when(text: str) -> str:
        return local_text(text, zone)

    return PAGES.get_template("partners.html").render(
        report=report, chart=figure, font_note=charts.missing_font_note(), when=when,
        generated=stamped(report["generated_at"], zone), **words,
    )  # fmt: skip
