"""``main()``: parse, configure logging, run one subcommand, and turn every user mistake into a
short message and an exit code (2: fix the command or the settings; 1: the operation failed)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from agent_memory.cli.parser import PROG, build_parser
from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError


class UsageError(Exception):
    """A mistake in the command line itself: printed as is, exit code 2."""


# The option that sets each setting, where one does: a bad value given as an option is reported
# under the option's name, not the variable's.
FLAGS = {
    "backend": "--backend",
    "sqlite_path": "--sqlite-path",
    "agent_id": "--agent-id",
    "read_only": "--read-only",
    "http_host": "--host",
    "http_port": "--port",
    "tokens_file": "--tokens-file",
}


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, overridden by the global options and ``overrides``."""
    given = {k: v for k, v in {"backend": args.backend, "sqlite_path": args.sqlite_path, **overrides}.items()}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise UsageError(f"invalid settings: {describe_settings_error(exc, set(given))}") from None


# What a pattern-checked setting accepts, in words (a regex tells a user nothing).
_PATTERN_WORDS = {
    "agent_id": "1 to 64 characters: letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
    "table_prefix": "at most 64 characters: letters, digits, '_', '.' or '-'",
}


def describe_settings_error(exc: ValidationError, from_options: set[str] | None = None) -> str:
    """Each error in words, under the option that set the value, else its variable."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        variable = f"AGENT_MEMORY_{field.upper()}"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch" and field in _PATTERN_WORDS:
            msg = f"{err.get('input')!r} is not valid: use {_PATTERN_WORDS[field]}"
        if from_options and field in from_options and field in FLAGS:
            parts.append(f"{FLAGS[field]}: {msg.replace(variable, FLAGS[field])}")
        elif variable in msg:  # the validator already names it
            parts.append(msg)
        else:
            parts.append(f"{variable}: {msg}")
    return "; ".join(parts)


def _sole_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return group


def fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # The level is the stderr handler's, not only the root logger's: the server's own loggers pass
    # every record on (a client may ask for them with logging/setLevel) and stderr stays quiet.
    level = logging.DEBUG if args.verbose else logging.WARNING
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(level)
    logging.basicConfig(
        level=level, handlers=[stderr], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        try:
            code = dispatch(args)
        except BaseExceptionGroup as group:
            # The server's task groups wrap a start-up failure (e.g. an unusable store): report the
            # cause, not the group, when there is a single one.
            raise _sole_cause(group) from None
    except UsageError as exc:
        fail(str(exc))
        code = 2
    except ValidationError as exc:
        fail(f"invalid settings: {describe_settings_error(exc)}")
        code = 2
    except SettingsError as exc:
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"AGENT_MEMORY_{field.group(1).upper()}" if field else "an AGENT_MEMORY_* variable"
        fail(f"invalid settings: {name} cannot be parsed ({exc.__cause__ or exc})")
        code = 2
    except AgentMemoryError as exc:
        fail(_blame(args, exc.message))
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        # Not a mistake we foresaw: still no traceback unless asked for (-v), but enough to report.
        if args.verbose:
            raise
        fail(f"unexpected error: {type(exc).__name__}: {exc} (run again with -v for the details)")
        code = 1
    sys.exit(code)


def _blame(args: argparse.Namespace, message: str) -> str:
    """Name the option the user typed, not the variable it overrides (the store's own messages
    name the variable)."""
    flag = None
    if args.command == "demo" and getattr(args, "store", None) is not None:
        flag = "--store"
    elif args.sqlite_path is not None:
        flag = "--sqlite-path"
    return message.replace("AGENT_MEMORY_SQLITE_PATH", flag) if flag else message


def dispatch(args: argparse.Namespace) -> int:
    from agent_memory.cli import commands

    handler = commands.HANDLERS[args.command]
    result = handler(args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    assert isinstance(result, int)
    return result
