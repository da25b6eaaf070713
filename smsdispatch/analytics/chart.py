"""The report's PNG: vendor calls per minute, and final outcomes per minute.

Drawn on a bare `Figure` with the Agg canvas, never through pyplot: no
global figure state, no GUI backend chosen from the environment, so it runs
the same on a server, in a test and inside another process.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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
MINUTE = timedelta(minutes=1)


def _series(rows: Sequence[tuple[datetime, str, int]]) -> dict[str, dict[datetime, int]]:
    series: dict[str, dict[datetime, int]] = defaultdict(dict)
    for minute, key, n in rows:
        series[key][minute] = series[key].get(minute, 0) + n
    return series


def _every_minute(series: dict[str, dict[datetime, int]]) -> list[datetime]:
    """Every minute from the first to the last, so a quiet minute shows as 0, not a gap."""
    seen = [t for by_minute in series.values() for t in by_minute]
    first, last = min(seen), max(seen)
    return [first + MINUTE * i for i in range(int((last - first) / MINUTE) + 1)]


def _time_axis(ax: Axes) -> None:
    locator = AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel("minute (UTC)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _nothing(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this period", ha="center", va="center")
    ax.set_xticks([])
    ax.set_yticks([])


def draw(report: Report, path: Path) -> Path:
    """Write the chart as a PNG at `path` (parents created) and return the path."""
    figure = Figure(figsize=(11, 7.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    sends_ax, outcomes_ax = figure.subplots(2, 1)
    figure.suptitle(f"smsdispatch: {report.filter.describe()}")

    sends = _series(report.sends_per_minute)
    if sends:
        minutes = _every_minute(sends)
        for provider in sorted(sends):
            counts = [sends[provider].get(t, 0) for t in minutes]
            sends_ax.plot(minutes, counts, marker=".", label=provider)
        sends_ax.legend(loc="upper right", fontsize="small")
        _time_axis(sends_ax)
        sends_ax.set_ylabel("vendor calls / minute")
    else:
        _nothing(sends_ax, "vendor calls")
    sends_ax.set_title("sends per minute, by vendor")

    outcomes = _series(report.outcomes_per_minute)
    if sends and outcomes:
        # One time axis: how far deliveries lag the sends shows at a glance.
        outcomes_ax.sharex(sends_ax)
    if outcomes:
        minutes = sorted({t for by_minute in outcomes.values() for t in by_minute})
        x = date2num(minutes)
        bottom = [0] * len(minutes)
        for status in FINAL_OUTCOMES:
            by_minute = outcomes.get(status.value)
            if not by_minute:
                continue
            heights = [by_minute.get(t, 0) for t in minutes]
            outcomes_ax.bar(
                x,
                heights,
                width=MINUTE / timedelta(days=1),
                bottom=bottom,
                align="edge",
                color=STATUS_COLOURS[status.value],
                label=status.value,
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        outcomes_ax.xaxis_date(tz=UTC)
        outcomes_ax.legend(loc="upper right", fontsize="small")
        _time_axis(outcomes_ax)
        outcomes_ax.set_ylabel("messages / minute")
    else:
        _nothing(outcomes_ax, "final outcomes")
    outcomes_ax.set_title("final outcomes per minute (final_at), by status")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
