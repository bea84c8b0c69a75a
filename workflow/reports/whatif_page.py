"""The what-if report (``casework simulate --html``) as a self-contained HTML page: what
the proposed policy would have caused beside what happened, and where."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from casework.workflow.display.times import local_text, stamped
from casework.workflow.display.zones import zone_named
from casework.workflow.reports.case_page import PAGES
from casework.workflow.reports.words import page_words

CHANGED_SHOWN = 200
"""The cases whose breaches change listed on the page (the JSON has all of them)."""


def whatif_page(report: Mapping[str, Any], lang: str | None = None) -> str:
    """The page of :func:`casework.workflow.sla.whatif.simulate`'s report, in ``lang`` (``zh`` or
    ``en``, the default)."""
    from casework.workflow.reports import charts  # matplotlib: the JSON report does without it

    words = page_words(lang)
    _, label = words["_"], words["label"]

    # tables and charts alike: the most added breaches first
    tables = {d: sorted(report[d], key=lambda r: (-r["more_breaches"], r["name"]))
              for d in ("by_clock", "by_branch", "by_category")}  # fmt: skip
    names = (_("what happened"), _("proposed"))
    figures = {
        dimension: charts.compared_bars(
            [(label(kind, r["name"]) if kind else r["name"], r["actual"]["breached"],
              r["proposed"]["breached"]) for r in tables[dimension]],
            names=names, title=_(title), unit=_("breaches"),
        )
        if tables[dimension]
        else ""
        for dimension, title, kind in (("by_clock", "Breaches per clock", "clock"),
                                       ("by_branch", "Breaches per branch", ""))
    }  # fmt: skip
    totals = report["totals"]
    keys = sorted(set(totals["actual"]) | set(totals["proposed"]), key=_order)
    zone = zone_named(report["zone"], "zone") if "/" in report["zone"] else UTC
    return PAGES.get_template("whatif.html").render(
        report=report, tables=tables, charts=figures, keys=keys,
        font_note=charts.missing_font_note(),
        changed=report["changed"][:CHANGED_SHOWN], generated=stamped(report["generated_at"], zone),
        when=lambda text: local_text(text, zone), **words,
    )  # fmt: skip


def _order(key: str) -> tuple[int, str]:
    """Mails first, then warnings, ladder levels in order, then timers."""
    if key == "mails":
        return (0, "")
    if key == "warnings":
        return (1, "")
    if key.startswith("level "):
        return (2, key.rjust(12))
    return (3, key)
