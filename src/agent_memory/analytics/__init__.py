"""Presenting analytics: terminal table, self-contained HTML, CloudWatch EMF records (the
``agent-memory analytics`` command itself lives in :mod:`agent_memory.cli.analytics`).

The figures themselves are computed by :class:`agent_memory.memory.analytics.Analytics`.
"""

from __future__ import annotations

import json
from typing import Literal

from agent_memory.memory.analytics import AnalyticsReport

__all__ = ["render"]

Format = Literal["table", "json", "html"]


def render(report: AnalyticsReport, fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(report.model_dump(mode="json"), indent=2) + "\n"
    if fmt == "html":
        from agent_memory.analytics.html import render_html

        return render_html(report)
    from agent_memory.analytics.table import render_table

    return render_table(report)
