"""The archive of decisions past retention, round trip: archive -> S3 (moto) or a folder ->
import -> identical records. On DynamoDB the archive is fed by synthesised stream records (TTL
deletions, as DynamoDB Streams delivers them to the archive function); on the embedded store by
`agent-memory archive`."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_memory.cli import main
from agent_memory.errors import ConfigurationError, InvalidInput, NotFound
from agent_memory.memory.identity import Caller
from agent_memory.models import Decision, Outcome, utcnow
from agent_memory.storage.archive import FolderLocation, archive_expired, import_archive, location
from agent_memory.storage.dynamodb.codec import to_wire
from agent_memory.storage.dynamodb.stream import lambda_handler
from agent_memory.storage.engine import ItemEngine, Put
from agent_memory.storage.sqlite import SqliteEngine
from tests.fixtures.aws import aws_client
from tests.support import T0, FakeClock, memory_on

HUNTER, RISK = Caller("market-hunter"), Caller("risk-manager")


async def _decisions(engine: ItemEngine, clock: FakeClock) -> dict[str, Decision]:
    """Six decisions of two agents over two days, some with outcomes, numbers of every kind."""
    memory = memory_on(engine, clock)
    made: dict[str, Decision] = {}
    for day in range(2):
        for caller in (HUNTER, RISK):
            for n in range(3 if caller is HUNTER else 1):
                outcome = (
                    Outcome(success=n % 2 == 0, quality_score=0.25 * n, latency_ms=120 + n) if n else None
                )
                decision, _ = await memory.log_decision(
                    caller, "ENTRY", decision_id=f"{caller.agent_id}-{day}-{n}",
                    context={"price": 101.25 + n, "big": 12345678901234567890, "tiny": 1e-9, "tags": ["a", "ü"]},
                    reasoning={"why": "trend"}, outcome=outcome,
                )  # fmt: skip
                made[decision.decision_id] = decision
        clock.advance(days=1)
    return made


def _ttl_removal(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": to_wire({"pk": item["pk"], "sk": item["sk"]}), "OldImage": to_wire(item)},
    }


async def _assert_restored(made: dict[str, Decision], path: Path) -> None:
    async with await SqliteEngine.open(path) as restored:
        memory = memory_on(restored, FakeClock(now=utcnow()))
        for decision_id, original in made.items():
            caller = HUNTER if original.agent_id == HUNTER.agent_id else RISK
            assert await memory.get_decision(caller, decision_id) == original


async def test_stream_archive_to_s3_and_import_back(
    engine: ItemEngine, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await _decisions(engine, FakeClock())
    items = [item async for item in engine.scan("decisions")]
    assert len(items) == 2 * len(made)  # each decision and its id item

    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    s3 = aws_client(moto_endpoint, "s3")
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AGENT_MEMORY_ARCHIVE_URL", f"s3://{bucket}/decisions/")
    user_delete = {**_ttl_removal(items[0]), "userIdentity": None}  # a deletion by a user: not an expiry
    insert = {"eventName": "INSERT", "dynamodb": {"NewImage": to_wire(items[1])}}
    records = [_ttl_removal(item) for item in items] + [user_delete, insert]
    # Two invocations, the second a retry of the first (Lambda delivers at least once).
    first = await asyncio.to_thread(lambda_handler, {"Records": records}, None)
    again = await asyncio.to_thread(lambda_handler, {"Records": records}, None)
    assert first["archived"] == len(items) and again == first

    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(listed) == 4  # two agents x two days, and the retry rewrote the same objects
    days = [(T0 + timedelta(days=n)).strftime("%Y-%m-%d") for n in (0, 1)]
    assert [k.rsplit("/", 1)[0] for k in listed] == [
        f"decisions/agent={agent}/day={day}" for agent in ("market-hunter", "risk-manager") for day in days
    ]
    body = s3.get_object(Bucket=bucket, Key=listed[0])["Body"].read()
    lines = gzip.decompress(body).decode().splitlines()
    assert json.loads(lines[0])["format"] == "agent-memory-export" and len(lines) == 1 + 2 * 3

    restored = tmp_path / "restored.db"
    code = await asyncio.to_thread(
        _cli, "--sqlite-path", str(restored), "import", "-i", f"s3://{bucket}/decisions/"
    )
    assert code == 0
    await _assert_restored(made, restored)


def _cli(*argv: str) -> int:
    try:
        main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    raise AssertionError("the CLI did not exit")


@pytest.mark.parametrize("to", ["folder", "s3"])
async def test_embedded_archive_command_round_trip(
    to: str, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decisions made 100 days ago are past the 90-day retention: `agent-memory archive` writes them,
    deletes them, and `agent-memory import` restores identical records."""
    path = tmp_path / "memory.db"
    if to == "s3":
        bucket = f"archive-{uuid.uuid4().hex[:8]}"
        aws_client(moto_endpoint, "s3").create_bucket(Bucket=bucket)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
        url = f"s3://{bucket}/embedded"
    else:
        url = str(tmp_path / "archive")
    monkeypatch.setenv("AGENT_MEMORY_ARCHIVE_URL", url)
    async with await SqliteEngine.open(path, keep_expired=("decisions",)) as engine:
        made = await _decisions(engine, FakeClock(now=utcnow() - timedelta(days=100)))
        fresh, _ = await memory_on(engine, FakeClock(now=utcnow())).log_decision(
            HUNTER, "ENTRY", decision_id="new"
        )
        # The lazy purge leaves expired decisions for the archive (and still purges other tables).
        await engine.write([Put("state", {"pk": "scratch", "sk": "x", "ttl": 1})])
        await engine.purge_expired(now=utcnow().timestamp())
        assert len([i async for i in engine.scan("decisions")]) == 2 * len(made) + 2
        assert await engine.get("state", "scratch", "x") is None

    assert await asyncio.to_thread(_cli, "--sqlite-path", str(path), "archive") == 0
    async with await SqliteEngine.open(path) as engine:
        remaining = [i async for i in engine.scan("decisions")]
        # only the live decision stays (its record, and its id item, whose id is in its key)
        assert {i.get("decision_id") or i["pk"].rsplit("#", 1)[-1] for i in remaining} == {"new"}
        memory = memory_on(engine, FakeClock(now=utcnow()))
        with pytest.raises(NotFound):
            await memory.get_decision(HUNTER, "market-hunter-0-0")
        assert await memory.get_decision(HUNTER, "new") == fresh
    # Archiving again finds nothing more and writes nothing.
    assert await asyncio.to_thread(_cli, "--sqlite-path", str(path), "archive") == 0

    restored = tmp_path / "restored.db"
    assert await asyncio.to_thread(_cli, "--sqlite-path", str(restored), "import", "-i", url) == 0
    await _assert_restored(made, restored)


