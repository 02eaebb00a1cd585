"""The ``agent-memory`` command line: every subcommand and option, each with its help text.

Global options (``--backend``, ``--sqlite-path``, ``-v``) are accepted before or after the
subcommand: ``agent-memory --backend dynamodb serve`` and ``agent-memory serve --backend dynamodb``
mean the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agent_memory import __version__

PROG = "agent-memory"


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On the subcommands the defaults are suppressed, so a global option given before the
    # subcommand is not reset to None by the subcommand's own parser.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--backend",
        choices=["sqlite", "dynamodb"],
        default=default,
        help="storage backend (overrides AGENT_MEMORY_BACKEND; default sqlite)",
    )
    parser.add_argument(
        "--sqlite-path",
        type=Path,
        default=default,
        metavar="FILE",
        help="embedded store file (overrides AGENT_MEMORY_SQLITE_PATH)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="debug logging on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="A memory for LLM agents, over MCP.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    serve = command("serve", "run the MCP server (stdio for one agent, or HTTP for many)")
    serve.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio: one agent per process, launched by its MCP client (default); "
        "http: streamable HTTP for many agents, with bearer tokens",
    )
    serve.add_argument("--agent-id", help="the agent a stdio server acts as (AGENT_MEMORY_AGENT_ID)")
    serve.add_argument("--read-only", action="store_true", default=None, help="register the read tools only")
    serve.add_argument("--host", help="HTTP bind address (AGENT_MEMORY_HTTP_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (AGENT_MEMORY_HTTP_PORT; default 8765)")
    serve.add_argument(
        "--tokens-file",
        type=Path,
        metavar="FILE",
        help="bearer tokens of the HTTP transport (AGENT_MEMORY_TOKENS_FILE)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="HTTP only: serve from N processes on the port (default 1; about the number of cores)",
    )

    tables = command("tables", "create, inspect or delete the DynamoDB tables")
    tables.add_argument(
        "action",
        choices=["create", "status", "migrate", "delete"],
        help="create: idempotent, waits until active; status: exits 1 unless every table is active; "
        "migrate: rewrite items of earlier versions (per-agent ids; resumable); delete: needs --yes",
    )
    tables.add_argument("--yes", action="store_true", help="confirm delete (it deletes all memory)")

    export = command("export", "write the whole memory as JSON Lines")
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="file to write (default: stdout)")
    imp = command("import", "merge a JSON Lines export, or restore an archive, into the configured store")
    imp.add_argument(
        "--input",
        "-i",
        metavar="SOURCE",
        required=True,
        help="an export file; or an archive: a folder, a .jsonl.gz file or s3://bucket/prefix/",
    )
    imp.add_argument(
        "--dry-run", action="store_true", help="say what would be added, updated or kept; write nothing"
    )
    imp.add_argument(
        "--keep-days",
        type=int,
        metavar="N",
        help="days restored archived decisions are kept (default: the decision retention)",
    )
    archive = command("archive", "archive decisions past retention, then delete them")
    archive.add_argument(
        "--to", metavar="URL", help="folder or s3://bucket/prefix/ (default AGENT_MEMORY_ARCHIVE_URL)"
    )

    consolidate = command("consolidate", "learn patterns from recent outcomes")
    consolidate.add_argument(
        "--agent", action="append", metavar="ID", help="agent id (repeatable; default: every agent)"
    )
    consolidate.add_argument(
        "--window", default="7d", help="how far back to look, e.g. 7d, 24h, 90m (default 7d)"
    )
    consolidate.add_argument("--decision-type", metavar="TYPE", help="only this decision type")
    consolidate.add_argument(
        "--min-samples",
        type=int,
        default=20,
        metavar="N",
        help="decisions with an outcome needed before a rule is trusted (default 20)",
    )

    analytics = command("analytics", "report how well agents decide")
    analytics.add_argument("--agent", metavar="ID", help="one agent (default: every agent)")
    analytics.add_argument("--window", default="7d", help="how far back, e.g. 7d, 24h (default 7d)")
    analytics.add_argument(
        "--format",
        choices=["table", "json", "html"],
        default="table",
        help="table for a terminal (default), json for scripts, html for a self-contained page",
    )
    analytics.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the report to this file")

    tokens = command("tokens", "manage HTTP bearer tokens")
    tokens.add_argument(
        "action",
        choices=["add", "list", "remove", "rotate"],
        help="add: create a token and print it once; list: every token (never the secret); "
        "remove: by --token-id or every token of --agent-id; rotate: replace --token-id by a new one",
    )
    tokens.add_argument(
        "--agent-id", help="the agent a new token acts as (add), or whose tokens to remove (remove)"
    )
    tokens.add_argument(
        "--role",
        choices=["agent", "observer"],
        default="agent",
        help="agent: its own memory and what is shared with it (default); "
        "observer: may also read every agent's analytics and records, never write",
    )
    tokens.add_argument("--token-id", metavar="ID", help="id shown by 'tokens list' (remove, rotate)")
    tokens.add_argument(
        "--expires", metavar="WHEN", help="expiry: a duration (30d, 12h) or an ISO time (add, rotate)"
    )
    tokens.add_argument("--label", help="a note shown by 'tokens list' (add)")
    tokens.add_argument(
        "--file", type=Path, metavar="FILE", help="tokens file (default AGENT_MEMORY_TOKENS_FILE)"
    )

    iam = command("iam", "print the least-privilege IAM policies of the DynamoDB tables")
    iam.add_argument(
        "action",
        choices=["policy"],
        help="policy: print one IAM policy document (JSON) to attach to a role or user",
    )
    whose = iam.add_mutually_exclusive_group(required=True)
    whose.add_argument(
        "--server",
        action="store_true",
        help="the policy of the HTTP server and the Lambdas: every tool path on every table, "
        "no Scan, no PartiQL",
    )
    whose.add_argument(
        "--agent-id",
        metavar="ID",
        help="the policy of one agent that reaches DynamoDB directly (a stdio server with the "
        "agent's own credentials): its own partitions and the shared ones only",
    )
    iam.add_argument(
        "--table-prefix",
        metavar="PREFIX",
        help="prefix of the table names (default AGENT_MEMORY_TABLE_PREFIX, else none)",
    )
    iam.add_argument(
        "--region", default="*", help="AWS region of the tables in the ARNs (default *: any region)"
    )
    iam.add_argument(
        "--account", default="*", metavar="ID", help="AWS account id in the ARNs (default *: any account)"
    )

    claude = command(
        "claude-config", "print (or merge) a Claude Desktop entry that launches this installed server"
    )
    claude.add_argument(
        "--agent-id",
        action="append",
        required=True,
        metavar="ID",
        help="an agent to declare (repeatable: one MCP server entry per agent)",
    )
    claude.add_argument(
        "--merge",
        action="store_true",
        help="merge into Claude Desktop's config file of this OS (a backup is written first)",
    )
    claude.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="the Claude Desktop config file to merge into (default: this OS's location)",
    )

    demo = command("demo", "run the three-agent trading-desk demo")
    demo.add_argument(
        "--store",
        type=Path,
        metavar="FILE",
        help="embedded store file for the demo (default: --sqlite-path if given, else a fresh file "
        "under ./.data); with --backend dynamodb the demo uses the configured tables",
    )
    demo.add_argument(
        "--cycles", type=int, default=40, metavar="N", help="simulated trading cycles (default 40)"
    )
    demo.add_argument(
        "--seed", type=int, default=7, metavar="N", help="seed of the simulated market (default 7)"
    )
    return parser
