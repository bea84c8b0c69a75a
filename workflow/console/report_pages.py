"""The reports page (presets, a branch filter) and the full report pages served
fitting the screen with a way back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from casework.workflow.access.scope import report_period
from casework.workflow.console.frame import (
    PAGE_HEADERS,
    engine_of,
    lang_of,
    reader_of,
    render,
    router,
    signed_in,
    units_of,
    viewer_zone,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.console.texts import TEXTS
from casework.workflow.display.times import local
from casework.workflow.display.zones import zone_name
from casework.workflow.errors import (
    CaseworkError,
)
from casework.workflow.labels import refusal


def _asked(request: Request) -> dict[str, str | None]:
    query = request.query_params
    return {"start": query.get("from") or None, "end": query.get("to") or None,
            "month": query.get("month") or None, "last": query.get("last") or None}  # fmt: skip


def _period(request: Request, session: Session) -> Any:
    engine = engine_of(request)
    return report_period(
        session.principal, _asked(request), zone_name(viewer_zone(request)),
        request.query_params.get("branch"),
        display_zone=engine.settings.display_timezone, now=engine.clock.now(),
    )  # fmt: skip


@router.get("/reports")
@signed_in("replay")
def reports(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """SLA compliance per clock and the complaint structure for a period (days in the
    viewer's zone; "this month" and "last 7 days" one click away), for one branch or
    all a token sees."""
    from casework.workflow.reports.business import complaints_report, sla_report

    query = request.query_params
    start, end = query.get("from", ""), query.get("to", "")
    asked = {k: query.get(k, "") for k in ("from", "to", "month", "last", "branch")}
    chosen = urlencode({k: v for k, v in asked.items() if v})
    engine = reader_of(request)
    month = f"{local(engine.clock.now(), viewer_zone(request)):%Y-%m}"
    units = units_of(engine, session)
    org = engine.settings.organisation
    every = {unit for branch, stores in org.branches.items() for unit in (branch, *stores)}
    branches = sorted(every if units is None else units)
    values: dict[str, Any] = {"start": start, "end": end, "month": month, "chosen": chosen,
              "branch": asked["branch"], "branches": branches}  # fmt: skip
    report = complaints = None
    if start or asked["month"] or asked["last"]:
        try:
            period = _period(request, session)
            report = sla_report(engine.context, period)
            complaints = complaints_report(engine.context, period, None)
        except CaseworkError as err:
            flash = refusal(lang_of(request), err)
            return render(request, "reports.html", "reports", session, report=None,
                          complaints=None, flash=flash, **values)  # fmt: skip
    return render(request, "reports.html", "reports", session, report=report,
                  complaints=complaints, **values)  # fmt: skip


def _no_period() -> dict[str, Any]:
    return {"start": "", "end": "", "month": "", "chosen": "", "branch": "", "branches": []}


@router.get("/reports/{name}.html")
@signed_in("replay")
def report_page(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The SLA or complaint report with its charts, as the ``report`` command draws it."""
    from casework.workflow.reports import business

    name = request.path_params["name"]
    try:
        period = _period(request, session)
        lang = lang_of(request)
        if name == "sla":
            html = business.sla_page(business.sla_report(reader_of(request).context, period), lang)
        elif name == "complaints":
            report = business.complaints_report(reader_of(request).context, period, None)
            html = business.complaints_page(report, lang)
        else:
            return render(request, "reports.html", "reports", session, status=404, report=None,
                          complaints=None, **_no_period())  # fmt: skip
    except CaseworkError as err:
        flash = refusal(lang_of(request), err)
        return render(request, "reports.html", "reports", session, flash=flash, report=None,
                      complaints=None, **_no_period())  # fmt: skip
    except ImportError:
        flash = "charts need the reports extra: pip install 'casework[reports]'"
        return render(request, "reports.html", "reports", session, flash=flash, report=None,
                      complaints=None, **_no_period())  # fmt: skip
    return HTMLResponse(_framed(request, html, name), headers=PAGE_HEADERS)


FITTING = (
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<style>body{max-width:min(70em,100%);padding:0 .8rem;overflow-x:hidden;box-sizing:border-box}"
    "svg,img{max-width:100%;height:auto}table{display:block;max-width:100%;overflow-x:auto}"
    "p.back{margin:.4rem 0 1rem}p.back a{color:#1d5fd1}</style>"
)
"""What a report page drawn for a file gets when the console serves it: the screen's
width (charts and tables shrink or scroll inside, the page never sideways)."""


def _framed(request: Request, html: str, name: str) -> str:
    """A report page as the console serves it: fitting the screen, with a way back to
    the reports and the "this month" and "last 7 days" presets."""
    texts = TEXTS[lang_of(request)]
    query = request.query_params
    branch = query.get("branch")
    keep = f"&amp;branch={quote(branch)}" if branch else ""
    back = urlencode({k: v for k, v in query.items() if v})
    month = f"{local(engine_of(request).clock.now(), viewer_zone(request)):%Y-%m}"
    nav = (
        f'<p class="back"><a href="/reports?{back}">\u2190 {texts["back"]}</a> · '
        f'<a href="/reports/{name}.html?month={month}{keep}">{texts["this_month"]}</a> · '
        f'<a href="/reports/{name}.html?last=7d{keep}">{texts["last_7_days"]}</a></p>'
    )
    if 'name="viewport"' not in html:
        html = html.replace("</head>", FITTING + "</head>", 1)
    start = html.find("<body")
    if start < 0:
        return html
    close = html.index(">", start) + 1
    return html[:close] + nav + html[close:]
