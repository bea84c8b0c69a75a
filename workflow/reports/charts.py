"""Charts for the HTML reports, drawn with matplotlib and inlined as SVG.

The figures are made without pyplot (no global state, safe in threads); text is drawn
as paths, so a page needs no fonts and no files beside it. Chinese names need a font
with Chinese glyphs when the chart is drawn: the first of :data:`CJK_FAMILIES`
installed on this machine (``fonts-wqy-microhei``, Apache-2.0 or GPLv3 with the font
exception, or ``fonts-noto-cjk``, SIL Open Font License 1.1, from Debian; the same
fonts from any system), or the file ``$CASEWORK_CHART_FONT`` names. Without one, such
labels are written as escapes and :func:`missing_font_note` says how to fix it.

Bars come in the order given, first at the top, so a chart reads like the table
beside it; markers have a legend.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
"""Fonts with Chinese glyphs, in the order they are preferred."""
FONT_ENVIRONMENT = "CASEWORK_CHART_FONT"


RECHECK_S = 60.0
"""How often a process without a Chinese font looks again (one installed meanwhile)."""
_found: dict[str, Any] = {"family": None, "checked": None}


def cjk_family() -> str | None:
    """The family of the font that draws Chinese labels, or ``None`` if there is none.

    ``$CASEWORK_CHART_FONT`` wins; then a family matplotlib knows; then the system's
    font folders, scanned afresh, since matplotlib's cached font list predates a font
    installed after its first use. A process that found none looks again after
    :data:`RECHECK_S`: installing a font needs no restart."""
    if _found["family"] is not None:
        return str(_found["family"])
    checked = _found["checked"]
    if checked is not None and time.monotonic() - checked < RECHECK_S:
        return None
    _found["checked"] = time.monotonic()
    family = _chosen_font() or _known_family() or _system_family()
    _found["family"] = family
    return family


def _chosen_font() -> str | None:
    path = os.environ.get(FONT_ENVIRONMENT, "").strip()
    if not (path and os.path.isfile(path)):
        return None
    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())


def _known_family() -> str | None:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in installed), None)


def _system_family() -> str | None:
    """A CJK family among the system's font files that matplotlib's list lacks (added to
    the list for this process)."""
    for path in font_manager.findSystemFonts():
        try:
            name = font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue  # a file the font library cannot read is no candidate
        if name in CJK_FAMILIES:
            font_manager.fontManager.addfont(path)
            return str(name)
    return None


def missing_font_note() -> str | None:
    """What to install when Chinese labels cannot be drawn; ``None`` when they can."""
    if cjk_family() is not None:
        return None
    return (
        "Chart labels in Chinese are shown as escapes: this machine has no font with "
        "Chinese glyphs. Install one (Debian: apt install fonts-wqy-microhei or "
        f"fonts-noto-cjk) or name a font file in ${FONT_ENVIRONMENT}."
    )


def label(text: str) -> str:
    """``text`` as a chart can draw it: itself, or its escapes when no installed font
    has the glyphs it needs."""
    if text.isascii() or cjk_family() is not None:
        return text
    return text.encode("ascii", "backslashreplace").decode()


@contextmanager
def _fonts() -> Iterator[None]:
    family = cjk_family()
    families = ["DejaVu Sans"] + ([family] if family else [])
    with matplotlib.rc_context({"font.family": families, "svg.fonttype": "path"}):
        yield


def svg(figure: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prologue)."""
    buffer = io.StringIO()
    with _fonts():
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _x(moment: datetime) -> float:
    """A time as matplotlib's date number."""
    return float(date2num(moment))


def _time_axis(axes: Any, zone: tzinfo | None) -> None:
    locator = AutoDateLocator(tz=zone)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone))


