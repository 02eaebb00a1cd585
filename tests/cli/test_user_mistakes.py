"""Every user mistake of issue #16 gets one or two lines that say what to do, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.support import cli, refused


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db")}


def test_import_of_a_missing_file(tmp_path: Path, store: dict[str, str]) -> None:
    message = refused(cli("import", "-i", str(tmp_path / "missing.jsonl"), env=store))
    assert "missing.jsonl" in message and "--input" in message and "agent-memory export" in message


def test_import_of_a_file_that_is_not_an_export(tmp_path: Path, store: dict[str, str]) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    message = refused(cli("import", "-i", str(bad), env=store), code=1)
    assert "line 1" in message


def test_export_to_an_unwritable_path(tmp_path: Path, store: dict[str, str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = refused(cli("export", "-o", str(blocker / "memory.jsonl"), env=store))
    assert "--output" in message and str(blocker / "memory.jsonl") in message


@pytest.mark.parametrize("value", ["[https://a.example", '{"a": 1}'])
def test_malformed_allowed_origins_names_the_variable(value: str, store: dict[str, str]) -> None:
    message = refused(cli("export", "-o", "/dev/null", env={**store, "AGENT_MEMORY_ALLOWED_ORIGINS": value}))
    assert "AGENT_MEMORY_ALLOWED_ORIGINS" in message


def test_allowed_origins_accepts_a_comma_separated_list(store: dict[str, str]) -> None:
    env = {**store, "AGENT_MEMORY_ALLOWED_ORIGINS": "https://a.example, https://b.example"}
    assert cli("export", "-o", "/dev/null", env=env).returncode == 0


def test_a_bad_agent_id_is_explained_in_words(store: dict[str, str], tmp_path: Path) -> None:
    message = refused(cli("serve", "--agent-id", "risk manager", env=store))
    assert "--agent-id" in message and "letters, digits" in message and "^[" not in message
    message = refused(cli("serve", env={**store, "AGENT_MEMORY_AGENT_ID": "-x"}))
    assert "AGENT_MEMORY_AGENT_ID" in message and "letters, digits" in message
    message = refused(cli("tokens", "add", "--agent-id", "a b", "--file", str(tmp_path / "t.json")))
    assert "--agent-id" in message and not (tmp_path / "t.json").exists()


def test_port_in_use_names_the_option(tmp_path: Path, store: dict[str, str]) -> None:
    tokens = tmp_path / "tokens.json"
    assert cli("tokens", "add", "--agent-id", "a", "--file", str(tokens)).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(
            "serve", "--transport", "http", "--tokens-file", str(tokens), "--port", str(port), env=store
        )
    message = refused(result)
    assert f"port {port}" in message and "--port" in message and "serving" not in message


def test_a_tokens_file_without_tokens_is_refused_at_start(tmp_path: Path, store: dict[str, str]) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text("{}")
    message = refused(
        cli("serve", "--transport", "http", "--tokens-file", str(tokens), "--port", "0", env=store), 1
    )
    assert "holds no tokens" in message and "agent-memory tokens add" in message


def test_global_options_before_or_after_the_subcommand(tmp_path: Path) -> None:
    db = tmp_path / "flag.db"
    before = cli("--sqlite-path", str(db), "export")
    after = cli("export", "--sqlite-path", str(db))
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert before.stdout == after.stdout and db.exists()
    # A backend given after the subcommand is used (here it asks for the region it needs).
    no_region = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_DEFAULT_REGION", "AWS_REGION", "AGENT_MEMORY_AWS_REGION")
    }
    result = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", "export", "--backend", "dynamodb"],
        env={**no_region, "AWS_CONFIG_FILE": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "region" in refused(result, 1)


def test_a_store_path_given_as_an_option_is_blamed_as_that_option(tmp_path: Path) -> None:
    message = refused(cli("--sqlite-path", str(tmp_path), "export"), code=1)
    assert "--sqlite-path" in message and "AGENT_MEMORY_SQLITE_PATH" not in message
    message = refused(cli("demo", "--store", str(tmp_path), "--cycles", "1"))
    assert "--store" in message and "AGENT_MEMORY_SQLITE_PATH" not in message


def test_a_bad_window_says_the_format(store: dict[str, str]) -> None:
    message = refused(cli("analytics", "--window", "lots", env=store), code=1)
    assert "'24h'" in message


def test_every_option_has_help_text() -> None:
    from agent_memory.cli.parser import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    assert isinstance(subparsers.choices, dict)
    missing = []
    for name, sub in [("", parser), *subparsers.choices.items()]:
        for action in sub._actions:
            if action.dest in ("help", "command", "version"):
                continue
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_tables_status_is_non_zero_while_anything_is_missing(dynamodb_endpoint: str) -> None:
    env = {
        "AGENT_MEMORY_BACKEND": "dynamodb",
        "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "AGENT_MEMORY_AWS_REGION": "us-east-1",
        "AGENT_MEMORY_TABLE_PREFIX": f"st{uuid.uuid4().hex[:6]}_",
    }
    missing = cli("tables", "status", env=env)
    assert missing.returncode == 1 and "agent-memory tables create" in missing.stderr
    assert {json.loads(line)["status"] for line in missing.stdout.splitlines()} == {"MISSING"}
    assert cli("tables", "create", env=env).returncode == 0
    try:
        assert cli("tables", "status", env=env).returncode == 0
    finally:
        assert cli("tables", "delete", "--yes", env=env).returncode == 0
