"""The README's HTTP client (examples/http_client.py) works as shown: a token from
`agent-memory tokens add`, a real `agent-memory serve --transport http`, the example run as a
script."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.support import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "http_client.py"


def test_the_readme_http_client_example_runs(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    added = cli("tokens", "add", "--agent-id", "risk-manager", "--file", str(tokens))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    env = {**os.environ, "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "m.db")}
    server = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", "serve", "--transport", "http", "--port", "0",
         "--tokens-file", str(tokens)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        banner = server.stderr.readline().decode()
        url = re.search(r"(http://\S+/mcp)", banner)
        assert url is not None, banner
        run = subprocess.run(
            [sys.executable, str(EXAMPLE)],
            env={**env, "AGENT_MEMORY_URL": url.group(1), "AGENT_MEMORY_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert re.match(r"logged \S+ as risk-manager\nrecall_stm: 1 recent decision\(s\)\n$", run.stdout), (
            run.stdout
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
