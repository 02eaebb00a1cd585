"""Who may call the HTTP transport: bearer tokens from a tokens file, or JWTs from an identity provider.

Tokens file
    A tokens file maps sha256(token) to an agent, a role and optionally an expiry and an audience.
    Only hashes are stored, so the file leaks no usable token. ``agent-memory tokens
    add|list|remove|rotate`` edits it (atomically, mode 0600); a running server re-reads it when it
    changes, so a removed, rotated or expired token stops working without a restart.

JWT (optional)
    For deployments with an identity provider, as the MCP authorization spec describes: a signed JWT
    whose issuer and audience match the settings, verified against a JWKS (a file, re-read when it
    changes, or a URL, cached). The agent id comes from a claim (``sub`` by default), the role from
    another (``role``; ``observer`` or ``agent``, default ``agent``). Only asymmetric algorithms are
    accepted, so a token can never be forged with a public key used as an HMAC secret.

The SDK does not check a token's audience: these verifiers do.

File format (JSON)::

    {"tokens": [{"sha256": "<hex>", "agent_id": "risk-manager", "role": "agent"},
                {"sha256": "<hex>", "agent_id": "dashboard", "role": "observer",
                 "expires_at": "2027-01-01T00:00:00Z",
                 "audience": "https://memory.example.com/mcp"}]}
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from mcp.server.auth.provider import AccessToken
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from agent_memory.config import Settings
from agent_memory.errors import ConfigurationError, InvalidInput, NotFound
from agent_memory.models import AgentId, Timestamp, utcnow

log = logging.getLogger("agent_memory.server.auth")

Role = Literal["agent", "observer"]

RELOAD_CHECK_SECONDS = 1.0
"""How often a running server looks at the tokens file (and a JWKS file) for changes."""


class TokenEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    agent_id: AgentId
    role: Role = "agent"
    audience: str | None = None
    created_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    label: str | None = Field(None, max_length=100, pattern=r"^[\x20-\x7e]*$")

    @property
    def token_id(self) -> str:
        """A short public name for the token (a prefix of its hash): what list shows and what
        remove/rotate take. It cannot be turned back into the token."""
        return self.sha256[:12]

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class TokensFile(BaseModel):
    tokens: list[TokenEntry] = Field(default_factory=list)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> TokensFile:
    try:
        return TokensFile.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"tokens file {path} does not exist: create it with 'agent-memory tokens add' "
            "or point AGENT_MEMORY_TOKENS_FILE at it"
        ) from exc
    except (ValidationError, ValueError) as exc:
        raise ConfigurationError(f"tokens file {path} is not valid: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# lifecycle: add, list, remove, rotate (the CLI's `tokens` subcommands)
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[TokensFile]:
    """The tokens file, read under an exclusive lock for a read-modify-write (two admins running
    `tokens add` at once must not lose a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield load_tokens(path) if path.exists() else TokensFile()
    finally:
        os.close(fd)


def _write(path: Path, tokens: TokensFile) -> None:
    """Write atomically (a running server never reads half a file), readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(tokens.model_dump(mode="json", exclude_none=True), indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _new_token() -> str:
    return "am_" + secrets.token_urlsafe(32)


def add_token(
    path: Path,
    agent_id: str,
    role: Role = "agent",
    *,
    expires_at: datetime | None = None,
    audience: str | None = None,
    label: str | None = None,
    now: datetime | None = None,
) -> str:
    """Create a token for an agent, store its hash, and return the token (shown once)."""
    now = now or utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the expiry is in the past: give a future time or a duration such as 30d")
    token = _new_token()
    entry = TokenEntry(
        sha256=hash_token(token),
        agent_id=agent_id,
        role=role,
        audience=audience,
        created_at=now,
        expires_at=expires_at,
        label=label,
    )
    with _locked(path) as current:
        current.tokens.append(entry)
        _write(path, current)
    return token


def list_tokens(path: Path) -> list[TokenEntry]:
    return load_tokens(path).tokens


def _matching(tokens: Sequence[TokenEntry], token_id: str) -> list[TokenEntry]:
    if len(token_id) < 6 or any(c not in "0123456789abcdef" for c in token_id):
        raise InvalidInput(
            f"token id {token_id[:20]!r} is not valid: pass at least 6 hex characters of an id "
            "that 'agent-memory tokens list' shows"
        )
    found = [t for t in tokens if t.sha256.startswith(token_id)]
    if not found:
        raise NotFound(f"no token with id {token_id!r}: 'agent-memory tokens list' shows the ids")
    if len(found) > 1:
        raise InvalidInput(f"token id {token_id!r} matches {len(found)} tokens: give more characters")
    return found


def remove_tokens(
    path: Path, *, token_id: str | None = None, agent_id: str | None = None
) -> list[TokenEntry]:
    """Remove one token (by id) or every token of an agent; returns what was removed."""
    if (token_id is None) == (agent_id is None):
        raise InvalidInput("name exactly one of a token id or an agent id to remove")
    with _locked(path) as current:
        if token_id is not None:
            gone = _matching(current.tokens, token_id)
        else:
            gone = [t for t in current.tokens if t.agent_id == agent_id]
            if not gone:
                raise NotFound(f"agent {agent_id!r} has no token")
        current.tokens = [t for t in current.tokens if t not in gone]
        _write(path, current)
    return gone


def rotate_token(
    path: Path, token_id: str, *, expires_at: datetime | None = None, now: datetime | None = None
) -> tuple[str, TokenEntry]:
    """Replace a token by a new one for the same agent, role and audience; the old one stops
    working as soon as a server sees the file change. Returns the new token (shown once)."""
    now = now or utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the expiry is in the past: give a future time or a duration such as 30d")
    with _locked(path) as current:
        (old,) = _matching(current.tokens, token_id)
        token = _new_token()
        new = old.model_copy(
            update={"sha256": hash_token(token), "created_at": now, "expires_at": expires_at}
        )
        current.tokens = [new if t is old else t for t in current.tokens]
        _write(path, current)
    return token, new


# --------------------------------------------------------------------------------------------------
# verifiers (the SDK's TokenVerifier protocol)
# --------------------------------------------------------------------------------------------------


class TokenVerifier(Protocol):
    async def verify_token(self, token: str) -> AccessToken | None: ...


def _access(token: str, agent_id: str, role: Role, resource: str, expires_at: datetime | None) -> AccessToken:
    return AccessToken(
        token=token,
        client_id=agent_id,
        scopes=[role],
        resource=resource,
        expires_at=int(expires_at.timestamp()) if expires_at else None,
    )


def _same_resource(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


class _WatchedFile:
    """A file re-parsed when its identity (inode, size, mtime) changes, looked at no more than
    once per ``interval`` seconds."""

    def __init__(self, path: Path, parse: Callable[[Path], Any], interval: float = RELOAD_CHECK_SECONDS):
        self.path = path
        self._parse = parse
        self._interval = interval
        self._checked = -float("inf")
        self._stamp: tuple[int, int, int] | None = None
        self.value: Any = None
        self.error: str | None = None
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._interval:
            return
        self._checked = now
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp == self._stamp and not force:
            return
        self._stamp = stamp
        try:
            self.value = self._parse(self.path)
            self.error = None
        except Exception as exc:
            # Fail closed: a file that cannot be read grants nothing (a broken edit must not keep
            # a removed token alive). Logged on every change so the operator sees why.
            self.value = None
            self.error = str(exc)
            log.error("%s could not be read, so it grants no access until fixed: %s", self.path, exc)


class TokensFileVerifier:
    """Bearer tokens from a tokens file, re-read when it changes; expired entries refused."""

    def __init__(
        self,
        path: Path,
        resource_url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        reload_interval: float = RELOAD_CHECK_SECONDS,
    ) -> None:
        load_tokens(path)  # refuse to start on a missing or broken file
        self._file = _WatchedFile(path, self._index, reload_interval)
        self._resource = resource_url
        self._clock = clock
        # Tokens verified against the file as last read, with their answers: a token is hashed
        # and its principal built once, not per request. Only tokens found in the file enter
        # (at most one per entry, so the cache is bounded by the file); any change to the file
        # empties it, and expiry is checked on every request.
        self._verified: dict[str, tuple[TokenEntry, AccessToken]] = {}
        self._verified_for: object = None

    @staticmethod
    def _index(path: Path) -> dict[str, TokenEntry]:
        return {entry.sha256: entry for entry in load_tokens(path).tokens}

    def _lookup(self, token: str) -> tuple[TokenEntry, AccessToken] | None:
        self._file.refresh()
        table: dict[str, TokenEntry] | None = self._file.value
        if table is not self._verified_for:  # re-read (or now unreadable): verify afresh
            self._verified = {}
            self._verified_for = table
        found = self._verified.get(token)
        if found is not None or not table:
            return found
        entry = table.get(hash_token(token))
        if entry is None:
            return None
        if entry.audience is not None and not _same_resource(entry.audience, self._resource):
            return None
        found = entry, _access(token, entry.agent_id, entry.role, self._resource, entry.expires_at)
        self._verified[token] = found
        return found

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self._lookup(token)
        if found is None:
            return None
        entry, access = found
        if entry.expires_at is not None and entry.expired(self._clock()):
            return None
        return access


ASYMMETRIC_ALGORITHMS = [
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
]


class JwtVerifier:
    """JWTs signed by an identity provider: signature (JWKS), ``exp``/``nbf``, issuer, audience."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        resource_url: str,
        jwks_file: Path | None = None,
        jwks_url: str | None = None,
        agent_claim: str = "sub",
        role_claim: str = "role",
        leeway_s: float = 30.0,
    ) -> None:
        import jwt

        if (jwks_file is None) == (jwks_url is None):
            raise ConfigurationError("the JWT verifier needs exactly one of a JWKS file or a JWKS URL")
        self._issuer = issuer
        self._audience = audience
        self._resource = resource_url
        self._agent_claim = agent_claim
        self._role_claim = role_claim
        self._leeway = leeway_s
        self._jwks_file = _WatchedFile(jwks_file, self._read_jwks) if jwks_file is not None else None
        if self._jwks_file is not None and self._jwks_file.value is None:
            raise ConfigurationError(f"JWKS file {jwks_file} is not valid: {self._jwks_file.error}")
        self._jwks_client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None

    @staticmethod
    def _read_jwks(path: Path) -> Any:
        import jwt

        return jwt.PyJWKSet.from_json(path.read_text())

    def _key_for(self, token: str) -> Any:
        import jwt

        if self._jwks_client is not None:
            return self._jwks_client.get_signing_key_from_jwt(token).key
        assert self._jwks_file is not None
        self._jwks_file.refresh()
        keys = self._jwks_file.value
        if keys is None:
            return None
        kid = jwt.get_unverified_header(token).get("kid")
        for key in keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        return None

    async def verify_token(self, token: str) -> AccessToken | None:
        import jwt

        try:
            # A JWKS URL is fetched with a blocking client: keep it off the event loop.
            key = await asyncio.to_thread(self._key_for, token)
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=ASYMMETRIC_ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", self._agent_claim]},
            )
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            log.info("JWT refused: %s", exc)
            return None
        try:
            agent_id = TypeAdapter(AgentId).validate_python(claims[self._agent_claim])
        except (ValidationError, KeyError):
            log.info("JWT refused: claim %r is not a valid agent id", self._agent_claim)
            return None
        role_value = claims.get(self._role_claim, "agent")
        if role_value not in ("agent", "observer"):
            log.info("JWT refused: claim %r must be 'agent' or 'observer'", self._role_claim)
            return None
        role: Role = "observer" if role_value == "observer" else "agent"
        return AccessToken(
            token=token, client_id=agent_id, scopes=[role], resource=self._resource, expires_at=claims["exp"]
        )


