"""Benchmark: what checking a result against its output schema costs, original vs flat.

    python -m bench.bench_schema_validation [--runs 300] [--decisions 20]

The SDK client validates every tool result against the tool's output schema with jsonschema
(``validator.iter_errors`` + ``best_match``, the validator compiled once per tool). This runs that
same check on real results of the server's tools (an embedded store with ``--decisions`` decisions
whose contexts are ~1.2 KB, notes, signals and a pattern), against the schema the SDK derives from
the tool's return type (``$ref``s, ``anyOf: [X, null]``) and against the flat schema the server
publishes (``agent_memory.server.schemas.flat_output_schema``). The two checks alternate, so noise
falls on both alike. Prints the median per call and per KB of result, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema.validators import validator_for
from mcp import Client
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

from agent_memory.config import Settings
from agent_memory.server.app import build_server

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("recall_stm", {}),
    ("search_decisions", {}),
    ("read_inbox", {}),
    ("recall_patterns", {"context": {"market": {"trend": "bullish"}, "whale_count": 9}}),
    ("get_state", {}),
    ("get_analytics", {"window": "24h"}),
]


def _context(i: int) -> dict[str, Any]:
    """A trading context of about 1.2 KB."""
    return {
        "market": {"trend": "bullish", "volatility": 0.31 + i / 1000, "regime": "risk-on", "session": "EU"},
        "whale_count": 7 + i % 5,
        "sources": [
            {"name": f"source-{k}", "score": round(0.5 + k / 20, 3), "latency_ms": 120 + k} for k in range(12)
        ],
        "portfolio": {"cash": 125000.5, "positions": {"BTC": 1.25, "ETH": 14.2, "SOL": 310.0}},
        "notes": "whale wallets moved to exchanges during the Asian session; funding turned positive",
    }


async def _results(workdir: Path, decisions: int) -> dict[str, tuple[dict[str, Any], Any]]:
    settings = Settings(sqlite_path=workdir / "memory.db", agent_id="market-hunter")  # type: ignore[call-arg]
    server = build_server(settings)
    async with Client(server) as client:
        for i in range(decisions):
            await client.call_tool(
                "log_decision",
                {"decision_type": "SOURCE_SELECTION", "context": _context(i), "reasoning": {"chosen": i % 3}},
            )
        await client.call_tool(
            "store_stm", {"key": "plan", "value": {"steps": ["watch", "hedge"], "size": 0.25}}
        )
        for i in range(5):
            await client.call_tool(
                "publish_signal",
                {"signal_type": "WHALE_ACTIVITY", "data": _context(i)["market"],
                 "target_agents": ["market-hunter"], "confidence": 0.8},
            )  # fmt: skip
        await client.call_tool(
            "store_pattern",
            {"description": "Whales in a bullish trend", "outcomes": {"pump": 0.78}, "confidence": 0.7,
             "success_rate": 0.78, "sample_size": 23,
             "conditions": [{"field": "market.trend", "op": "eq", "value": "bullish"}]},
        )  # fmt: skip
        results = {}
        for name, args in CALLS:
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, result.content)
            results[name] = result.structured_content
    tools = {t.name: t for t in server._tool_manager.list_tools()}
    return {name: (results[name], tools[name].fn_metadata) for name, _ in CALLS}


def _check(validator: Any, result: dict[str, Any]) -> None:
    error = jsonschema_exceptions.best_match(validator.iter_errors(result))
    assert error is None, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--decisions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = asyncio.run(_results(Path(tmp), args.decisions))

    print("| tool | result KB | original µs | flat µs | original µs/KB | flat µs/KB | flat / original |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (result, metadata) in corpus.items():
        flat_schema = metadata.output_schema
        original_schema = FuncMetadata(
            arg_model=metadata.arg_model, output_model=metadata.output_model, wrap_output=metadata.wrap_output
        ).output_schema
        validators = {
            label: validator_for(schema)(schema)
            for label, schema in (("original", original_schema), ("flat", flat_schema))
        }
        times: dict[str, list[float]] = {"original": [], "flat": []}
        for _ in range(args.runs):
            for label, validator in validators.items():
                start = time.perf_counter()
                _check(validator, result)
                times[label].append((time.perf_counter() - start) * 1e6)
        kb = len(json.dumps(result, separators=(",", ":")).encode()) / 1024
        original, flat = statistics.median(times["original"]), statistics.median(times["flat"])
        print(
            f"| {name} | {kb:.1f} | {original:.0f} | {flat:.0f} | {original / kb:.0f} | {flat / kb:.0f} "
            f"| {flat / original:.2f} |"
        )


if __name__ == "__main__":
    main()
