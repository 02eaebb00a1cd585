"""Bearer tokens for the HTTP transport: a tokens file maps sha256(token) to an agent and a role.

Only hashes are stored, so the file leaks no usable token. The SDK does not check a token's
audience; this verifier does, when an entry names one.

File format (JSON)::

    {"tokens": [{"sha256": "<hex>", "agent_id": "risk-manager", "role": "agent"},
                {"sha256": "<hex>", "agent_id": "dashboard", "role": "observer",
                 "audience": "https://memory.example.com/mcp"}]}
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Literal

from mcp.server.auth.provider import AccessToken
from pydantic import BaseModel, Field, ValidationError

from agent_memory.errors import ConfigurationError
from agent_memory.models import AgentId


class TokenEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    agent_id: AgentId
    role: Literal["agent", "observer"] = "agent"
    audience: str | None = None


class TokensFile(BaseModel):
    tokens: list[TokenEntry] = Field(default_factory=list)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> TokensFile:
    try:
        return TokensFile.model_validate_json(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"tokens file {path} does not exist: create it with 'agent-memory tokens add' "
            "or point AGENT_MEMORY_TOKENS_FILE at it"
        ) from exc
    except (ValidationError, ValueError) as exc:
        raise ConfigurationError(f"tokens file {path} is not valid: {exc}") from exc


def add_token(path: Path, agent_id: str, role: Literal["agent", "observer"]) -> str:
    """Create a token for an agent, store its hash, and return the token (shown once)."""
    current = load_tokens(path) if path.exists() else TokensFile()
    token = "am_" + secrets.token_urlsafe(32)
    current.tokens.append(TokenEntry(sha256=hash_token(token), agent_id=agent_id, role=role))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current.model_dump(exclude_none=True), indent=2) + "\n")
    path.chmod(0o600)
    return token


class TokensFileVerifier:
    """Implements the SDK's TokenVerifier protocol over a tokens file (read once at start-up)."""

    def __init__(self, tokens: TokensFile, resource_url: str) -> None:
        self._by_hash = {entry.sha256: entry for entry in tokens.tokens}
        self._resource = resource_url

    async def verify_token(self, token: str) -> AccessToken | None:
        entry = self._by_hash.get(hash_token(token))
        if entry is None:
            return None
        if entry.audience is not None and entry.audience.rstrip("/") != self._resource.rstrip("/"):
            return None
        return AccessToken(
            token=token, client_id=entry.agent_id, scopes=[entry.role], resource=self._resource
        )
