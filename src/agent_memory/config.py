"""All settings in one pydantic-settings class, read from ``AGENT_MEMORY_*`` environment variables.

Built once in ``main()`` (never at import time) and passed down. Bad values fail at start-up with a
message naming the variable.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent_memory.limits import MAX_SIGNAL_TTL_HOURS


def default_data_dir() -> Path:
    """The user's data directory: ``$XDG_DATA_HOME/agent-memory`` or ``~/.local/share/agent-memory``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agent-memory"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_MEMORY_", extra="ignore", frozen=True)

    # --- backend -------------------------------------------------------------------------------
    backend: Literal["sqlite", "dynamodb"] = Field(
        "sqlite", description="Storage backend: the embedded SQLite store or Amazon DynamoDB."
    )
    sqlite_path: Path = Field(
        default_factory=lambda: default_data_dir() / "memory.db",
        description="Database file of the embedded store (shared safely by several processes).",
    )
    table_prefix: str = Field(
        "", pattern=r"^[A-Za-z0-9_.-]{0,64}$", description="Prefix of the four DynamoDB table names."
    )
    aws_region: str | None = Field(None, description="AWS region for DynamoDB (else the AWS default chain).")
    dynamodb_endpoint_url: str | None = Field(
        None, description="DynamoDB endpoint override (an emulator, or a VPC endpoint)."
    )
    dax_endpoint: str | None = Field(
        None, description="DAX cluster endpoint (dax://...); when set, staleness-tolerant reads use DAX."
    )

    # --- reliability ---------------------------------------------------------------------------
    call_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description=(
            "Overall deadline of one tool call, across storage retries and both backends; past it "
            "the call fails as storage_unreachable (retryable)."
        ),
    )
    sqlite_quick_check_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description=(
            "Time bound of the integrity check (PRAGMA quick_check) when the SQLite store opens; "
            "0 skips it (a malformed-file error still triggers it later)."
        ),
    )

    # --- retention -----------------------------------------------------------------------------
    decision_ttl_days: int = Field(90, ge=1, le=3650, description="Days a decision is kept.")
    signal_ttl_hours: int = Field(
        24, ge=1, le=MAX_SIGNAL_TTL_HOURS, description="Default lifetime of a signal."
    )
    note_max_ttl_minutes: int = Field(
        1440, ge=1, le=1440, description="Longest lifetime of a short-term note (at most 24 h)."
    )
    archive_url: str | None = Field(
        None,
        description=(
            "Where decisions past retention are archived (gzip JSON Lines by agent and day): a folder "
            "or s3://bucket/prefix/. On the embedded store, expired decisions then wait for "
            "`agent-memory archive` instead of being purged."
        ),
    )
    stm_window_hours: int = Field(24, ge=1, le=168, description="What recall_stm calls 'recent'.")

    # --- identity and serving ------------------------------------------------------------------
    agent_id: str = Field(
        "default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="Agent of a stdio server."
    )
    agent_version: str | None = Field(None, max_length=64, description="Version stamped on records.")
    read_only: bool = Field(False, description="Refuse every write tool.")
    schema_profile: Literal["portable", "strict"] = Field(
        "portable",
        description="Published argument schemas: 'portable' (every client), or 'strict' (OpenAI strict "
        "mode: every argument required, free-form objects as JSON text). See docs/SCHEMAS.md.",
    )
    http_host: str = Field("127.0.0.1", description="Bind address of the HTTP transport.")
    http_port: int = Field(8765, ge=0, le=65535, description="Port of the HTTP transport.")
    tokens_file: Path | None = Field(
        None, description="JSON file of bearer tokens (sha256 -> agent id and role) for HTTP."
    )
    public_url: str | None = Field(
        None, description="Public base URL of the HTTP server (audience of its tokens)."
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Origin values accepted by the HTTP transport (JSON list or comma-separated).",
    )

    # --- security (issue 12): identity providers, request bounds, rate limits -----------------
    jwt_issuer: str | None = Field(
        None, description="Accept JWTs from this issuer (needs a JWKS file or URL); off when unset."
    )
    jwt_audience: str | None = Field(
        None, description="Audience a JWT must name (default: the server's resource URL, .../mcp)."
    )
    jwt_jwks_file: Path | None = Field(None, description="JWKS file with the issuer's public keys.")
    jwt_jwks_url: str | None = Field(None, description="JWKS URL with the issuer's public keys.")
    jwt_agent_claim: str = Field("sub", description="JWT claim holding the agent id.")
    jwt_role_claim: str = Field("role", description="JWT claim holding the role (agent or observer).")
    http_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest HTTP request body; larger ones get 413 unread."
    )
    http_max_concurrency: int = Field(
        64, ge=1, description="Connections and requests served at once over HTTP; more get 503."
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a client has to send a request's headers and body."
    )
    http_keep_alive_s: float = Field(5.0, gt=0, description="Seconds an idle HTTP connection is kept.")
    rate_limit_per_minute: int = Field(
        1200, ge=0, description="Tool calls one agent may make per minute (0: no limit)."
    )
    rate_limit_burst: int = Field(120, ge=1, description="Tool calls one agent may make in a burst.")
    # Per-agent storage quotas (memory/quotas.py, docs/SECURITY.md); 0 turns one off. Counting
    # happens while any is on; records written while all were off are not counted.
    quota_decisions: int = Field(
        1_000_000, ge=0, description="Live (unexpired) decisions one agent may hold (0: no limit)."
    )
    quota_notes: int = Field(
        10_000, ge=0, description="Live short-term notes one agent may hold (0: no limit)."
    )
    quota_signals: int = Field(
        100_000, ge=0, description="Live signals one agent may have published (0: no limit)."
    )
    quota_patterns: int = Field(10_000, ge=0, description="Patterns one agent may create (0: no limit).")
    quota_checkpoints: int = Field(
        10_000, ge=0, description="State checkpoints one agent may keep (0: no limit)."
    )
    quota_bytes: int = Field(
        1024**3,
        ge=0,
        description="Bytes of records one agent may hold, measured as DynamoDB sizes items (0: no limit).",
    )

    # --- analytics -----------------------------------------------------------------------------
    emf_metrics: Literal["off", "stdout", "stderr", "file"] = Field(
        "off", description="Emit CloudWatch Embedded Metric Format records (off by default)."
    )
    emf_file: Path | None = Field(None, description="Log file for EMF records when emf_metrics=file.")
    emf_namespace: str = Field("AgentMemory", description="CloudWatch namespace of EMF metrics.")
    price_read_per_million: float = Field(
        0.125, ge=0, description="On-demand USD per million read request units (cost estimates)."
    )
    price_write_per_million: float = Field(
        0.625, ge=0, description="On-demand USD per million write request units (cost estimates)."
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        # Parsed here rather than by pydantic-settings, whose JSON error names no variable.
        if not isinstance(value, str):
            return value
        expected = (
            "AGENT_MEMORY_ALLOWED_ORIGINS must be a JSON list of origins "
            """('["https://a.example"]') or comma-separated origins (https://a.example,https://b.example)"""
        )
        text = value.strip()
        origins: Any
        if text.startswith("["):
            try:
                origins = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{expected}: {exc.msg}") from None
        else:
            origins = [part.strip() for part in text.split(",") if part.strip()]
        for origin in origins if isinstance(origins, list) else []:
            if not isinstance(origin, str) or not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{expected}; {origin!r} is not an origin (scheme://host[:port])")
        return origins

    @field_validator("dax_endpoint")
    @classmethod
    def _dax_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("dax://", "daxs://")):
            raise ValueError("AGENT_MEMORY_DAX_ENDPOINT must start with dax:// or daxs://")
        return value

    @field_validator("archive_url")
    @classmethod
    def _archive_url(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith("s3://"):
            raise ValueError("AGENT_MEMORY_ARCHIVE_URL must be a folder or an s3://bucket/prefix/ URL")
        if value and value.startswith("s3://") and not value.removeprefix("s3://").split("/")[0]:
            raise ValueError("AGENT_MEMORY_ARCHIVE_URL names no bucket: use s3://bucket/prefix/")
        return value or None

    @model_validator(mode="after")
    def _backend_settings(self) -> Settings:
        if self.backend == "sqlite" and self.dax_endpoint:
            raise ValueError(
                "AGENT_MEMORY_DAX_ENDPOINT is set but AGENT_MEMORY_BACKEND is sqlite: "
                "set AGENT_MEMORY_BACKEND=dynamodb to use DAX, or unset the endpoint"
            )
        if self.jwt_issuer and not (self.jwt_jwks_file or self.jwt_jwks_url):
            raise ValueError(
                "AGENT_MEMORY_JWT_ISSUER needs AGENT_MEMORY_JWT_JWKS_FILE or AGENT_MEMORY_JWT_JWKS_URL"
            )
        if (self.jwt_jwks_file or self.jwt_jwks_url) and not self.jwt_issuer:
            raise ValueError("a JWKS is set but AGENT_MEMORY_JWT_ISSUER is not: name the issuer to trust")
        if self.emf_metrics == "file" and self.emf_file is None:
            raise ValueError("AGENT_MEMORY_EMF_METRICS=file needs AGENT_MEMORY_EMF_FILE")
        return self

    def table_name(self, physical: str) -> str:
        return f"{self.table_prefix}{physical}"
