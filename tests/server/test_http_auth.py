"""The tokens-file verifier remembers the tokens it verified (no hashing nor principal built per
request), and forgets them as soon as the file changes: the memory never outlives a removal, a
rotation or an expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from agent_memory.server.auth import TokensFileVerifier, add_token, hash_token, remove_tokens, rotate_token
from tests.support import FakeClock

RESOURCE = "http://127.0.0.1:1/mcp"


async def test_a_verified_token_stops_working_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    hunter = add_token(path, "market-hunter", "agent")
    risk = add_token(path, "risk-manager", "observer")
    verifier = TokensFileVerifier(path, RESOURCE, reload_interval=0)
    for _ in range(3):  # verified once, then answered from memory, alike each time
        access = await verifier.verify_token(hunter)
        assert access is not None and access.client_id == "market-hunter" and access.scopes == ["agent"]
    observer = await verifier.verify_token(risk)
    assert observer is not None and observer.scopes == ["observer"]

    new, _ = rotate_token(path, hash_token(hunter)[:12])
    assert await verifier.verify_token(hunter) is None
    renewed = await verifier.verify_token(new)
    assert renewed is not None and renewed.client_id == "market-hunter"

    remove_tokens(path, agent_id="risk-manager")
    assert await verifier.verify_token(risk) is None
    path.write_text("{not json")  # unreadable: nothing verified before still passes
    assert await verifier.verify_token(new) is None


async def test_a_remembered_token_still_expires_and_others_are_not_remembered(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "tokens.json"
    token = add_token(path, "a", "agent", expires_at=clock.now + timedelta(hours=1), now=clock.now)
    elsewhere = add_token(path, "b", "agent", audience="https://other.example.com/mcp", now=clock.now)
    verifier = TokensFileVerifier(path, RESOURCE, clock=clock, reload_interval=0)
    assert await verifier.verify_token(token) is not None
    clock.advance(minutes=61)
    assert await verifier.verify_token(token) is None
    for _ in range(2):  # a token for another server is refused every time, and unknown ones too
        assert await verifier.verify_token(elsewhere) is None
        assert await verifier.verify_token("am_" + "x" * 43) is None