async def test_archive_step_is_safe_to_repeat_and_refuses_garbage(tmp_path: Path) -> None:
    folder = FolderLocation(tmp_path / "archive")
    async with await SqliteEngine.open(tmp_path / "m.db", keep_expired=("decisions",)) as engine:
        clock = FakeClock(now=utcnow() - timedelta(days=95))
        made = await _decisions(engine, clock)
        report = await archive_expired(engine, folder, utcnow())
        assert (report.archived, report.deleted, len(report.objects)) == (2 * len(made), 2 * len(made), 4)
        assert (await archive_expired(engine, folder, utcnow())).archived == 0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jsonl.gz").write_bytes(b"not gzip")
    async with await SqliteEngine.open(tmp_path / "r.db") as target:
        with pytest.raises(InvalidInput, match="not a gzip-compressed archive"):
            await import_archive(target, location(str(tmp_path / "bad")), utcnow(), timedelta(days=1))
        with pytest.raises(InvalidInput, match="does not exist"):
            await import_archive(target, location(str(tmp_path / "missing")), utcnow(), timedelta(days=1))
        (tmp_path / "empty").mkdir()
        with pytest.raises(InvalidInput, match="no archive objects"):
            await import_archive(target, location(str(tmp_path / "empty")), utcnow(), timedelta(days=1))


def test_stream_function_refuses_to_drop_what_it_cannot_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    removal = {
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": to_wire({"pk": "agent:a#decision#X", "sk": "s"})},
    }
    monkeypatch.setenv("AGENT_MEMORY_ARCHIVE_URL", "s3://bucket/decisions/")
    # A KEYS_ONLY stream would lose the decision: the function fails (and Lambda retries), loudly.
    with pytest.raises(ConfigurationError, match="OLD_IMAGE"):
        lambda_handler({"Records": [removal]}, None)
    monkeypatch.delenv("AGENT_MEMORY_ARCHIVE_URL")
    with pytest.raises(ConfigurationError, match="AGENT_MEMORY_ARCHIVE_URL"):
        lambda_handler({"Records": []}, None)
