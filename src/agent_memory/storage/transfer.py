"""Export and import a whole memory as JSON Lines, between any two backends, losslessly.

The transfer works on items (the key design is the same on every backend), so every record,
version history, checkpoint, rollup and inbox entry moves as it is, ``ttl`` included. Lines are
sorted by table and key, and numbers are written in canonical form (an integral number as an
integer: DynamoDB does not distinguish 1 from 1.0), so exporting the same memory from two backends
gives byte-identical files.

Line format: ``{"table": "decisions", "item": {...}}``; the first line is a header
``{"format": "agent-memory-export", "version": 1}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import IO, Any

from agent_memory.errors import InvalidInput
from agent_memory.storage.engine import TABLES, ItemEngine, Put, TableName

FORMAT = "agent-memory-export"
VERSION = 1


def canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


HEADER = json.dumps({"format": FORMAT, "version": VERSION})


def item_line(table: TableName, item: dict[str, Any]) -> str:
    return json.dumps({"table": table, "item": canonical(item)}, sort_keys=True, ensure_ascii=False)


async def export_lines(engine: ItemEngine) -> AsyncIterator[str]:
    yield HEADER
    for table in TABLES:
        items = [item async for item in engine.scan(table)]
        items.sort(key=lambda item: (item["pk"], item["sk"]))
        for item in items:
            yield item_line(table, item)


async def export_to(engine: ItemEngine, out: IO[str]) -> int:
    count = -1
    async for line in export_lines(engine):
        out.write(line + "\n")
        count += 1
    return count


def parse_lines(lines: Iterable[str]) -> Iterable[tuple[TableName, dict[str, Any]]]:
    header_seen = False
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number} is not JSON: {exc.msg}") from exc
        if not header_seen:
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise InvalidInput(f"not an {FORMAT} v{VERSION} file (line 1 must be its header)")
            header_seen = True
            continue
        table, item = data.get("table"), data.get("item")
        if table not in TABLES or not isinstance(item, dict) or "pk" not in item or "sk" not in item:
            raise InvalidInput(
                f"line {number}: expected {{'table': one of {list(TABLES)}, 'item': {{pk, sk, ...}}}}"
            )
        yield table, item


async def import_from(engine: ItemEngine, lines: Iterable[str], *, concurrency: int = 16) -> int:
    """Write every item (overwriting items with the same key: importing twice is harmless).

    The whole file is validated before anything is written.
    """
    records = list(parse_lines(lines))
    gate = asyncio.Semaphore(concurrency)

    async def put(table: TableName, item: dict[str, Any]) -> None:
        async with gate:
            await engine.write([Put(table, item)])

    await asyncio.gather(*(put(t, i) for t, i in records))
    return len(records)
