"""An :class:`AnalyticsReport` as plain text for a terminal (no colours, no box drawing)."""

from __future__ import annotations

from collections.abc import Sequence

from agent_memory.memory.analytics import ADJECTIVE, AnalyticsReport, DecisionFigures, Interval, MemoryUplift
from agent_memory.storage import keys
from agent_memory.text import printable

__all__ = ["fmt_ms", "fmt_pct", "render_table"]


UPLIFT_HEADER = ["group", "decisions", "outcomes", "successes", "success", "95% CI"]


def uplift_rows(u: MemoryUplift) -> list[list[str]]:
    """The memory-uplift table's rows, shared by the terminal and HTML renderers."""
    return [
        [
            "memory-influenced",
            str(u.with_memory_decisions),
            str(u.with_memory_outcomes),
            str(u.with_memory_successes),
            fmt_pct(u.with_memory_rate),
            fmt_ci(u.with_memory_ci95),
        ],
        [
            "without memory",
            str(u.without_memory_decisions),
            str(u.without_memory_outcomes),
            str(u.without_memory_successes),
            fmt_pct(u.without_memory_rate),
            fmt_ci(u.without_memory_ci95),
        ],
    ]


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def fmt_ci(interval: Interval | None) -> str:
    return "-" if interval is None else f"{interval.lo * 100:.1f}-{interval.hi * 100:.1f}%"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def grid(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool] | None = None
) -> str:
    """Columns padded to their widest cell; numbers right-aligned (``right``), text left-aligned."""
    align = list(right) if right is not None else [i > 0 for i in range(len(headers))]
    # Cells may hold text agents wrote (pattern descriptions, ids): escape control characters so
    # that a stored escape sequence cannot clear the screen or fake lines of the report.
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(cells, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    return "\n".join(out)


_FIGURE_HEADERS = ["decisions", "outcomes", "success", "95% CI", "quality", "p50", "p95", "p99"]


def _figure_cells(f: DecisionFigures) -> list[str]:
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


def _title(text: str) -> str:
    return f"\n{text}\n{'=' * len(text)}"


def render_table(report: AnalyticsReport) -> str:
    r = report
    who = "all agents" if r.all_agents else ", ".join(r.agents)
    lines = [
        f"agent-memory analytics: {who}" + (f", decision type {r.decision_type}" if r.decision_type else ""),
        f"window: {keys.iso(r.window_start)} .. {keys.iso(r.window_end)} "
        f"({ADJECTIVE[r.granularity]} rollups; asked {r.window_requested_hours:g} h)",
        f"generated: {keys.iso(r.generated_at)}",
    ]
    lines.append(_title("Decisions"))
    rows = [["all", *_figure_cells(r.totals)]]
    rows += [[b.decision_type, *_figure_cells(b)] for b in r.by_decision_type]
    lines.append(grid(["decision type", *_FIGURE_HEADERS], rows))
    lines.append(
        f"success 95% CI: Wilson score interval. Latency percentiles within "
        f"{r.latency_relative_error * 100:.1f}% (log-bucket histogram). "
        f"memory-influenced decisions: {r.totals.memory_influenced_decisions}"
    )
    if len(r.by_agent) > 1 or r.all_agents:
        lines.append(_title("By agent"))
        lines.append(grid(["agent", *_FIGURE_HEADERS], [[b.agent_id, *_figure_cells(b)] for b in r.by_agent]))

    u = r.memory_uplift
    lines.append(_title("Memory uplift"))
    lines.append(
        grid(
            UPLIFT_HEADER,
            uplift_rows(u),
        )
    )
    if u.difference is None or u.difference_ci95 is None:
        lines.append("difference: - (a group has no outcome yet)")
    else:
        lines.append(
            f"difference: {u.difference * 100:+.1f} points "
            f"(95% CI {u.difference_ci95.lo * 100:+.1f} to {u.difference_ci95.hi * 100:+.1f}, Newcombe)"
        )

    lines.append(_title("Patterns (lifetime effectiveness when applied)"))
    if not r.top_patterns:
        lines.append("no pattern has been applied to a decision with a recorded outcome yet")
    for label, patterns in (("top", r.top_patterns), ("worst", r.worst_patterns)):
        if not patterns:
            continue
        lines.append(f"{label} {len(patterns)} of {r.patterns_with_applications}:")
        lines.append(
            grid(
                ["pattern", "agent", "applied", "successes", "effectiveness", "95% CI", "description"],
                [
                    [
                        p.pattern_id,
                        p.agent_id,
                        str(p.applied_count),
                        str(p.applied_successes),
                        fmt_pct(p.effectiveness),
                        fmt_ci(p.ci95),
                        p.description[:60],
                    ]
                    for p in patterns
                ],
                right=[False, False, True, True, True, True, False],
            )
        )

    s = r.signals
    lines.append(_title("Signals"))
    lines.append(
        grid(
            ["published", "received", "processed", "rejected", "lag p50", "lag p95", "pending", "expired"],
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
            right=[True] * 8,
        )
    )
    lines.append(f"pending/expired by expiry hour (current hour {s.current_hour} counts as pending)")

    lines.append(_title(f"Over time ({ADJECTIVE[r.granularity]})"))
    points = [p for p in r.series if p.decisions or p.outcomes]
    if not points:
        lines.append("no decisions in the window")
    else:
        lines.append(
            grid(
                ["bucket", "decisions", "success", "p50", "p95"],
                [
                    [
                        p.bucket,
                        str(p.decisions),
                        fmt_pct(p.success_rate),
                        fmt_ms(p.latency_p50_ms),
                        fmt_ms(p.latency_p95_ms),
                    ]
                    for p in points
                ],
            )
        )

    if r.costs is not None:
        c = r.costs
        lines.append(_title("Cost per tool"))
        if not c.rows:
            lines.append("no tool usage recorded for these days")
        else:
            lines.append(
                grid(
                    ["tool", "calls", "req/call", "RRU/call", "WRU/call", "USD/1k calls"],
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
            lines.append(
                f"on-demand prices: ${c.price_read_per_million}/M reads, "
                f"${c.price_write_per_million}/M writes; total {c.total_calls} calls ~ ${c.total_usd:.6f}"
            )
    return "\n".join(lines) + "\n"
