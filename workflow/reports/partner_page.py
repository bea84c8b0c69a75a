"""The partner report as a self-contained HTML page: the ranking, each partner's
deductions with the case, event and hash that show them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow.reports.case_page import PAGES


def partners_page(report: Mapping[str, Any]) -> str:
    """The page of :func:`workflow.partners.ratings.partner_report`'s report."""
    from workflow.reports import charts  # matplotlib: the JSON report does without it

    ranking = [(r["partner"] if not r["name"] else f"{r['name']} ({r['partner']})",
                float(r["points"])) for r in report["partners"]]  # fmt: skip
    figure = (
        charts.bar_chart(ranking, title="Points this quarter (best first)", unit="points")
        if ranking
        else ""
    )
    return PAGES.get_template("partners.html").render(
        report=report, chart=figure, font_note=charts.missing_font_note()
    )
