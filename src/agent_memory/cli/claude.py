"""``agent-memory claude-config``: a Claude Desktop entry per agent that launches this installed
server by its absolute path (a desktop app does not see a virtualenv's PATH), printed or merged
into the OS's config file after a backup."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from agent_memory.cli.main import UsageError
from agent_memory.config import Settings

CONFIG_NAME = "claude_desktop_config.json"


def config_path(platform: str | None = None) -> Path:
    """Where Claude Desktop reads its configuration on this OS."""
    platform = platform or sys.platform
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Claude" / CONFIG_NAME
    if platform.startswith("win"):
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
        return base / "Claude" / CONFIG_NAME
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "Claude" / CONFIG_NAME


def server_command() -> list[str]:
    """The installed ``agent-memory`` command, absolute; else this interpreter running the module."""
    scripts = Path(sys.executable).parent
    for name in ("agent-memory", "agent-memory.exe"):
        if (scripts / name).is_file():
            return [str((scripts / name).absolute())]
    found = shutil.which("agent-memory")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "agent_memory.cli"]


def entries(agents: list[str], settings_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    command, *prefix = server_command()
    return {
        f"memory-{agent}": {
            "command": command,
            "args": [*prefix, "serve"],
            "env": {"AGENT_MEMORY_AGENT_ID": agent, **settings_env},
        }
        for agent in agents
    }


def _settings_env(settings: Settings, explicit: set[str]) -> dict[str, str]:
    """The store settings the user chose explicitly, made absolute (Claude Desktop expands no
    '~' or variables); the default store needs none: every entry then shares the default file."""
    env: dict[str, str] = {}
    if "backend" in explicit:
        env["AGENT_MEMORY_BACKEND"] = settings.backend
    if "sqlite_path" in explicit:
        env["AGENT_MEMORY_SQLITE_PATH"] = str(settings.sqlite_path.expanduser().absolute())
    return env


def claude_config(
    agents: list[str], *, merge: bool, config_file: Path | None, settings: Settings, explicit: set[str]
) -> int:
    servers = entries(list(dict.fromkeys(agents)), _settings_env(settings, explicit))
    target = config_file or config_path()
    if not merge:
        print(json.dumps({"mcpServers": servers}, indent=2))
        print(
            f"agent-memory: merge this into {target} (or run again with --merge), then restart "
            "Claude Desktop",
            file=sys.stderr,
        )
        return 0
    current: dict[str, Any] = {}
    backup: Path | None = None
    if target.exists():
        try:
            current = json.loads(target.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"cannot read {target} as JSON ({exc}): fix or move it, then run again; nothing was changed"
            ) from None
        if not isinstance(current, dict) or not isinstance(current.get("mcpServers", {}), dict):
            raise UsageError(
                f"{target} does not hold a JSON object with an mcpServers object; nothing was changed"
            )
        backup = target.with_name(f"{target.name}.bak-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(target, backup)
    merged = dict(current.get("mcpServers", {}))
    replaced = [name for name in servers if name in merged]
    merged.update(servers)
    current["mcpServers"] = merged
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        partial.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        raise UsageError(
            f"cannot write {target} ({exc.strerror}); give --config-file a writable path"
        ) from None
    added = [name for name in servers if name not in replaced]
    done = ", ".join([*(f"added {n}" for n in added), *(f"replaced {n}" for n in replaced)])
    saved = f" (backup: {backup})" if backup else ""
    print(f"agent-memory: {done} in {target}{saved}; restart Claude Desktop to use them", file=sys.stderr)
    return 0
