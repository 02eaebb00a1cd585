"""Benchmark: what a model reads. The size of tools/list and of every tool's default result.

    python -m bench.bench_tokens [--decisions 300]

Loads a realistic memory through the real MCP client (in-process, embedded store in a temporary
directory): a market hunter's decisions with ~1.2 KB trading contexts and outcomes, a few working
notes (three at 60 KB), signals to a risk manager, patterns (one with earlier versions), a
versioned state with a checkpoint. Then prints, in characters of the text a model receives:

- tools/list as a model sees it (name + description + input schema of every tool), and the
  output schemas a host may also pass on;
- each tool's default result (no arguments beyond the required ones) and each write's answer.

Sizes are deterministic (no timing); the budgets (a default page, tools/list) are asserted in
tests/server/test_surface.py. Prints the table; ``--write-docs`` also writes it into section
``tokens`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client

from agent_memory.config import Settings
from agent_memory.server.app import build_server
from agent_memory.storage.factory import open_store
from bench.common import machine_note, markdown_table, publish

TRENDS = ("bullish", "bearish", "sideways")


def trading_context(i: int) -> dict[str, Any]:
    """A ~1.2 KB decision context of a trading agent."""
    return {
        "market": {
            "trend": ("bullish", "bearish", "sideways")[i % 3],
            "volatility": "high",
            "regime": "risk-on",
        },
        "token": f"TOKEN{i % 40}",
        "whale_count": i % 11,
        "prices": [round(100 + i * 0.37 + k * 0.11, 2) for k in range(30)],
        "sources": {f"source_{k}": {"score": round(0.07 * k, 2), "latency_ms": 40 + k} for k in range(10)},
        "note": "order book imbalance on the bid side; funding neutral; social volume rising",
    }


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


async def call(client: Client, tool: str, args: dict[str, Any]) -> tuple[str, Any]:
    result = await client.call_tool(tool, args)
    text = "".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        raise RuntimeError(f"{tool}: {text}")
    return text, result.structured_content


async def run(decisions: int) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.db"
        base = Settings(sqlite_path=path, agent_id="market-hunter")
        async with open_store(base) as store:
            hunter_server = build_server(base, store=store)
            risk_server = build_server(base.model_copy(update={"agent_id": "risk-manager"}), store=store)
            async with Client(hunter_server) as hunter, Client(risk_server) as risk:
                await call(risk, "get_state", {})
                tools = (await hunter.list_tools()).tools
                seen = sum(len(t.name) + len(t.description or "") + compact(t.input_schema) for t in tools)
                outputs = sum(compact(t.output_schema or {}) for t in tools)
                rows += [
                    ("tools/list (name + description + input schema)", seen),
                    ("output schemas", outputs),
                ]

                first_id = None
                for i in range(decisions):
                    text, data = await call(
                        hunter,
                        "log_decision",
                        {
                            "decision_type": ("SOURCE_SELECTION", "RISK_CHECK")[i % 2],
                            "context": trading_context(i),
                            "reasoning": {
                                "chosen": f"source_{i % 10}",
                                "scores": [0.1 * k for k in range(5)],
                            },
                            **(
                                {
                                    "outcome": {
                                        "success": i % 3 != 0,
                                        "quality_score": (i % 10) / 10,
                                        "latency_ms": 100 + i,
                                    }
                                }
                                if i
                                else {}
                            ),
                        },
                    )
                    if i == 0:
                        first_id = (data or {}).get("decision_id") or data["decision"]["decision_id"]  # type: ignore[index]
                        rows.append(("log_decision (a 1.2 KB context in)", len(text)))
                big = {"blob": "x" * 60_000}
                for k in range(3):
                    await call(hunter, "store_stm", {"key": f"scratch/{k}", "value": big})
                for k in range(5):
                    text, _ = await call(
                        hunter, "store_stm", {"key": f"context/{k}", "value": trading_context(k)}
                    )
                rows.append(("store_stm (a 1.2 KB note in)", len(text)))
                for k in range(30):
                    text, data = await call(
                        hunter,
                        "publish_signal",
                        {
                            "signal_type": "WHALE_ACTIVITY",
                            "data": trading_context(k),
                            "target_agents": ["risk-manager"],
                            "confidence": 0.8,
                            "severity": "high",
                            "recommended_action": "ASSESS_ENTRY",
                        },
                    )
                rows.append(("publish_signal (a 1.2 KB payload in)", len(text)))
                pattern_id = None
                for k in range(15):
                    text, data = await call(
                        hunter,
                        "store_pattern",
                        {
                            "description": f"Whales in a {TRENDS[k % 3]} market predict a move",
                            "conditions": [
                                {"field": "market.trend", "op": "eq", "value": "bullish"},
                                {"field": "whale_count", "op": "gte", "value": k % 7},
                            ],
                            "outcomes": {"pump_probability": 0.7, "horizon_h": 4},
                            "confidence": 0.5 + k / 40,
                            "success_rate": 0.7,
                            "sample_size": 40 + k,
                            "shared_with": ["*"],
                            "domain": "trading",
                        },
                    )
                    pattern_id = pattern_id or data["pattern_id"]  # type: ignore[index]
                rows.append(("store_pattern", len(text)))
                for version in (1, 2):
                    await call(
                        hunter,
                        "store_pattern",
                        {
                            "pattern_id": pattern_id,
                            "expected_version": version,
                            "description": "revised rule",
                            "conditions": [{"field": "whale_count", "op": "gte", "value": 5}],
                            "outcomes": {"p": 0.8},
                            "confidence": 0.8,
                            "success_rate": 0.8,
                            "sample_size": 60,
                            "shared_with": ["*"],
                        },
                    )
                text, _ = await call(
                    hunter, "share_pattern", {"pattern_id": pattern_id, "shared_with": ["*"]}
                )
                rows.append(("share_pattern", len(text)))
                state = {
                    "current": {"cycle": 143, "positions": trading_context(1)},
                    "configuration": {"risk": {"max_position": 0.1}},
                    "source_metrics": trading_context(2),
                }
                text, _ = await call(
                    hunter, "update_state", {"patch": state, "expected_version": 0, "checkpoint": "c1"}
                )
                rows.append(("update_state (2.5 KB patch in)", len(text)))
                text, _ = await call(hunter, "record_outcome", {"decision_id": first_id, "success": False})
                rows.append(("record_outcome", len(text)))

                for tool, who, args in (
                    ("recall_stm", hunter, {}),
                    ("search_decisions", hunter, {}),
                    ("recall_patterns", hunter, {}),
                    ("pattern_history", hunter, {"pattern_id": pattern_id}),
                    ("read_inbox", risk, {}),
                    ("get_state", hunter, {}),
                    ("get_analytics", hunter, {}),
                    ("learn_patterns", hunter, {"window": "24h", "min_samples": 20}),
                ):
                    text, _ = await call(who, tool, args)
                    rows.append((f"{tool} (default)", len(text)))
                _, inbox = await call(risk, "read_inbox", {"limit": 1})
                entry = inbox["entries"][0]  # type: ignore[index]
                signal_id = entry.get("signal_id") or entry["signal"]["signal_id"]
                text, _ = await call(risk, "ack_signal", {"signal_id": signal_id, "status": "processed"})
                rows.append(("ack_signal", len(text)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--write-docs", action="store_true", help="update the docs (default: print only)")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.decisions))
    table = markdown_table(["what the model reads", "characters"], [[n, f"{size:,}"] for n, size in rows])
    note = (
        f"{machine_note()} {args.decisions:,} decisions with ~1.2 KB trading contexts and outcomes, working "
        "notes (three at 60 KB), signals with ~1.2 KB payloads, shared patterns (one with earlier versions), "
        "a state with a checkpoint; loaded and read through the real MCP client (in-process, embedded "
        "store). Characters of the text content a model receives."
    )
    publish("tokens", f"{table}\n\n{note}", write=args.write_docs)


if __name__ == "__main__":
    main()
