"""The ``agent-memory`` command: serve, tables, export/import, consolidate, analytics, tokens, demo.

Logs go to stderr: over stdio the protocol owns stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent_memory import __version__
from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError
from agent_memory.models import utcnow


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-memory", description="A memory for LLM agents, over MCP.")
    parser.add_argument("--version", action="version", version=f"agent-memory {__version__}")
    parser.add_argument("--backend", choices=["sqlite", "dynamodb"], help="overrides AGENT_MEMORY_BACKEND")
    parser.add_argument("--sqlite-path", type=Path, help="overrides AGENT_MEMORY_SQLITE_PATH")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP server")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--agent-id", help="the agent this stdio server acts as (AGENT_MEMORY_AGENT_ID)")
    serve.add_argument("--read-only", action="store_true", default=None, help="register read tools only")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8765)")
    serve.add_argument("--tokens-file", type=Path, help="bearer tokens for HTTP (AGENT_MEMORY_TOKENS_FILE)")

    tables = sub.add_parser("tables", help="create, inspect or delete the DynamoDB tables")
    tables.add_argument("action", choices=["create", "status", "delete"])
    tables.add_argument("--yes", action="store_true", help="confirm delete")

    export = sub.add_parser("export", help="write the whole memory as JSON Lines")
    export.add_argument("--output", "-o", type=Path, help="file (default: stdout)")
    imp = sub.add_parser("import", help="load an export, or an archive, into the configured backend")
    imp.add_argument(
        "--input", "-i", required=True, help="export file; archive folder, .jsonl.gz or s3://bucket/prefix/"
    )
    imp.add_argument(
        "--keep-days", type=int, help="days restored archived decisions are kept (default: retention)"
    )
    archive = sub.add_parser("archive", help="archive decisions past retention, then delete them")
    archive.add_argument("--to", help="folder or s3://bucket/prefix/ (default AGENT_MEMORY_ARCHIVE_URL)")

    consolidate = sub.add_parser("consolidate", help="learn patterns from recent outcomes")
    consolidate.add_argument("--agent", action="append", help="agent id (repeatable; default: every agent)")
    consolidate.add_argument("--window", default="7d", help="how far back, e.g. 7d, 24h")
    consolidate.add_argument("--decision-type", help="only this decision type")
    consolidate.add_argument("--min-samples", type=int, default=20)

    analytics = sub.add_parser("analytics", help="report how well agents decide")
    analytics.add_argument("--agent", help="one agent (default: every agent)")
    analytics.add_argument("--window", default="7d")
    analytics.add_argument("--format", choices=["table", "json", "html"], default="table")
    analytics.add_argument("--output", "-o", type=Path, help="write the report to this file")

    tokens = sub.add_parser("tokens", help="manage HTTP bearer tokens")
    tokens.add_argument("action", choices=["add"])
    tokens.add_argument("--agent-id", required=True)
    tokens.add_argument("--role", choices=["agent", "observer"], default="agent")
    tokens.add_argument("--file", type=Path, help="tokens file (default AGENT_MEMORY_TOKENS_FILE)")

    demo = sub.add_parser("demo", help="run the three-agent trading-desk demo")
    demo.add_argument(
        "--store", type=Path, help="database file for the demo (default: a fresh one under ./.data)"
    )
    demo.add_argument("--cycles", type=int, default=40, help="simulated trading cycles")
    demo.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        try:
            code = _dispatch(args)
        except BaseExceptionGroup as group:
            # The server's task groups wrap a start-up failure (e.g. an unusable store): report the
            # cause, not the group, when there is a single one.
            raise _sole_cause(group) from None
    except ValidationError as exc:
        print(f"agent-memory: invalid settings: {_describe(exc)}", file=sys.stderr)
        code = 2
    except AgentMemoryError as exc:
        print(f"agent-memory: {exc.message}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _sole_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return group


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        parts.append(f"AGENT_MEMORY_{field.upper()} ({field}): {err['msg']}")
    return "; ".join(parts)


def _dispatch(args: argparse.Namespace) -> int:
    base = {"backend": args.backend, "sqlite_path": args.sqlite_path}
    if args.command == "serve":
        settings = _settings(
            **base,
            agent_id=args.agent_id,
            read_only=args.read_only,
            http_host=args.host,
            http_port=args.port,
            tokens_file=args.tokens_file,
        )
        from agent_memory.server.run import serve

        serve(settings, args.transport)
        return 0
    if args.command == "tables":
        return asyncio.run(_tables(_settings(**base), args.action, args.yes))
    if args.command == "export":
        return asyncio.run(_export(_settings(**base), args.output))
    if args.command == "import":
        from agent_memory.storage.archive import import_archive_command, is_archive

        if is_archive(args.input):
            now = utcnow()
            count = asyncio.run(import_archive_command(_settings(**base), args.input, now, args.keep_days))
            print(f"imported {count} archived items", file=sys.stderr)
            return 0
        return asyncio.run(_import(_settings(**base), Path(args.input)))
    if args.command == "archive":
        from agent_memory.storage.archive import archive_command

        report = asyncio.run(archive_command(_settings(**base), args.to, utcnow()))
        print(
            f"archived {report.archived} items in {len(report.objects)} objects, deleted {report.deleted}",
            file=sys.stderr,
        )
        return 0
    if args.command == "consolidate":
        from agent_memory.memory.learner import consolidate_command

        return asyncio.run(
            consolidate_command(
                _settings(**base),
                agents=args.agent,
                window=args.window,
                decision_type=args.decision_type,
                min_samples=args.min_samples,
            )
        )
    if args.command == "analytics":
        from agent_memory.analytics import analytics_command
        from agent_memory.models import parse_window

        text = asyncio.run(
            analytics_command(
                _settings(**base),
                agent=args.agent,
                window=parse_window(args.window),
                fmt=args.format,
                output=args.output,
                all_agents=args.agent is None,
            )
        )
        if args.output is None or args.format != "html":
            print(text)
        else:
            print(f"report written to {args.output}", file=sys.stderr)
        return 0
    if args.command == "tokens":
        from agent_memory.server.auth import add_token

        settings = _settings(**base)
        path = args.file or settings.tokens_file
        if path is None:
            print("agent-memory: give --file or set AGENT_MEMORY_TOKENS_FILE", file=sys.stderr)
            return 2
        token = add_token(path, args.agent_id, args.role)
        print(token)
        print(
            f"token for {args.agent_id} ({args.role}) added to {path}; it is shown only once", file=sys.stderr
        )
        return 0
    if args.command == "demo":
        from agent_memory.demo import run_demo

        return asyncio.run(run_demo(store=args.store, cycles=args.cycles, seed=args.seed))
    raise AssertionError(args.command)


async def _tables(settings: Settings, action: str, yes: bool) -> int:
    from agent_memory.storage.dynamodb import create_tables, delete_tables, table_status

    if settings.backend != "dynamodb":
        print("agent-memory: tables manages DynamoDB: set AGENT_MEMORY_BACKEND=dynamodb", file=sys.stderr)
        return 2
    if action == "create":
        statuses = await create_tables(settings)
    elif action == "status":
        statuses = await table_status(settings)
    else:
        if not yes:
            print(
                "agent-memory: deleting the tables deletes all memory; add --yes to confirm", file=sys.stderr
            )
            return 2
        await delete_tables(settings)
        statuses = await table_status(settings)
    for status in statuses:
        print(status.model_dump_json())
    return 0


async def _export(settings: Settings, output: Path | None) -> int:
    from agent_memory.storage.factory import open_engine
    from agent_memory.storage.transfer import export_to

    engine = await open_engine(settings)
    try:
        if output is None:
            count = await export_to(engine, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as out:
                count = await export_to(engine, out)
    finally:
        await engine.close()
    print(f"exported {count} items", file=sys.stderr)
    return 0


async def _import(settings: Settings, path: Path) -> int:
    from agent_memory.storage.factory import open_engine
    from agent_memory.storage.transfer import import_from

    engine = await open_engine(settings)
    try:
        with path.open(encoding="utf-8") as lines:
            count = await import_from(engine, lines)
    finally:
        await engine.close()
    print(f"imported {count} items", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
