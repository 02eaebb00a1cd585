"""deploy/entrypoint.sh: the tokens secret becomes a private file; JWT-only needs no secret; with
neither the container stops with what to set (never a server that refuses every request)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "entrypoint.sh"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # A stand-in for the installed command: prints what it was started with.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "agent-memory"
    fake.write_text('#!/bin/sh\necho "args=$*"\necho "tokens_file=${AGENT_MEMORY_TOKENS_FILE:-}"\n'
                    'echo "tokens_json=${AGENT_MEMORY_TOKENS_JSON:-}"\n')  # fmt: skip
    fake.chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(
        ["sh", str(ENTRYPOINT)], env={"PATH": path, "TMPDIR": str(tmp_path), **env},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_the_tokens_secret_becomes_a_private_file(tmp_path: Path) -> None:
    secret = json.dumps({"tokens": []})
    done = _run(tmp_path, AGENT_MEMORY_TOKENS_JSON=secret)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert lines["args"] == "serve --transport http" and lines["tokens_json"] == ""  # not passed on
    tokens = Path(lines["tokens_file"])
    assert tokens.read_text() == secret
    assert stat.S_IMODE(os.stat(tokens).st_mode) == 0o600


def test_jwt_only_needs_no_secret_and_neither_is_refused(tmp_path: Path) -> None:
    jwt = _run(tmp_path, AGENT_MEMORY_JWT_ISSUER="https://idp.example.com/")
    assert jwt.returncode == 0 and "tokens_file=\n" in jwt.stdout
    neither = _run(tmp_path)
    assert neither.returncode == 2 and neither.stdout == ""
    assert "AGENT_MEMORY_TOKENS_JSON" in neither.stderr and "AGENT_MEMORY_JWT_ISSUER" in neither.stderr
