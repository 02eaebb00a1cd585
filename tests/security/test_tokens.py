"""Token lifecycle (issue #12: tokens were read once at start-up; no way to remove one without a
restart, no expiry, no list) and the optional JWT verifier, over the real HTTP transport."""

from __future__ import annotations

import base64
import http.server
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent_memory.server.auth import TokensFileVerifier, add_token, hash_token, list_tokens
from tests.fixtures.cli import cli_in_process
from tests.security.conftest import (
    HONEST,
    Server,
    assert_unharmed,
    connect,
    honest_snapshots,
    seed_honest,
    snapshot,
)
from tests.support import FakeClock

LIST_BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def _status(url: str, token: str) -> int:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            url, json=LIST_BODY, headers={**HEADERS, "Authorization": f"Bearer {token}"}
        )
        return response.status_code


async def _until_status(url: str, token: str, expected: int, within_s: float = 10.0) -> None:
    """The server re-reads the tokens file about once a second: wait (bounded) for the change."""
    deadline = time.monotonic() + within_s
    while True:
        status = await _status(url, token)
        if status == expected or time.monotonic() > deadline:
            assert status == expected
            return
        await _sleep(0.1)


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`agent-memory tokens ARGS` through the CLI's main, in this process (tests/fixtures/cli.py):
    the subject is what the running server does when the file changes."""
    return cli_in_process(["tokens", *args], env=dict(os.environ))


async def test_tokens_are_listed_removed_and_rotated_without_a_restart(server: Server) -> None:
    path = server.tokens_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with server.team() as team:
        await seed_honest(team)
        before = {name: await snapshot(team[name]) for name in HONEST}

    listed = _cli("list", "--file", str(path))
    assert listed.returncode == 0, listed.stderr
    for name in server.tokens:
        assert name in listed.stdout
    for token in server.tokens.values():  # list never shows a token, nor a whole hash
        assert token not in listed.stdout and hash_token(token) not in listed.stdout

    # Remove mallory's token: the running server refuses it once it sees the file change.
    mallory_id = hash_token(server.tokens["mallory"])[:12]
    removed = _cli("remove", "--file", str(path), "--token-id", mallory_id)
    assert removed.returncode == 0, removed.stderr
    await _until_status(server.url, server.tokens["mallory"], 401)
    assert await _status(server.url, server.tokens["market-hunter"]) == 200

    # Rotate the hunter's token: the new one works, the old one stops.
    old = server.tokens["market-hunter"]
    rotated = _cli("rotate", "--file", str(path), "--token-id", hash_token(old)[:12])
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("am_") and new != old
    await _until_status(server.url, old, 401)
    assert await _status(server.url, new) == 200
    async with connect(server.url, new) as hunter:
        # Same agent, same memory.
        assert await snapshot(hunter) == before["market-hunter"]

    # Add: a new token works at once, without a restart.
    added = _cli("add", "--file", str(path), "--agent-id", "newcomer", "--expires", "30d")
    assert added.returncode == 0, added.stderr
    await _until_status(server.url, added.stdout.strip(), 200)
    entry = next(t for t in list_tokens(path) if t.agent_id == "newcomer")
    assert entry.expires_at is not None and entry.expires_at > datetime.now(UTC) + timedelta(days=29)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_an_expired_token_is_refused(server: Server) -> None:
    async with server.team() as team:
        await seed_honest(team)
        before = await honest_snapshots(team)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    expired = add_token(
        server.tokens_file, "mallory", "agent", expires_at=long_ago + timedelta(hours=1), now=long_ago
    )
    await _until_status(server.url, expired, 401)
    assert await _status(server.url, server.tokens["mallory"]) == 200
    async with server.team() as team:
        await assert_unharmed(team, before)


async def test_expiry_boundary_with_a_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "tokens.json"
    token = add_token(path, "a", "agent", expires_at=clock.now + timedelta(hours=1), now=clock.now)
    verifier = TokensFileVerifier(path, "http://127.0.0.1:1/mcp", clock=clock, reload_interval=0)
    assert (await verifier.verify_token(token)) is not None
    clock.advance(minutes=59)
    assert (await verifier.verify_token(token)) is not None
    clock.advance(minutes=2)
    assert (await verifier.verify_token(token)) is None


async def test_a_broken_tokens_file_grants_nothing(server: Server) -> None:
    """Fail closed: a file that does not parse must not keep removed tokens alive."""
    token = server.tokens["market-hunter"]
    assert await _status(server.url, token) == 200
    server.tokens_file.write_text("{not json")
    await _until_status(server.url, token, 401)


# --------------------------------------------------------------------------------------------------
# JWT
# --------------------------------------------------------------------------------------------------

ISSUER = "https://idp.example.test"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: rsa.RSAPrivateKey, kid: str = "k1") -> dict[str, Any]:
    pub = key.public_key().public_numbers()
    return {
        "keys": [{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": _b64(pub.n), "e": _b64(pub.e)}]
    }


def _jwt(
    key: Any, *, sub: str = "jwt-agent", aud: str, iss: str = ISSUER, exp_in: int = 300, **claims: Any
) -> str:
    now = int(time.time())
    payload = {"sub": sub, "aud": aud, "iss": iss, "iat": now, "exp": now + exp_in, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    body = json.dumps(_jwks(signing_key)).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("source", ["file", "url"])
async def test_jwt_from_an_identity_provider(
    launch: Any, signing_key: rsa.RSAPrivateKey, tmp_path: Path, source: str, request: pytest.FixtureRequest
) -> None:
    if source == "file":
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps(_jwks(signing_key)))
        env = {"AGENT_MEMORY_JWT_JWKS_FILE": str(jwks_file)}
    else:
        env = {"AGENT_MEMORY_JWT_JWKS_URL": request.getfixturevalue("jwks_url")}
    server: Server = launch(AGENT_MEMORY_JWT_ISSUER=ISSUER, **env)
    audience = server.url
    good = _jwt(signing_key, aud=audience)
    async with connect(server.url, good) as agent:
        logged = await agent.ok("log_decision", decision_type="TRADE")
        whole = await agent.resource(f"memory://decisions/{logged['decision_id']}")
        assert whole["agent_id"] == "jwt-agent"
    observer = _jwt(signing_key, sub="jwt-dash", aud=audience, role="observer")
    async with connect(server.url, observer) as dash:
        assert "observer role is read-only" in await dash.error("log_decision", decision_type="TRADE")
        seen = await dash.ok("search_decisions", agent_id="jwt-agent")
        assert len(seen["decisions"]) == 1

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    refused = {
        "wrong audience": _jwt(signing_key, aud="https://elsewhere.example/mcp"),
        "wrong issuer": _jwt(signing_key, aud=audience, iss="https://evil.example"),
        "expired": _jwt(signing_key, aud=audience, exp_in=-3600),
        "unknown key": _jwt(other_key, aud=audience),
        "agent id with a newline": _jwt(signing_key, aud=audience, sub="evil\n"),
        "unknown role": _jwt(signing_key, aud=audience, role="admin"),
        # The public key used as an HMAC secret: refused (asymmetric algorithms only).
        "HS256 with the public key": _hs256_with(public_pem, audience),
        "alg none": jwt.encode(
            {"sub": "x", "aud": audience, "iss": ISSUER, "exp": int(time.time()) + 60},
            None,  # type: ignore[arg-type]  # the attack: no key at all
            algorithm="none",
        ),
    }
    for why, token in refused.items():
        assert await _status(server.url, token) == 401, why


def _hs256_with(secret: bytes, audience: str) -> str:
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()
    ).rstrip(b"=")
    now = int(time.time())
    claims = {"sub": "forged", "aud": audience, "iss": ISSUER, "exp": now + 60}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signature = hmac.new(secret, header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()
