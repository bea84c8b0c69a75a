"""Charts for the HTML reports, drawn with matplotlib and inlined as SVG.

The figures are made without pyplot (no global state, safe in threads); text is
drawn as paths, so a page needs no fonts and no files beside it. Labels are kept to
what the bundled fonts can draw; names in other scripts belong in the page's tables.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")


def svg(figure: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prologue)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def ascii_label(text: str) -> str:
    """``text`` if every character can be drawn by the bundled fonts, else its escape."""
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode()


def _x(moment: datetime) -> float:
    """A time as matplotlib's date number."""
    return float(date2num(moment))


def _time_axis(axes: Any) -> None:
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def bar_chart(
    values: Mapping[str, float], *, title: str, unit: str = "", percent: bool = False
) -> str:
    """A horizontal bar chart of ``values`` (largest first)."""
    items = sorted(values.items(), key=lambda kv: kv[1])
    figure = Figure(figsize=(7, 0.4 * max(len(items), 2) + 1))
    axes = figure.subplots()
    labels = [ascii_label(k) for k, _ in items]
    numbers = [v for _, v in items]
    axes.barh(labels, numbers, color=PALETTE[0])
    for index, value in enumerate(numbers):
        axes.text(value, index, f" {value:.1f}%" if percent else f" {value:g}", va="center")
    axes.set_title(title)
    axes.set_xlabel(unit)
    axes.spines[["top", "right"]].set_visible(False)
    return svg(figure)


def histogram(values: Sequence[float], *, title: str, unit: str, bins: int = 24) -> str:
    """A histogram of ``values``."""
    figure = Figure(figsize=(7, 3))
    axes = figure.subplots()
    axes.hist(list(values) or [0.0], bins=bins, color=PALETTE[0], edgecolor="white")
    axes.set_title(title)
    axes.set_xlabel(unit)
    axes.set_ylabel("cases")
    axes.spines[["top", "right"]].set_visible(False)
    return svg(figure)


def trend(series: Mapping[str, Mapping[datetime, float]], *, title: str, unit: str) -> str:
    """Lines over weeks: one per named series."""
    figure = Figure(figsize=(7, 3))
    axes = figure.subplots()
    for index, (name, points) in enumerate(sorted(series.items())):
        xs = sorted(points)
        axes.plot([_x(x) for x in xs], [points[x] for x in xs], marker="o", label=ascii_label(name),
                  color=PALETTE[index % len(PALETTE)])  # fmt: skip
    _time_axis(axes)
    axes.set_title(title)
    axes.set_ylabel(unit)
    if len(series) > 1:
        axes.legend(loc="best", fontsize="small")
    axes.spines[["top", "right"]].set_visible(False)
    return svg(figure)


def clock_chart(spans: Sequence[Any], markers: Sequence[Any]) -> str:
    """Clock cycles as horizontal bars against time, as inline SVG: ``spans`` have
    ``row``, ``start``, ``end`` and ``paused``; ``markers`` have ``row``, ``at``,
    ``kind`` (target, warning, escalation) and ``label``."""
    rows = sorted({s.row for s in spans} | {m.row for m in markers})
    if not rows:
        return ""
    figure = Figure(figsize=(8, 0.6 * len(rows) + 1.2))
    axes = figure.subplots()
    index = {row: n for n, row in enumerate(rows)}
    for span in spans:
        start = _x(span.start)
        width = max(_x(span.end) - start, 1e-4)
        axes.broken_barh(
            [(start, width)], (index[span.row] - 0.3, 0.6),
            facecolors="#d9d9d9" if span.paused else PALETTE[0],
            hatch="//" if span.paused else None, edgecolor="#999999" if span.paused else None,
        )  # fmt: skip
    styles = {"target": ("k", "|", 18), "warning": (PALETTE[1], "^", 9),
              "escalation": (PALETTE[3], "D", 8)}  # fmt: skip
    for marker in markers:
        color, shape, size = styles[marker.kind]
        y = index[marker.row]
        axes.plot([_x(marker.at)], [y], marker=shape, color=color, markersize=size, linestyle="")
        if marker.kind == "escalation":
            axes.annotate(marker.label, (_x(marker.at), y + 0.32), ha="center",
                          fontsize=8, color=color)  # fmt: skip
    axes.set_yticks(range(len(rows)), [ascii_label(r) for r in rows])
    axes.set_ylim(-0.7, len(rows) - 0.3)
    _time_axis(axes)
    axes.set_title("SLA clocks (blue: counting, hatched: paused, |: target)")
    axes.spines[["top", "right"]].set_visible(False)
    return svg(figure)