def bar_chart(
    values: Sequence[tuple[str, float]] | Mapping[str, float],
    *,
    title: str,
    unit: str = "",
    percent: bool = False,
    scale: float | None = None,
) -> str:
    """A horizontal bar chart of ``values`` in the order given, the first on top; the
    axis from 0 to ``scale`` where given (100 points, say)."""
    items = list(values.items() if isinstance(values, Mapping) else values)
    with _fonts():
        figure = Figure(figsize=(7, 0.4 * max(len(items), 2) + 1))
        axes = figure.subplots()
        labels = [label(k) for k, _ in items]
        numbers = [v for _, v in items]
        positions = range(len(items))
        axes.barh(positions, numbers, color=PALETTE[0])
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        for index, value in enumerate(numbers):
            axes.text(value, index, f" {value:.1f}%" if percent else f" {value:g}", va="center")
        if scale is not None:
            axes.set_xlim(0, scale)
        axes.set_title(title)
        axes.set_xlabel(unit)
        axes.spines[["top", "right"]].set_visible(False)
        return svg(figure)


def compared_bars(
    rows: Sequence[tuple[str, float, float]], *, names: tuple[str, str], title: str, unit: str
) -> str:
    """Two bars per row, side by side (what happened, what a proposal gives), in the
    order given, the first on top, with a legend naming the two."""
    with _fonts():
        figure = Figure(figsize=(7, 0.55 * max(len(rows), 2) + 1.2))
        axes = figure.subplots()
        positions = range(len(rows))
        for offset, (index, name) in ((-0.2, (1, names[0])), (0.2, (2, names[1]))):
            numbers = [float(r[index]) for r in rows]
            axes.barh([p + offset for p in positions], numbers, height=0.4, label=label(name),
                      color=PALETTE[index - 1])  # fmt: skip
            for place, value in zip(positions, numbers, strict=True):
                axes.text(value, place + offset, f" {value:g}", va="center", fontsize=8)
        axes.set_yticks(positions, [label(r[0]) for r in rows])
        axes.invert_yaxis()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no half breaches
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        axes.set_title(title)
        axes.set_xlabel(unit)
        axes.spines[["top", "right"]].set_visible(False)
        return svg(figure)


def histogram(
    buckets: Sequence[Mapping[str, float]], *, title: str, unit: str, count: str = "cases"
) -> str:
    """Bars over ranges: each bucket has ``from``, ``to`` and ``cases``."""
    with _fonts():
        figure = Figure(figsize=(7, 3))
        axes = figure.subplots()
        lefts = [b["from"] for b in buckets] or [0.0]
        widths = [b["to"] - b["from"] for b in buckets] or [1.0]
        heights = [b["cases"] for b in buckets] or [0]
        axes.bar(lefts, heights, width=widths, align="edge", color=PALETTE[0], edgecolor="white")
        axes.set_title(title)
        axes.set_xlabel(unit)
        axes.set_ylabel(count)
        axes.spines[["top", "right"]].set_visible(False)
        return svg(figure)


def trend(
    series: Mapping[str, Mapping[datetime, float]],
    *,
    title: str,
    unit: str,
    zone: tzinfo | None = None,
    percent: bool = False,
) -> str:
    """Lines over weeks: one per named series, dates as seen in ``zone`` (``percent``:
    the y axis from 0 to 100)."""
    with _fonts():
        figure = Figure(figsize=(7, 3))
        axes = figure.subplots()
        for index, (name, points) in enumerate(sorted(series.items())):
            xs = sorted(points)
            axes.plot([_x(x) for x in xs], [points[x] for x in xs], marker="o",
                      label=label(name), color=PALETTE[index % len(PALETTE)])  # fmt: skip
        _time_axis(axes, zone)
        moments = sorted({x for points in series.values() for x in points})
        if len(moments) == 1:  # one week: show it with its neighbours, not a decade
            middle = _x(moments[0])
            axes.set_xlim(middle - 7, middle + 7)
        if percent:
            axes.set_ylim(0, 105)
        axes.set_title(title)
        axes.set_ylabel(unit)
        axes.legend(loc="best", fontsize="small")
        axes.spines[["top", "right"]].set_visible(False)
        return svg(figure)


