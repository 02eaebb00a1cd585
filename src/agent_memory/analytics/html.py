"""An :class:`AnalyticsReport` as one self-contained HTML page: inline CSS, inline SVG charts.

No script, no font, no image and no stylesheet is fetched: the file opens from disk in any
browser, offline. Charts (success rate over time; latency p50/p95 over time) are drawn overall,
per agent and per decision type; every chart is a ``<figure data-chart="success-rate">`` or
``<figure data-chart="latency">`` holding exactly one ``<svg>`` (a line ``<path>`` and a
``<circle>`` per point for each series; hovering a point shows its value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from agent_memory.analytics.table import UPLIFT_HEADER, fmt_ci, fmt_ms, fmt_num, fmt_pct, uplift_rows
from agent_memory.memory.analytics import ADJECTIVE, AnalyticsReport, DecisionFigures, Series, SeriesPoint
from agent_memory.storage import keys

__all__ = ["render_html"]

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]
MAX_SERIES = len(PALETTE)
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 14, 42

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2937;
       background: #f8fafc; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 16px 0 6px; color: #374151; }
.meta { color: #6b7280; margin: 0 0 4px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px;
        min-width: 130px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .l { color: #6b7280; font-size: 12px; }
table { border-collapse: collapse; background: #fff; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #e5e7eb; padding: 4px 9px; text-align: right; }
th { background: #f1f5f9; font-weight: 600; }
td.t, th.t { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px;
               padding: 8px 10px; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
figure.chart svg { width: 100%; height: auto; display: block; }
.legend { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 14px;
          font-size: 12px; }
.legend span.sw { display: inline-block; width: 14px; height: 3px; margin-right: 5px;
                  vertical-align: middle; }
.note { color: #6b7280; font-size: 12px; max-width: 900px; }
svg text { font: 11px system-ui, sans-serif; fill: #6b7280; }
svg .grid { stroke: #e5e7eb; stroke-width: 1; }
svg .axis { stroke: #9ca3af; stroke-width: 1; }
svg .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg .p95 { stroke-dasharray: 6 4; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


# --------------------------------------------------------------------------------------------------
# charts
# --------------------------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


@dataclass(frozen=True)
class _Frame:
    start: datetime
    end: datetime
    step: timedelta
    y_max: float

    def x(self, point: SeriesPoint) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        t = (point.start + self.step / 2 - self.start).total_seconds()
        return LEFT + (WIDTH - LEFT - RIGHT) * max(0.0, min(1.0, t / span))

    def y(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(value, self.y_max) / self.y_max)


def _axes(frame: _Frame, ticks: Sequence[tuple[float, str]], hourly: bool) -> list[str]:
    out = []
    for value, label in ticks:
        y = frame.y(value)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(label)}</text>')
    base = HEIGHT - BOTTOM
    out.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}"/>')
    total = (frame.end - frame.start).total_seconds() or 1.0
    n_buckets = max(1, round(total / frame.step.total_seconds()))
    stride = max(1, math.ceil(n_buckets / 6))  # at most 7 labels, on bucket boundaries
    for i in range(0, n_buckets + 1, stride):
        t = frame.start + frame.step * i
        x = LEFT + (WIDTH - LEFT - RIGHT) * i / n_buckets
        label = t.strftime("%m-%d %H:00") if hourly else t.strftime("%m-%d")
        anchor = "start" if i == 0 else "end" if i == n_buckets else "middle"
        out.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}"/>')
        out.append(f'<text x="{x:.1f}" y="{base + 17}" text-anchor="{anchor}">{_e(label)}</text>')
    out.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">UTC</text>')
    return out


def _line(
    frame: _Frame, series: Series, values: Sequence[float | None], color: str, cls: str, label: str
) -> list[str]:
    """A path through the points that have a value (broken at buckets without one) + circles."""
    segments: list[str] = []
    dots: list[str] = []
    pen_down = False
    previous: SeriesPoint | None = None
    for point, value in zip(series.points, values, strict=True):
        contiguous = previous is not None and point.start - previous.start <= frame.step
        previous = point
        if value is None:
            pen_down = False
            continue
        x, y = frame.x(point), frame.y(value)
        segments.append(f"{'L' if pen_down and contiguous else 'M'}{x:.1f} {y:.1f}")
        pen_down = True
        dots.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}" class="pt">'
            f"<title>{_e(series.name)} {_e(point.bucket)}: {_e(label)} {_e(_fmt_value(cls, value))} "
            f"(decisions {point.decisions}, outcomes {point.outcomes})</title></circle>"
        )
    out = []
    if segments:
        out.append(
            f'<path class="line {cls}" stroke="{color}" d="{" ".join(segments)}" '
            f'data-series="{_e(series.name)}" data-points="{len(dots)}"/>'
        )
    return out + dots


def _fmt_value(cls: str, value: float) -> str:
    return fmt_pct(value) if cls == "rate" else fmt_ms(value)


def _chart(kind: str, group: str, title: str, series: Sequence[Series], report: AnalyticsReport) -> str:
    shown = list(series[:MAX_SERIES])
    hourly = report.granularity == "hour"
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    body: list[str] = []
    if kind == "success-rate":
        frame = _Frame(report.window_start, report.window_end, step, 1.0)
        body += _axes(frame, [(v / 4, f"{v * 25}%") for v in range(5)], hourly)
        for i, s in enumerate(shown):
            color = PALETTE[i % len(PALETTE)]
            body += _line(frame, s, [p.success_rate for p in s.points], color, "rate", "success")
        desc = "Success rate (successes / outcomes) per bucket"
    else:
        peak = max((p.latency_p95_ms or 0.0 for s in shown for p in s.points), default=0.0)
        y_max = _nice_max(peak)
        frame = _Frame(report.window_start, report.window_end, step, y_max)
        body += _axes(frame, [(y_max * i / 4, fmt_ms(y_max * i / 4)) for i in range(5)], hourly)
        for i, s in enumerate(shown):
            color = PALETTE[i % len(PALETTE)]
            body += _line(frame, s, [p.latency_p50_ms for p in s.points], color, "p50", "latency p50")
            body += _line(frame, s, [p.latency_p95_ms for p in s.points], color, "p95", "latency p95")
        desc = "Latency p50 (solid) and p95 (dashed) per bucket"
    if not any(s.points for s in shown):
        body.append(
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{(TOP + HEIGHT - BOTTOM) / 2}" '
            'text-anchor="middle">no data in the window</text>'
        )
    legend = "".join(
        f'<li><span class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></span>{_e(s.name)} '
        f"({s.decisions} decisions)</li>"
        for i, s in enumerate(shown)
    )
    if len(series) > len(shown):
        legend += f"<li>and {len(series) - len(shown)} more (the {len(shown)} with most decisions shown)</li>"
    if kind == "latency":
        legend += "<li>solid: p50, dashed: p95</li>"
    return (
        f'<figure class="chart" data-chart="{kind}" data-group="{_e(group)}">'
        f"<figcaption>{_e(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{_e(title)}"><title>{_e(desc)}</title>'
        + "".join(body)
        + f'</svg><ul class="legend">{legend}</ul></figure>'
    )


def _chart_pair(group: str, label: str, series: Sequence[Series], report: AnalyticsReport) -> str:
    return (
        '<div class="charts">'
        + _chart("success-rate", group, f"Success rate - {label}", series, report)
        + _chart("latency", group, f"Latency p50 / p95 - {label}", series, report)
        + "</div>"
    )


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_cols: int = 1) -> str:
    head = "".join(f'<th class="{"t" if i < text_cols else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"t" if i < text_cols else ""}">{_e(c)}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_FIG_HEADERS = ["decisions", "outcomes", "success", "95% CI", "quality", "p50", "p95", "p99"]


def _fig_cells(f: DecisionFigures) -> list[str]:
    return [
        str(f.decisions),
        str(f.outcomes),
        fmt_pct(f.success_rate),
        fmt_ci(f.success_rate_ci95),
        fmt_num(f.quality_mean),
        fmt_ms(f.latency_p50_ms),
        fmt_ms(f.latency_p95_ms),
        fmt_ms(f.latency_p99_ms),
    ]


def _card(value: str, label: str) -> str:
    return f'<div class="card"><div class="v">{_e(value)}</div><div class="l">{_e(label)}</div></div>'


def _overall(report: AnalyticsReport) -> Series:
    points = [p for p in report.series if p.decisions or p.outcomes]
    return Series(name="all", decisions=report.totals.decisions, points=points)


def render_html(report: AnalyticsReport) -> str:
    r = report
    t = r.totals
    who = "all agents" if r.all_agents else ", ".join(r.agents)
    title = f"agent-memory analytics - {who}" + (f" - {r.decision_type}" if r.decision_type else "")
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Window {_e(keys.iso(r.window_start))} .. {_e(keys.iso(r.window_end))} '
        f"({ADJECTIVE[r.granularity]} rollups, {r.window_requested_hours:g} h asked); generated "
        f"{_e(keys.iso(r.generated_at))}</p>",
        f'<p class="note">{_e(r.window_note)}</p>',
        '<div class="cards">',
        _card(str(t.decisions), "decisions"),
        _card(str(t.outcomes), "outcomes"),
        _card(fmt_pct(t.success_rate), f"success rate (95% CI {fmt_ci(t.success_rate_ci95)})"),
        _card(fmt_num(t.quality_mean), f"mean quality (n={t.quality_n})"),
        _card(fmt_ms(t.latency_p50_ms), "latency p50"),
        _card(fmt_ms(t.latency_p95_ms), "latency p95"),
        _card(fmt_ms(t.latency_p99_ms), "latency p99"),
        "</div>",
        "<h2>Over time</h2>",
        _chart_pair("overall", "all decisions", [_overall(r)], r),
    ]
    if r.series_by_agent and (r.all_agents or len(r.series_by_agent) > 1):
        parts += ["<h2>Per agent</h2>", _chart_pair("agent", "per agent", r.series_by_agent, r)]
    if r.series_by_type:
        parts += [
            "<h2>Per decision type</h2>",
            _chart_pair("decision_type", "per decision type", r.series_by_type, r),
        ]

    parts.append("<h2>Decisions</h2>")
    rows = [["all", *_fig_cells(t)]] + [[b.decision_type, *_fig_cells(b)] for b in r.by_decision_type]
    parts.append(_table(["decision type", *_FIG_HEADERS], rows))
    if r.all_agents or len(r.by_agent) > 1:
        parts.append(_table(["agent", *_FIG_HEADERS], [[b.agent_id, *_fig_cells(b)] for b in r.by_agent]))
    parts.append(
        f'<p class="note">Success rate = successes / outcomes, 95% Wilson score interval. Latency '
        f"percentiles come from log-bucket histograms: each is within "
        f"{r.latency_relative_error * 100:.2f}% of a latency truly at that rank.</p>"
    )

    u = r.memory_uplift
    parts.append("<h2>Memory uplift</h2>")
    parts.append(
        _table(
            UPLIFT_HEADER,
            uplift_rows(u),
        )
    )
    if u.difference is None or u.difference_ci95 is None:
        parts.append('<p class="note">Difference: not available (a group has no outcome yet).</p>')
    else:
        parts.append(
            f"<p>Difference: <b>{u.difference * 100:+.1f} points</b> (95% CI "
            f"{u.difference_ci95.lo * 100:+.1f} to {u.difference_ci95.hi * 100:+.1f}, "
            "Newcombe hybrid score)</p>"
        )

    parts.append("<h2>Patterns</h2>")
    parts.append(
        f'<p class="note">Lifetime effectiveness when applied (applied_successes / applied_count, '
        f"95% Wilson interval) of the {r.patterns_with_applications} pattern(s) applied at least once.</p>"
    )
    for label, patterns in (("Top", r.top_patterns), ("Worst", r.worst_patterns)):
        if patterns:
            parts.append(f"<h3>{label} {len(patterns)}</h3>")
            parts.append(
                _table(
                    ["pattern", "agent", "description", "applied", "successes", "effectiveness", "95% CI"],
                    [
                        [
                            p.pattern_id,
                            p.agent_id,
                            p.description,
                            str(p.applied_count),
                            str(p.applied_successes),
                            fmt_pct(p.effectiveness),
                            fmt_ci(p.ci95),
                        ]
                        for p in patterns
                    ],
                    text_cols=3,
                )
            )

    s = r.signals
    parts.append("<h2>Signals</h2>")
    parts.append(
        _table(
            [
                "published",
                "received",
                "processed",
                "rejected",
                "lag p50",
                "lag p95",
                "pending",
                "expired unprocessed",
            ],
            [
                [
                    str(s.published),
                    str(s.received),
                    str(s.processed),
                    str(s.rejected),
                    fmt_ms(s.lag_p50_ms),
                    fmt_ms(s.lag_p95_ms),
                    str(s.pending),
                    str(s.expired_unprocessed),
                ]
            ],
            text_cols=0,
        )
    )
    parts.append(f'<p class="note">{_e(s.note)}</p>')

    if r.costs is not None:
        c = r.costs
        parts.append("<h2>Cost per tool</h2>")
        if c.rows:
            parts.append(
                _table(
                    [
                        "tool",
                        "calls",
                        "requests / call",
                        "read units / call",
                        "write units / call",
                        "USD / 1k calls",
                    ],
                    [
                        [
                            row.tool,
                            str(row.calls),
                            f"{row.requests_per_call:.2f}",
                            f"{row.read_units_per_call:.2f}",
                            f"{row.write_units_per_call:.2f}",
                            f"{row.usd_per_1000_calls:.6f}",
                        ]
                        for row in c.rows
                    ],
                )
            )
        else:
            parts.append("<p>No tool usage recorded for these days.</p>")
        parts.append(f'<p class="note">{_e(c.note)}</p>')

    data = json.dumps(r.model_dump(mode="json"), separators=(",", ":")).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" id="report-data">{data}</script>')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"
