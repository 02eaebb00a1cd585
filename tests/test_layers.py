"""The layer rule, checked on the source: every import of ``agent_memory`` goes down or sideways,
never up (docs/ARCHITECTURE.md draws the map). Imports inside functions count too: a lazy upward
import is still an upward import (``memory/learner.py`` once imported a tool's result model that way).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "agent_memory"

RANK = {
    # the bottom: records, errors, settings, limits and helpers every layer shares
    **dict.fromkeys(
        (
            "",
            "errors",
            "limits",
            "item_rules",
            "models",
            "config",
            "text",
            "deadline",
            "histogram",
            "memo",
            "rollups",
        ),
        0,
    ),
    "api": 1,  # the API as data: imports only the bottom
    "client": 1.5,  # the Python client: the api and the bottom, never the server side
    "storage": 2,
    "memory": 3,  # the domain services
    "tools": 4,
    "analytics": 4,  # report renderers, beside the tools
    "server": 5,
    "cli": 6,
    "demo": 6,
}
"""Rank of each top-level module or package of agent_memory: an import may only reach a rank at
most its own."""

SKIPS_REFUSED = {("tools", "storage")}
"""Downward imports that skip a layer and are refused anyway: tools meet the domain services only."""


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module(path: Path) -> str:
    parts = ["agent_memory", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _submodule_or_package(name: str) -> str:
    is_module = (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()
    return f"agent_memory.{name}" if is_module else "agent_memory"


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Import nodes under ``if TYPE_CHECKING:`` (never executed)."""
    nodes: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                nodes.update(ast.walk(child))
    return nodes


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every executed import of agent_memory."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if node in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "agent_memory":  # from agent_memory import rollups, __version__
                    targets = [_submodule_or_package(a.name) for a in node.names]
                else:
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "agent_memory":
                    found.append((_module(path), target, node.lineno))
    return found


def test_every_module_has_a_layer() -> None:
    layers = {_layer(_module(p)) for p in SRC.rglob("*.py")}
    assert layers <= set(RANK), f"give these a rank: {sorted(layers - set(RANK))}"


def test_no_upward_import() -> None:
    found = imports()
    assert len(found) > 100  # the walk reads the real tree
    upward = [
        f"{importer}:{line} imports {target}"
        for importer, target, line in found
        if RANK[_layer(target)] > RANK[_layer(importer)]
        or (_layer(importer), _layer(target)) in SKIPS_REFUSED
    ]
    assert upward == []


def test_the_rule_catches_an_upward_import() -> None:
    # The check itself can fail: the map ranks the old upward import (learner -> tools) as one.
    assert RANK[_layer("agent_memory.tools.patterns")] > RANK[_layer("agent_memory.memory.learner")]
    assert RANK[_layer("agent_memory.server.app")] > RANK[_layer("agent_memory.client")]
