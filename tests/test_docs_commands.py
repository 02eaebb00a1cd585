"""Docs that cannot go stale silently: every `agent-memory` command shown in README.md and docs/
is checked against the CLI's own parser (a synopsis like `analytics [--agent A]` by its
subcommand and option names), and every command of a shell block is run, in order, against a
temporary store (DynamoDB blocks against the emulator), as a reader would paste it."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_memory.cli.parser import build_parser
from tests.fixtures.cli import cli_in_process

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SYNOPSIS = re.compile(r"[\[\]|]|\b(?:NAME|FILE|COMMAND|ID|N)\b|\.\.\.")


@dataclass(frozen=True)
class Shown:
    doc: str
    text: str
    block: int | None
    """Index of the shell block in its document; None for inline code."""


def _shown() -> list[Shown]:
    out: list[Shown] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for n, block in enumerate(re.finditer(r"```(bash|sh|shell|console)\n(.*?)```", text, re.S)):
            code = block.group(2).replace("\\\n", " ")  # a line continued with a backslash is one line
            lines = code.splitlines()
            if block.group(1) == "console":  # a transcript: the commands are the lines after "$ "
                lines = [line[2:] for line in lines if line.startswith("$ ")]
            out += [Shown(doc.name, line.strip(), n) for line in lines if line.strip()]
        for span in re.finditer(r"`(agent-memory [^`]+)`", text):
            out.append(Shown(doc.name, " ".join(span.group(1).split()), None))
    return out


SHOWN = _shown()


def _segments(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at && ; |, comments dropped)."""
    # `VAR=$(command)` runs the command; a trailing `&` only puts it in the background.
    line = re.sub(r"^[A-Z_][A-Z0-9_]*=\$\((.*)\)$", r"\1", line.strip()).removesuffix("&")
    words = shlex.split(line, comments=True)
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", ";", "|", "||"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _agent_memory(command: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """(leading VAR=value assignments, arguments) of an agent-memory command, else None."""
    env: dict[str, str] = {}
    words = list(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] != "agent-memory":
        return None
    return env, words[1:]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _check_synopsis(args: list[str]) -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    words = [w for w in re.split(r"[\s\[\]|]+", " ".join(args)) if w]
    subcommand = words[0]
    if subcommand == "COMMAND":
        return
    assert subcommand in commands, f"no subcommand {subcommand!r}"
    known = {s for a in [*parser._actions, *commands[subcommand]._actions] for s in a.option_strings}
    choices = {c for a in commands[subcommand]._actions if a.choices for c in a.choices}
    for word in words[1:]:
        if word.startswith("-"):
            assert word in known, f"{subcommand} has no option {word}"
        elif word.islower() and word.isalpha() and choices and not SYNOPSIS.search(word):
            assert word in choices or not any(
                a.choices for a in commands[subcommand]._actions if not a.option_strings
            ), word


COMMANDS = [(s, parsed) for s in SHOWN for seg in _segments(s.text) if (parsed := _agent_memory(seg))]


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 20 and {s.doc for s, _ in COMMANDS} >= {"README.md", "DEPLOYMENT.md"}


@pytest.mark.parametrize(("shown", "parsed"), COMMANDS, ids=[f"{s.doc}:{s.text[:60]}" for s, _ in COMMANDS])
def test_command_is_accepted_by_the_cli_parser(
    shown: Shown, parsed: tuple[dict[str, str], list[str]]
) -> None:
    _, args = parsed
    if SYNOPSIS.search(" ".join(args)):
        _check_synopsis(args)
        return
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            build_parser().parse_args(args)
    except SystemExit as exc:
        if exc.code == 0:  # --version, --help
            return
        # Prose may name a command without its required options ("`agent-memory tokens add`");
        # a shell block must show it complete.
        if shown.block is None and "the following arguments are required" in said.getvalue():
            _check_synopsis(args)
            return
        pytest.fail(
            f"{shown.doc}: `{shown.text}` is refused by the CLI's parser (exit {exc.code}): {said.getvalue()}"
        )


# What the docs may tell a reader to install by name: our distribution, and uv (Astral's installer,
# from PyPI), which the README's set-up commands use to install it.
INSTALLABLE = ("agent-team-memory", "uv")


def test_install_commands_name_our_distribution() -> None:
    checked = 0
    for shown in SHOWN:
        for command in _segments(shown.text):
            args = command[2:] if command[:2] == ["pip", "install"] else None
            if command[:3] == ["uv", "pip", "install"]:
                args = command[3:]
            if args is not None:
                checked += 1
                names = [w for w in args if not w.startswith(("-", ".", "/")) and "/" not in w]
                assert all(n.split("[")[0] in INSTALLABLE for n in names), (shown.doc, shown.text)
    assert checked >= 4  # the README's two set-up commands each install twice


def _blocks() -> list[tuple[str, list[list[Shown]]]]:
    by_doc: dict[str, dict[int, list[Shown]]] = {}
    for shown in SHOWN:
        if shown.block is not None:
            by_doc.setdefault(shown.doc, {}).setdefault(shown.block, []).append(shown)
    return [(doc, list(blocks.values())) for doc, blocks in by_doc.items()]


# `serve` runs as a reader runs it, a process of its own, until it listens; every other agent-memory
# command runs in this process through the CLI's own `main` (parser, settings from the environment,
# handler, exit code), which spares a Python start-up (~1 s of CPU) per command. The demo still
# starts its three `serve` processes.
OWN_PROCESS = ("serve",)
LONG_RUNNING = ("serve", "demo")


def _exports_and_commands() -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    """(document, exports so far, command line) of every agent-memory command of a shell block."""
    out = []
    for doc, blocks in _blocks():
        exports: dict[str, str] = {}
        for block in blocks:
            for shown in block:
                for command in _segments(shown.text):
                    if command[0] == "export":
                        exports.update(a.partition("=")[::2] for a in command[1:])
                    elif _agent_memory(command):
                        out.append((doc, tuple(sorted(exports.items())), " ".join(command)))
    return out


def _run_elsewhere() -> dict[tuple[str, tuple[tuple[str, str], ...], str], str]:
    """Long-running commands that an earlier document shows word for word, under the same exported
    settings (docs/FIRST_HOUR.md's transcript repeats the README): run once, for the first
    document; the later one names it. Keyed by (document, exports, command line)."""
    first: dict[tuple[tuple[tuple[str, str], ...], str], str] = {}
    elsewhere = {}
    for doc, exports, line in _exports_and_commands():
        if line.split()[1] not in LONG_RUNNING:
            continue
        ran = first.setdefault((exports, line), doc)
        if ran != doc:
            elsewhere[(doc, exports, line)] = ran
    return elsewhere


RUN_ELSEWHERE = _run_elsewhere()


def test_a_repeated_long_running_command_is_run_by_the_first_document_showing_it() -> None:
    """The rule above leaves out nothing but repeats: each left-out command is run for a document
    that is itself checked, under the same settings."""
    ran = {(exports, line): doc for doc, exports, line in _exports_and_commands()}
    docs = {doc for doc, _ in _blocks()}
    for (doc, exports, line), first in RUN_ELSEWHERE.items():
        assert first in docs and first != doc and (exports, line) in ran


@pytest.mark.parametrize(("doc", "blocks"), _blocks(), ids=[doc for doc, _ in _blocks()])
def test_shell_blocks_run_in_order(
    doc: str,
    blocks: list[list[Shown]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Each document's shell blocks, pasted in order into one shell session: `export` lines set
    the environment, agent-memory commands run (the long-running `serve` until it listens, the
    demo with 2 cycles), other programs (pip, npx, python) are left to CI."""
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "AGENT_MEMORY_SQLITE_PATH": str(tmp_path / "memory.db"),
    }
    exports: dict[str, str] = {}
    ran = 0
    for block in blocks:
        for shown in block:
            for command in _segments(shown.text):
                if command[0] == "export":
                    for assignment in command[1:]:
                        name, _, value = assignment.partition("=")
                        env[name] = exports[name] = value
                    if env.get("AGENT_MEMORY_BACKEND") == "dynamodb":
                        # The docs' region and AWS account become the emulator and a fresh prefix.
                        env.setdefault(
                            "AGENT_MEMORY_DYNAMODB_ENDPOINT_URL", request.getfixturevalue("dynamodb_endpoint")
                        )
                        # The emulator's fake credentials (set by its fixture).
                        env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
                        env["AGENT_MEMORY_TABLE_PREFIX"] = (
                            f"doc{uuid.uuid4().hex[:8]}_{env.get('AGENT_MEMORY_TABLE_PREFIX', '')}"
                        )
                    continue
                parsed = _agent_memory(command)
                if parsed is None:
                    continue
                extra, args = parsed
                if (doc, tuple(sorted(exports.items())), " ".join(command)) in RUN_ELSEWHERE:
                    continue
                if args[0] in OWN_PROCESS:
                    _run(args, {**env, **extra}, tmp_path, shown)
                else:
                    _run_in_process(args, {**env, **extra}, tmp_path, shown)
                ran += 1
    assert ran > 0