class AnyOf:
    """Accepts a token any of its verifiers accepts (tokens file first, then JWT)."""

    def __init__(self, verifiers: Sequence[TokenVerifier]) -> None:
        self._verifiers = list(verifiers)

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self._verifiers:
            access = await verifier.verify_token(token)
            if access is not None:
                return access
        return None


def verifier_for(settings: Settings, resource_url: str) -> TokenVerifier:
    """The HTTP transport's verifier: the tokens file, a JWT issuer, or both."""
    verifiers: list[TokenVerifier] = []
    if settings.tokens_file is not None:
        verifiers.append(TokensFileVerifier(settings.tokens_file, resource_url))
    if settings.jwt_issuer is not None:
        verifiers.append(
            JwtVerifier(
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience or resource_url,
                resource_url=resource_url,
                jwks_file=settings.jwt_jwks_file,
                jwks_url=settings.jwt_jwks_url,
                agent_claim=settings.jwt_agent_claim,
                role_claim=settings.jwt_role_claim,
            )
        )
    if not verifiers:
        raise ConfigurationError(
            "no token verifier configured: set AGENT_MEMORY_TOKENS_FILE or AGENT_MEMORY_JWT_ISSUER"
        )
    return verifiers[0] if len(verifiers) == 1 else AnyOf(verifiers)