_MARKERS = {
    "target": ("k", "|", 18, "target"),
    "warning": (PALETTE[1], "^", 9, "warning"),
    "escalation": (PALETTE[3], "D", 8, "escalation (level above)"),
}


def clock_chart(spans: Sequence[Any], markers: Sequence[Any], zone: tzinfo | None = None) -> str:
    """Clock cycles as horizontal bars against time (as seen in ``zone``), as inline SVG:
    ``spans`` have ``row``, ``start``, ``end`` and ``paused``; ``markers`` have ``row``,
    ``at``, ``kind`` (target, warning, escalation) and ``label``."""
    rows = sorted({s.row for s in spans} | {m.row for m in markers})
    if not rows:
        return ""
    with _fonts():
        figure = Figure(figsize=(8, 0.7 * len(rows) + 1.6))
        axes = figure.subplots()
        index = {row: n for n, row in enumerate(rows)}
        for span in spans:
            start = _x(span.start)
            width = max(_x(span.end) - start, 1e-4)
            axes.broken_barh(
                [(start, width)], (index[span.row] - 0.25, 0.5),
                facecolors="#d9d9d9" if span.paused else PALETTE[0],
                hatch="//" if span.paused else None,
                edgecolor="#999999" if span.paused else None,
            )  # fmt: skip
        for marker in markers:
            color, shape, size, _ = _MARKERS[marker.kind]
            axes.plot([_x(marker.at)], [index[marker.row]], marker=shape, color=color,
                      markersize=size, linestyle="")  # fmt: skip
        for row, x, text in _escalation_labels(markers, _span_of(spans, markers) / 25):
            axes.annotate(text, (x, index[row]), xytext=(0, 17), textcoords="offset points",
                          ha="center", va="bottom", fontsize=8,
                          color=_MARKERS["escalation"][0])  # fmt: skip
        axes.set_yticks(range(len(rows)), [label(r) for r in rows])
        axes.set_ylim(len(rows) - 0.4, -0.7)
        _time_axis(axes, zone)
        axes.set_title("SLA clocks")
        handles = [
            Patch(facecolor=PALETTE[0], label="counting"),
            Patch(facecolor="#d9d9d9", hatch="//", edgecolor="#999999", label="paused"),
            *(
                Line2D(
                    [],
                    [],
                    color=color,
                    marker=shape,
                    markersize=min(size, 9),
                    linestyle="",
                    label=name,
                )
                for kind, (color, shape, size, name) in _MARKERS.items()
                if any(m.kind == kind for m in markers)
            ),
        ]
        axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18),
                    ncol=len(handles), fontsize="small", frameon=False)  # fmt: skip
        axes.spines[["top", "right"]].set_visible(False)
        return svg(figure)


def _span_of(spans: Sequence[Any], markers: Sequence[Any]) -> float:
    xs = [_x(s.start) for s in spans] + [_x(s.end) for s in spans]
    xs += [_x(m.at) for m in markers]
    return max(xs) - min(xs) or 1.0


def _escalation_labels(markers: Sequence[Any], near: float) -> list[tuple[str, float, str]]:
    """One label per run of escalations close together on a row (``L1-L3``), so labels
    do not print over each other: (row, x of the first, text)."""
    found: list[tuple[str, float, str]] = []
    runs: dict[str, list[tuple[float, str]]] = {}
    for marker in sorted((m for m in markers if m.kind == "escalation"), key=lambda m: m.at):
        run = runs.setdefault(marker.row, [])
        x = _x(marker.at)
        if run and x - run[0][0] > near:
            found.append(_run_label(marker.row, run))
            run.clear()
        run.append((x, marker.label))
    found += [_run_label(row, run) for row, run in runs.items() if run]
    return found


def _run_label(row: str, run: Sequence[tuple[float, str]]) -> tuple[str, float, str]:
    text = run[0][1] if len(run) == 1 else f"{run[0][1]}-{run[-1][1]}"
    return row, run[0][0], text
