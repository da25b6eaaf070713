"""The report's PNG: messages handed to each vendor, and final outcomes, per time bin.

Drawn on a bare `Figure` with the Agg canvas, never through pyplot: no
global figure state, no GUI backend chosen from the environment, so it runs
the same on a server, in a test and inside another process.

What keeps it honest: the bins are chosen from the period the events span
(`queries.bin_seconds`: a one-minute run is drawn per second, not as two
points); each axis says what it counts and per how long; every vendor keeps
its colour from one run to the next (`vendor_colours`, from the catalog's
order); the legends sit outside the axes, so none covers a bar or a line.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from smsdispatch.analytics.queries import FINAL_OUTCOMES, Report

# One colour per final status, fixed so charts compare at a glance.
STATUS_COLOURS = {
    "delivered": "#2e7d32",
    "undelivered": "#f9a825",
    "expired": "#6d4c41",
    "failed": "#c62828",
}
# Vendor colours (Tableau 10, without the green, amber, brown and red the
# statuses use, so a vendor is never read as an outcome).
VENDOR_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
)


def vendor_colours(catalog_order: Sequence[str], vendors: Iterable[str]) -> dict[str, str]:
    """A colour for each of `vendors` that depends only on the vendor: the
    catalog's n-th vendor always gets the n-th colour, whichever vendors a
    report happens to hold; a vendor the catalog does not list gets one of the
    colours left over, from a hash of its name (stable across runs, unlike
    Python's hash()), the next free one if another vendor of the chart has it."""
    order = list(catalog_order)
    colours = {
        v: VENDOR_PALETTE[order.index(v) % len(VENDOR_PALETTE)] for v in vendors if v in order
    }
    spare = [c for c in VENDOR_PALETTE[len(order) :] or VENDOR_PALETTE]
    for vendor in sorted(v for v in set(vendors) if v not in order):
        start = zlib.crc32(vendor.encode()) % len(spare)
        free = [spare[(start + i) % len(spare)] for i in range(len(spare))]
        taken = set(colours.values())
        colours[vendor] = next((c for c in free if c not in taken), free[0])
    return colours


def bin_label(seconds: int) -> str:
    """'second', '5 s', 'minute', '15 min', 'hour', ... for axis labels."""
    for unit, size, short in (("day", 86400, "d"), ("hour", 3600, "h"), ("minute", 60, "min")):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {short}"
    return "second" if seconds == 1 else f"{seconds} s"


def _series(rows: Sequence[tuple[datetime, str, int]]) -> dict[str, dict[datetime, int]]:
    series: dict[str, dict[datetime, int]] = defaultdict(dict)
    for start, key, n in rows:
        series[key][start] = series[key].get(start, 0) + n
    return series


def every_bin(series: dict[str, dict[datetime, int]], width: timedelta) -> list[datetime]:
    """Every bin from the first to the last, so a quiet bin shows as 0, not a gap."""
    seen = [t for by_bin in series.values() for t in by_bin]
    first, last = min(seen), max(seen)
    return [first + width * i for i in range(int((last - first) / width) + 1)]


def _time_axis(ax: Axes, width: int, highest: int) -> None:
    locator = AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    per = bin_label(width)
    ax.set_xlabel(f"time (UTC), bins of {per if per[0].isdigit() else f'one {per}'}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Headroom above the highest point, so no bar or line touches the top.
    ax.set_ylim(0, max(1.0, highest * 1.12))
    ax.grid(alpha=0.3)


def _legend(ax: Axes, title: str) -> None:
    # Outside the axes, on the right: it can never cover a bar or a line.
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        fontsize="small",
        title=title,
        title_fontsize="small",
    )


def _nothing(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this period", ha="center", va="center")
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_sends(ax: Axes, report: Report, colours: Sequence[str]) -> bool:
    sends = _series(report.sends_per_bin)
    per = bin_label(report.bin_seconds)
    ax.set_title(f"messages handed to each vendor per {per} (retries included)")
    if not sends:
        _nothing(ax, "messages sent")
        return False
    starts = every_bin(sends, timedelta(seconds=report.bin_seconds))
    colour = vendor_colours(colours, sends)
    for provider in sorted(sends):
        counts = [sends[provider].get(t, 0) for t in starts]
        ax.plot(date2num(starts), counts, marker=".", label=provider, color=colour[provider])
    ax.xaxis_date(tz=UTC)
    _legend(ax, "vendor")
    _time_axis(ax, report.bin_seconds, max(max(by_bin.values()) for by_bin in sends.values()))
    ax.set_ylabel(f"messages sent / {per}")
    return True


def _draw_outcomes(ax: Axes, report: Report) -> None:
    outcomes = _series(report.outcomes_per_bin)
    per = bin_label(report.bin_seconds)
    ax.set_title(f"messages reaching a final status per {per} (final_at), by status")
    if not outcomes:
        _nothing(ax, "final outcomes")
        return
    starts = sorted({t for by_bin in outcomes.values() for t in by_bin})
    x = date2num(starts)
    bottom = [0] * len(starts)
    for status in FINAL_OUTCOMES:
        by_bin = outcomes.get(status.value)
        if not by_bin:
            continue
        heights = [by_bin.get(t, 0) for t in starts]
        ax.bar(
            x,
            heights,
            width=report.bin_seconds / 86400,
            bottom=bottom,
            align="edge",
            color=STATUS_COLOURS[status.value],
            label=status.value,
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.xaxis_date(tz=UTC)
    _legend(ax, "status")
    _time_axis(ax, report.bin_seconds, max(bottom))
    ax.set_ylabel(f"messages / {per}")


def render(report: Report, vendor_order: Sequence[str] = ()) -> Figure:
    """The chart as a laid-out figure (its two axes: sends, then outcomes).

    `vendor_order` is the catalog's vendors in order: it fixes their colours."""
    figure = Figure(figsize=(11, 7.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    sends_ax, outcomes_ax = figure.subplots(2, 1)
    figure.suptitle(f"smsdispatch: {report.filter.describe()}")
    if _draw_sends(sends_ax, report, vendor_order) and report.outcomes_per_bin:
        # One time axis: how far outcomes lag the sends shows at a glance.
        outcomes_ax.sharex(sends_ax)
    _draw_outcomes(outcomes_ax, report)
    figure.canvas.draw()  # lay it out: sizes and positions are final from here
    return figure


def draw(report: Report, path: Path, vendor_order: Sequence[str] = ()) -> Path:
    """Write the chart as a PNG at `path` (parents created) and return the path."""
    figure = render(report, vendor_order)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