# --------------------------------------------------------------------------------------------------
# the `agent-memory tokens` command
# --------------------------------------------------------------------------------------------------


def _expiry(text: str | None, now: datetime) -> datetime | None:
    """'30d', '12h', '2w' from now, or an ISO 8601 time with a zone."""
    if text is None:
        return None
    from agent_memory.models import parse_window

    if text[-1:] in ("h", "d", "w") and text[:-1].strip().isdigit():
        return now + parse_window(text, max_days=3660)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"--expires {text[:40]!r}: give a duration (30d, 12h, 2w) or a time such as 2027-01-31T00:00:00Z"
        ) from exc
    if when.tzinfo is None:
        raise InvalidInput("--expires: give the time zone too (e.g. a trailing Z for UTC)")
    return when


def tokens_command(
    path: Path,
    action: str,
    *,
    agent_id: str | None = None,
    role: Role = "agent",
    token_id: str | None = None,
    expires: str | None = None,
    label: str | None = None,
    out: Any = None,
    err: Any = None,
) -> int:
    """``agent-memory tokens add|list|remove|rotate``. A new token goes to ``out`` (alone on its line,
    for scripts); everything else to ``err``. Nothing printed holds a usable token but the new one."""
    import sys

    from agent_memory.text import printable

    out = out or sys.stdout
    err = err or sys.stderr
    now = utcnow()
    if action == "add":
        if agent_id is None:
            raise InvalidInput("tokens add needs --agent-id")
        token = add_token(path, agent_id, role, expires_at=_expiry(expires, now), label=label, now=now)
        print(token, file=out)
        until = f", expires {_expiry(expires, now):%Y-%m-%dT%H:%M:%SZ}" if expires else ""
        print(f"token for {agent_id} ({role}{until}) added to {path}; it is shown only once", file=err)
        return 0
    if action == "list":
        rows = list_tokens(path)
        print(f"{'id':<13}{'agent':<26}{'role':<10}{'created':<22}{'expires':<22}label", file=out)
        for t in rows:
            created = f"{t.created_at:%Y-%m-%dT%H:%M:%SZ}" if t.created_at else "-"
            if t.expires_at is None:
                exp = "never"
            else:
                exp = f"{t.expires_at:%Y-%m-%dT%H:%M:%SZ}" + (" (expired)" if t.expired(now) else "")
            print(
                f"{t.token_id:<13}{t.agent_id:<26}{t.role:<10}{created:<22}{exp:<22}"
                + printable(t.label or ""),
                file=out,
            )
        return 0
    if action == "remove":
        gone = remove_tokens(path, token_id=token_id, agent_id=None if token_id else agent_id)
        for t in gone:
            print(f"removed token {t.token_id} of {t.agent_id} ({t.role})", file=err)
        print("running servers stop accepting it within a second of the file changing", file=err)
        return 0
    if action == "rotate":
        if token_id is None:
            raise InvalidInput("tokens rotate needs --token-id (see 'agent-memory tokens list')")
        token, entry = rotate_token(path, token_id, expires_at=_expiry(expires, now), now=now)
        print(token, file=out)
        print(
            f"token {token_id} of {entry.agent_id} replaced by {entry.token_id}; the old one stops working "
            "within a second; the new one is shown only once",
            file=err,
        )
        return 0
    raise InvalidInput(f"unknown tokens action {action!r}: use add, list, remove or rotate")
