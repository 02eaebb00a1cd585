"""The HTML report, rendered by a real headless browser (Debian's chromium).

The report is produced end to end by ``analytics_command`` (the ``agent-memory analytics``
sub-command) on an embedded store filled through the real write path, then opened from disk with
networking disabled. ``--dump-dom`` shows what the browser built: the charts' figures, their one
``<svg>`` each, line paths and point circles. A second, instrumented copy of the page (a probe
script appended by the test, not part of the report) asks the browser for the laid-out geometry:
each chart's rendered size, the total length of its line paths and which points are hit-testable
at their centres - proof that the SVG was actually rendered, not merely parsed.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from agent_memory.analytics import render
from agent_memory.analytics.table import render_table
from agent_memory.cli.analytics import analytics_command
from agent_memory.memory.analytics import Analytics
from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import Outcome
from agent_memory.storage.store import MemoryStore
from tests.fixtures.sqlite import sqlite_engine
from tests.support import FakeClock, settings_for

AGENTS = ("alpha", "beta", "gamma")
TYPES = ("entry", "exit")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found (install it with: apt-get install -y chromium)"
)


def run_chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1280,4000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


async def populate(path: Path, now: datetime) -> None:
    """Three agents, two types, ~30 hours of decisions ending now (seeded)."""
    rng = random.Random(11)
    clock = FakeClock(now=now - timedelta(hours=30), step=timedelta(0))
    async with sqlite_engine(path) as engine:
        memory = Memory(MemoryStore(engine, clock), settings_for(path.parent), clock)
        for name in AGENTS:
            await memory.register(Caller(name))
        while clock.now < now - timedelta(minutes=5):
            agent = Caller(rng.choice(AGENTS))
            influenced = rng.random() < 0.4
            decision, _ = await memory.log_decision(agent, rng.choice(TYPES), memory_influenced=influenced)
            await memory.record_outcome(
                agent,
                decision.decision_id,
                Outcome(
                    success=rng.random() < (0.65 if influenced else 0.45),
                    quality_score=round(rng.random(), 2),
                    latency_ms=round(rng.lognormvariate(5.5, 0.8), 1),
                ),
            )
            clock.advance(minutes=rng.uniform(3, 15))


class Charts(HTMLParser):
    """Figures with ``data-chart`` and what is inside each."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and a.get("data-chart"):
            self._open = {"attrs": a, "svg": 0, "paths": [], "circles": 0}
            self.figures.append(self._open)
        elif self._open is not None:
            if tag == "svg":
                self._open["svg"] += 1
            elif tag == "path" and "line" in (a.get("class") or ""):
                self._open["paths"].append(a)
            elif tag == "circle":
                self._open["circles"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._open = None


def charts_of(dom: str) -> list[dict[str, Any]]:
    parser = Charts()
    parser.feed(dom)
    return parser.figures


PROBE = """<script>
for (const fig of document.querySelectorAll('figure[data-chart]')) {
  const svg = fig.querySelector('svg');
  const box = svg.getBoundingClientRect();
  let length = 0;
  for (const p of svg.querySelectorAll('path.line')) length += p.getTotalLength();
  let hits = 0;
  const circles = svg.querySelectorAll('circle');
  for (const c of circles) {
    const b = c.getBoundingClientRect();
    const el = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
    if (el && el.tagName.toLowerCase() === 'circle') hits++;
  }
  fig.dataset.renderedWidth = Math.round(box.width);
  fig.dataset.renderedHeight = Math.round(box.height);
  fig.dataset.pathLength = Math.round(length);
  fig.dataset.hits = hits;
}
document.body.dataset.probed = 'yes';
</script>"""


@needs_chromium
async def test_html_report_renders_in_a_headless_browser(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    db = tmp_path / "memory.db"
    await populate(db, now)
    settings = settings_for(tmp_path, sqlite_path=db, agent_id="alpha")
    out = tmp_path / "report" / "analytics.html"
    html = await analytics_command(
        settings, agent=None, window=timedelta(hours=36), fmt="html", output=out, all_agents=True
    )
    assert out.read_text(encoding="utf-8") == html

    # self-contained: nothing to fetch (the only URL is the SVG namespace)
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    assert "<link" not in html and " src=" not in html and "@import" not in html
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert found is not None
    report = json.loads(found[1])
    assert report["all_agents"] and report["totals"]["decisions"] > 100

    # 1. the DOM the browser built
    dom = (await asyncio.to_thread(run_chromium, out.as_uri(), tmp_path / "profile1", "--dump-dom")).stdout
    figures = charts_of(dom)
    groups = {"overall": "series", "agent": "series_by_agent", "decision_type": "series_by_type"}
    for kind in ("success-rate", "latency"):
        of_kind = [f for f in figures if f["attrs"]["data-chart"] == kind]
        assert [f["attrs"]["data-group"] for f in of_kind] == list(groups)
        for figure in of_kind:
            assert figure["svg"] == 1
            group = figure["attrs"]["data-group"]
            if group == "overall":
                series = [
                    {
                        "name": "all",
                        "points": [p for p in report["series"] if p["decisions"] or p["outcomes"]],
                    }
                ]
            else:
                series = report[groups[group]]
            keys = ["success_rate"] if kind == "success-rate" else ["latency_p50_ms", "latency_p95_ms"]
            points = sum(1 for s in series for p in s["points"] for k in keys if p[k] is not None)
            assert figure["circles"] == points > 0
            assert len(figure["paths"]) == len(series) * len(keys)
            assert {p["data-series"] for p in figure["paths"]} == {s["name"] for s in series}
            for path in figure["paths"]:
                assert re.fullmatch(r"M[\d.]+ [\d.]+( [ML][\d.]+ [\d.]+)+", path["d"]), path["d"]
                assert " L" in path["d"]  # a drawn line, not only isolated points
    assert {s["name"] for s in report["series_by_agent"]} == set(AGENTS)
    assert {s["name"] for s in report["series_by_type"]} == set(TYPES)

    # 2. what the browser laid out and painted
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = (await asyncio.to_thread(run_chromium, probed.as_uri(), tmp_path / "profile2", "--dump-dom")).stdout
    assert 'data-probed="yes"' in dom
    figures = charts_of(dom)
    assert len(figures) == 6
    for figure in figures:
        a = figure["attrs"]
        assert int(a["data-rendered-width"]) >= 400 and int(a["data-rendered-height"]) >= 140
        assert int(a["data-path-length"]) > 200
        assert int(a["data-hits"]) >= 0.9 * figure["circles"]

    # 3. a screenshot is produced (the page paints without error)
    shot = tmp_path / "report.png"
    await asyncio.to_thread(run_chromium, out.as_uri(), tmp_path / "profile3", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1280, 4000)


async def test_analytics_command_formats(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    db = tmp_path / "memory.db"
    await populate(db, now)
    settings = settings_for(tmp_path, sqlite_path=db, agent_id="beta")
    # the configured agent by default
    text = await analytics_command(
        settings, agent=None, window=timedelta(days=2), fmt="json", output=None, all_agents=False
    )
    data = json.loads(text)
    assert data["agents"] == ["beta"] and data["granularity"] == "hour"
    assert data["totals"]["decisions"] > 10
    table = await analytics_command(
        settings,
        agent="gamma",
        window=timedelta(days=7),
        fmt="table",
        output=tmp_path / "t.txt",
        all_agents=False,
    )
    assert table.startswith("agent-memory analytics: gamma")
    assert "daily rollups" in table and "Memory uplift" in table and "Signals" in table
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == table


async def test_table_and_html_render_an_empty_report(tmp_path: Path) -> None:
    clock = FakeClock(now=datetime.now(UTC), step=timedelta(0))
    async with sqlite_engine(tmp_path / "m.db") as engine:
        store = MemoryStore(engine, clock)
        report = await Analytics(store, settings_for(tmp_path), clock).report(
            Caller("nobody"), window=timedelta(hours=3)
        )
    table = render_table(report)
    assert "no decisions in the window" in table and "no pattern has been applied" in table
    html = render(report, "html")
    assert html.count('data-chart="success-rate"') == 1 and "no data in the window" in html
    # text from the store is escaped
    report = report.model_copy(update={"agents": ["<b>x</b>"]})
    assert "<b>x</b>" not in render(report, "html")
