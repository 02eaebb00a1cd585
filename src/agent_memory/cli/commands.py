"""One handler per subcommand: build the settings, call the domain, print the result.

A handler returns the exit code (or a coroutine that does); a user's mistake is raised as
:class:`UsageError` (or a domain error) and printed by ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent_memory.cli.main import UsageError, settings_from


def serve(args: argparse.Namespace) -> int:
    from agent_memory.cli.serve import serve as run

    settings = settings_from(
        args,
        agent_id=args.agent_id,
        read_only=args.read_only,
        http_host=args.host,
        http_port=args.port,
        tokens_file=args.tokens_file,
    )
    if args.workers != 1:
        from agent_memory.errors import ConfigurationError
        from agent_memory.server.workers import check_workers, serve_http

        try:
            check_workers(args.workers, args.transport)
        except ConfigurationError as exc:
            raise UsageError(exc.message) from None
        serve_http(settings, args.workers)
        return 0
    return run(settings, args.transport)


async def tables(args: argparse.Namespace) -> int:
    from agent_memory.storage.dynamodb import create_tables, delete_tables, table_status

    settings = settings_from(args)
    if settings.backend != "dynamodb":
        raise UsageError(
            "tables manages DynamoDB: set AGENT_MEMORY_BACKEND=dynamodb (or add --backend dynamodb)"
        )
    if args.action == "migrate":
        from agent_memory.storage.factory import open_engine
        from agent_memory.storage.layout import migrate_items

        engine = await open_engine(settings)
        try:
            done = await migrate_items(engine)
        finally:
            await engine.close()
        print(json.dumps({"migrated": dict(done), "rewritten": sum(done.values())}))
        return 0
    if args.action == "create":
        statuses = await create_tables(settings)
    elif args.action == "status":
        statuses = await table_status(settings)
    else:
        if not args.yes:
            raise UsageError("deleting the tables deletes all memory; add --yes to confirm")
        await delete_tables(settings)
        statuses = await table_status(settings)
    for status in statuses:
        print(status.model_dump_json())
    if args.action == "delete":
        return 0
    missing = [s.name for s in statuses if s.status != "ACTIVE"]
    if missing:
        print(
            f"agent-memory: not active: {', '.join(missing)}; create them with 'agent-memory tables create'",
            file=sys.stderr,
        )
        return 1
    return 0


async def export(args: argparse.Namespace) -> int:
    from agent_memory.storage.factory import open_engine
    from agent_memory.storage.transfer import export_to

    settings = settings_from(args)
    out = None
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            out = args.output.open("w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write {args.output} ({exc.strerror}): give --output/-o a file in a folder "
                "you can write to, or leave it out to write to stdout"
            ) from None
    engine = await open_engine(settings)
    try:
        count = await export_to(engine, out or sys.stdout)
    finally:
        await engine.close()
        if out is not None:
            out.close()
    print(f"agent-memory: exported {count} items", file=sys.stderr)
    return 0


async def import_(args: argparse.Namespace) -> int:
    from agent_memory.models import utcnow
    from agent_memory.storage.archive import import_archive_command, is_archive
    from agent_memory.storage.factory import open_engine
    from agent_memory.storage.transfer import import_from

    settings = settings_from(args)
    if is_archive(args.input):
        if args.dry_run:
            raise UsageError("--dry-run applies to export files, not to archives")
        count = await import_archive_command(settings, args.input, utcnow(), args.keep_days)
        print(f"agent-memory: restored {count} archived items", file=sys.stderr)
        return 0
    args.input = Path(args.input)
    try:
        with args.input.open(encoding="utf-8") as lines:
            text = lines.read()
    except FileNotFoundError:
        raise UsageError(
            f"no file {args.input}: give --input/-i the path of a file written by 'agent-memory export'"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UsageError(f"cannot read {args.input} ({reason}): give --input/-i an export file") from None
    engine = await open_engine(settings)
    try:
        report = await import_from(engine, text.splitlines(), dry_run=args.dry_run)
    finally:
        await engine.close()
    lines = report.lines()
    prefix = "dry run, nothing written: " if args.dry_run else "imported: "
    print(f"agent-memory: {prefix}{lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(line, file=sys.stderr)
    return 0


async def archive(args: argparse.Namespace) -> int:
    from agent_memory.models import utcnow
    from agent_memory.storage.archive import archive_command

    report = await archive_command(settings_from(args), args.to, utcnow())
    print(
        f"agent-memory: archived {report.archived} items in {len(report.objects)} objects, "
        f"deleted {report.deleted}",
        file=sys.stderr,
    )
    return 0


async def consolidate(args: argparse.Namespace) -> int:
    from agent_memory.cli.progress import ProgressBar
    from agent_memory.memory.learner import consolidate as learn
    from agent_memory.models import parse_window, utcnow
    from agent_memory.storage.factory import open_store

    settings = settings_from(args)
    window = parse_window(args.window)
    if args.min_samples < 1:
        raise UsageError("--min-samples must be at least 1")
    with ProgressBar() as bar:
        async with open_store(settings) as store:
            summary = await learn(
                store,
                settings,
                utcnow,
                agents=args.agent,
                window=window,
                decision_type=args.decision_type,
                min_samples=args.min_samples,
                progress=bar.update,
            )
    print(json.dumps(summary, indent=2))
    # Every agent was attempted; a non-zero status tells a scheduler that some failed.
    return 1 if summary.get("failed") else 0


async def analytics(args: argparse.Namespace) -> int:
    from agent_memory.cli.analytics import analytics_command
    from agent_memory.models import parse_window

    settings = settings_from(args)
    text = await analytics_command(
        settings,
        agent=args.agent,
        window=parse_window(args.window),
        fmt=args.format,
        output=args.output,
        all_agents=args.agent is None,
    )
    if args.output is None or args.format != "html":
        print(text)
    else:
        print(f"agent-memory: report written to {args.output}", file=sys.stderr)
    return 0


def tokens(args: argparse.Namespace) -> int:
    from agent_memory.server.auth import tokens_command

    settings = settings_from(args)
    path = args.file or settings.tokens_file
    if path is None:
        raise UsageError("give --file or set AGENT_MEMORY_TOKENS_FILE")
    if args.action == "add" and args.agent_id is None:
        raise UsageError("tokens add needs --agent-id: the agent the token acts as")
    if args.agent_id is not None:
        settings_from(args, agent_id=args.agent_id)  # the same rule as every agent id, in words
    return tokens_command(
        path,
        args.action,
        agent_id=args.agent_id,
        role=args.role,
        token_id=args.token_id,
        expires=args.expires,
        label=args.label,
    )


def claude_config(args: argparse.Namespace) -> int:
    from agent_memory.cli.claude import claude_config as run

    for agent in args.agent_id:
        settings_from(args, agent_id=agent)  # refuse a bad id before writing anything
    explicit = {
        name
        for name in ("backend", "sqlite_path")
        if getattr(args, name) is not None or os.environ.get(f"AGENT_MEMORY_{name.upper()}")
    }
    return run(
        args.agent_id,
        merge=args.merge,
        config_file=args.config_file,
        settings=settings_from(args),
        explicit=explicit,
    )


async def demo(args: argparse.Namespace) -> int:
    from agent_memory.demo import run_demo

    store, origin = _demo_store(args)
    settings = settings_from(args, sqlite_path=store) if store is not None else settings_from(args)
    return await run_demo(settings, store_origin=origin, cycles=args.cycles, seed=args.seed)


def _demo_store(args: argparse.Namespace) -> tuple[Path | None, str]:
    """Which embedded store file the demo uses, and the option or variable that chose it."""
    if args.store is not None:
        return args.store, "--store"
    if args.sqlite_path is not None:
        return args.sqlite_path, "--sqlite-path"
    if os.environ.get("AGENT_MEMORY_SQLITE_PATH"):
        return None, "AGENT_MEMORY_SQLITE_PATH"
    from agent_memory.demo import default_store

    return default_store(), "the demo's default"


def iam(args: argparse.Namespace) -> int:
    """Print the generated policy (storage/dynamodb/iam.py): the one the template attaches to the
    server, or one agent's (docs/DEPLOYMENT.md#least-privilege)."""
    import re

    from agent_memory.storage.dynamodb.iam import agent_policy, server_policy

    prefix = args.table_prefix if args.table_prefix is not None else settings_from(args).table_prefix
    if not re.fullmatch(r"[A-Za-z0-9_.-]{0,64}", prefix):
        raise UsageError(
            f"--table-prefix {prefix!r} is not a table name prefix: "
            "use at most 64 letters, digits, '_', '.' or '-'"
        )
    for flag, value, pattern in (
        ("--region", args.region, r"\*|[a-z]{2}(-[a-z]+)+-\d"),
        ("--account", args.account, r"\*|\d{12}"),
    ):
        if not re.fullmatch(pattern, value):
            example = "eu-west-1" if flag == "--region" else "123456789012"
            raise UsageError(f"{flag} {value!r} is not valid: give one like {example}, or * for any")
    if args.server:
        policy = server_policy(prefix, args.region, args.account)
    else:
        try:
            policy = agent_policy(args.agent_id, prefix, args.region, args.account)
        except ValueError as exc:
            raise UsageError(f"--agent-id: {exc}") from None
    print(json.dumps(policy, indent=2))
    return 0


Handler = Callable[[argparse.Namespace], int | Awaitable[int]]

HANDLERS: dict[str, Handler] = {
    "serve": serve,
    "tables": tables,
    "export": export,
    "import": import_,
    "archive": archive,
    "consolidate": consolidate,
    "analytics": analytics,
    "tokens": tokens,
    "iam": iam,
    "claude-config": claude_config,
    "demo": demo,
}