def _run_in_process(args: list[str], env: dict[str, str], cwd: Path, shown: Shown) -> None:
    """`agent-memory ARGS` through the CLI's `main`, with the shell session's environment and
    working directory; it must exit 0 without a traceback."""
    if args[0] == "demo":
        args = [*args, "--cycles", "2"]
    result = cli_in_process(args, env=env, cwd=cwd)
    where = f"{shown.doc}: `{shown.text}`"
    assert result.returncode == 0 and "Traceback" not in result.stderr, f"{where}\n{result.stderr}"


def _run(args: list[str], env: dict[str, str], cwd: Path, shown: Shown) -> None:
    """`agent-memory serve ...` in a process of its own, until it says it serves; then Ctrl-C."""
    where = f"{shown.doc}: `{shown.text}`"
    assert args[0] == "serve", f"{where}: only `serve` runs in a process of its own"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", *args, "--port", "0"],
        env=env,
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert "serving MCP" in line or "waits for an MCP client" in line, f"{where}: {line}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _readme_setup_lines() -> list[str]:
    return [s.text for s in SHOWN if s.doc == "README.md" and s.text.startswith("python3 -m venv")]


def _check_other_program(shown: Shown, command: list[str]) -> str:
    """How a shown command that is not `agent-memory` is checked; fails when it is not."""
    program = command[0]
    while "=" in program and program.split("=")[0].isupper():  # VAR=value program ...
        command = command[1:]
        program = command[0]
    if shown.text in _readme_setup_lines():  # the README's two commands, wherever shown
        assert shown.text in CI_RUN, f"`.ci/run` must run the README's command as written: {shown.text}"
        return ".ci/run runs it as written"
    if program in ("python3", ".", "pip", "uv", "cd", "git", "cut", "(cd", "zip") and shown.doc in (
        "FIRST_HOUR.md",
        "DEPLOYMENT.md",
    ):
        # The transcript's set-up (the README's commands, in a clean clone) and the packaging steps;
        # what pip installs is checked by test_install_commands_name_our_distribution.
        return "set-up shown in a transcript or a packaging step"
    if program == "python":
        script = ROOT / command[1]
        assert script.is_file(), f"{shown.doc}: {command[1]} does not exist"
        runners = [
            p for p in (ROOT / "tests").rglob("test_*.py") if command[1] in p.read_text(encoding="utf-8")
        ]
        assert runners, f"{shown.doc}: no test runs {command[1]}"
        return f"run by {runners[0].relative_to(ROOT)}"
    if program == "npx":
        assert re.fullmatch(r"@[\w-]+/[\w-]+@\d+\.\d+\.\d+", command[2]), f"unpinned package: {command[2]}"
        assert "http://127.0.0.1:8765/mcp" in command, "the Inspector must point at the server shown above"
        return "pinned, needs the network (not run)"
    if program in ("docker", "aws"):
        # AWS deployment steps: every file of this repository they name must exist.
        for word in command:
            if word.startswith("deploy/"):
                assert (ROOT / word).is_file(), f"{shown.doc}: {word} does not exist"
        return "AWS step (not run); its files exist"
    pytest.fail(f"{shown.doc}: `{shown.text}` is neither run nor checked by this file; add it here")


OTHER = [(s, c) for s in SHOWN if s.block is not None for c in _segments(s.text) if not _agent_memory(c)]


@pytest.mark.parametrize(("shown", "command"), OTHER, ids=[f"{s.doc}:{' '.join(c)[:50]}" for s, c in OTHER])
def test_every_other_shown_command_is_checked(shown: Shown, command: list[str]) -> None:
    """Commands that are not agent-memory's: each has a stated check (run by CI, a file that must
    exist, a pinned version), so that a new one cannot slip in unchecked."""
    if command[0] == "export":
        return  # run by test_shell_blocks_run_in_order
    _check_other_program(shown, command)


def test_the_readme_has_exactly_two_set_up_commands_and_ci_runs_the_test_one() -> None:
    """A newcomer copies two commands: the demo and the tests (.ci/run runs the latter as written)."""
    setup = _readme_setup_lines()
    assert len(setup) == 2 and setup[0].endswith("agent-memory demo"), setup
    assert setup[1].endswith("python -m pytest") and setup[1] in CI_RUN, setup
