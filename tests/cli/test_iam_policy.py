"""`agent-memory iam policy`: the generated IAM policies, printed as a user runs the command."""

from __future__ import annotations

import argparse
import json

from agent_memory.cli.parser import build_parser
from agent_memory.storage.dynamodb.iam import Access, agent_policy, allows, server_policy
from tests.cli.support import cli, refused


def test_server_policy_uses_the_configured_table_prefix() -> None:
    done = cli("iam", "policy", "--server", env={"AGENT_MEMORY_TABLE_PREFIX": "prod_"})
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == server_policy("prod_")
    assert not allows(printed, Access("dynamodb:Scan", "prod_agent_decisions", None, None))


def test_agent_policy_for_one_agent_in_one_account() -> None:
    done = cli(
        "iam", "policy", "--agent-id", "market-hunter", "--table-prefix", "t_",
        "--region", "eu-west-1", "--account", "123456789012",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == agent_policy("market-hunter", "t_", "eu-west-1", "123456789012")
    where = {"region": "eu-west-1", "account": "123456789012"}
    own = Access("dynamodb:Query", "t_agent_signals", None, "inbox#market-hunter")
    other = Access("dynamodb:Query", "t_agent_signals", None, "inbox#risk-manager")
    assert allows(printed, own, **where) and not allows(printed, other, **where)
    assert not allows(printed, own, region="us-east-1", account="123456789012")  # another region


def test_mistakes_say_what_to_change() -> None:
    assert "--agent-id" in refused(cli("iam", "policy", "--agent-id", "hunter*"))
    assert "eu-west-1" in refused(cli("iam", "policy", "--server", "--region", "Europe"))
    assert "123456789012" in refused(cli("iam", "policy", "--server", "--account", "12"))
    assert "--table-prefix" in refused(cli("iam", "policy", "--server", "--table-prefix", "a b"))
    neither = cli("iam", "policy")
    assert neither.returncode == 2 and "--server --agent-id" in neither.stderr


def test_every_option_has_help() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in sub.choices["iam"]._actions:
        assert action.help, action.dest
