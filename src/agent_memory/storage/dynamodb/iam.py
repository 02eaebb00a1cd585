"""Least-privilege IAM policies for the four tables, generated from the key design, and a small
evaluator that checks requests against them (the tests prove with it that an agent's policy allows
every key its tools touch and none of another agent's private keys).

Two policies:

- :func:`server_policy`: the HTTP server (and the Lambdas): item reads and writes and queries on the
  four tables and their indexes; no Scan, no PartiQL, no table administration (explicitly denied, so
  another attached policy cannot widen it by accident).
- :func:`agent_policy`: an agent that reaches DynamoDB directly (a stdio server running with the
  agent's own credentials). ``dynamodb:LeadingKeys`` limits it to partitions the key design
  (:mod:`agent_memory.storage.keys`) gives it:

  * its own partitions, every data action: ``agent:{id}`` and ``agent:{id}#*`` (decisions and
    their id items, their success and timeline indexes, patterns, pattern history, learner
    progress, notes, budgets, state and checkpoints, the signals it published and its refs to
    signals addressed to it), ``rollup#{id}#*``, ``sigrollup#{id}#*``, ``inbox#{id}``;
  * shared partitions whose keys carry no agent: the registry, the daily usage counters, the
    by-id entries of patterns (``pattern#*``: which authors use an id), the signals' by-type
    index, the shared-pattern indexes (``shared_pattern``, ``shared_pattern#*``, ``shared_to#*``
    for what is shared with everyone) and the application counters of patterns (``reports#*``);
  * its own per-reader index ``shared_to#{id}``: the patterns shared with it by name, each entry
    carrying the pattern's content and keyed by the pattern, so neither recall nor a citation in
    ``patterns_applied`` reads an author's partition (a citation is counted on ``reports#*``);
  * delivery into other agents' partitions, write only: ``PutItem`` of an inbox entry
    (``inbox#*``) and of a signal ref (``agent:*#signal_ref#*``), and ``UpdateItem`` of their
    signal counters (``sigrollup#*``), which ``publish_signal`` writes in its transaction;
  * a signal addressed to it, in its source's partitions (``agent:*#signal#*``): ``GetItem``
    (get_signal, ack_signal) and ``UpdateItem`` (its delivery status, on ack).

  What IAM cannot express, and the server does: a signal is readable by any agent holding the
  policy, whether or not it is a target, and so are the authors of a pattern id; and the server
  stamps authors, which an agent with direct table access could forge. Agents that must not trust
  each other go through the HTTP server with bearer tokens (docs/DEPLOYMENT.md#least-privilege).

``dynamodb:LeadingKeys`` is the partition key of the table, or of the index a Query reads. In a
``TransactWriteItems`` each operation is authorised as its own action (PutItem, UpdateItem,
DeleteItem, ConditionCheckItem) on its own key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_memory.storage import keys
from agent_memory.storage.engine import PHYSICAL_NAMES, TABLES, TableName

Policy = dict[str, Any]

READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
WRITE_ACTIONS = (
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
SERVER_ACTIONS = tuple(sorted(READ_ACTIONS + WRITE_ACTIONS))
"""Every action a tool path sends (transactions are authorised per operation, as these)."""
DENIED_ACTIONS = (
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
"""PartiQL's APIs (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction) are authorised as
these PartiQL* actions."""
SHARED_LEADING_KEYS = (
    keys.REGISTRY_PK,
    keys.usage_pk("*"),
    keys.pattern_id_pk("*"),
    keys.signal_type_pk("*"),
    keys.SHARED_ALL_PK,
    keys.shared_domain_pk("*"),
    keys.shared_reader_pk("${*}"),  # IAM's ${*} is a literal '*': what is shared with everyone
    keys.pattern_reports_pk("*", "*"),
)
"""Partitions of records that belong to no single agent (their keys carry no agent id)."""


def own_leading_keys(agent: str) -> tuple[str, ...]:
    """The partitions an agent owns (LeadingKeys patterns: ``*`` matches any characters)."""
    _check_agent(agent)
    return (
        keys.state_pk(agent),
        keys.state_pk(agent) + "#*",
        keys.rollup_pk(agent, "*"),  # type: ignore[arg-type]
        keys.signal_rollup_pk(agent, "*"),  # type: ignore[arg-type]
        keys.inbox_pk(agent),
        keys.shared_count_pk(agent),
        keys.shared_reader_pk(agent),
    )


def owner_of(leading_key: str) -> str | None:
    """The agent whose private partition ``leading_key`` is, or None for a shared partition."""
    for pattern in (
        r"^agent:([^#]+)(?:#.*)?$",
        r"^rollup#(.+)#(?:hour|day)$",
        r"^sigrollup#(.+)#(?:hour|day)$",
    ):
        match = re.match(pattern, leading_key)
        if match:
            return match.group(1)
    for prefix in ("inbox#", "shared_by#", "shared_to#"):
        if leading_key.startswith(prefix):
            owner = leading_key.removeprefix(prefix)
            return None if owner == "*" else owner
    return None


def _check_agent(agent: str) -> None:
    # An agent id with a wildcard or a separator would widen the LeadingKeys patterns.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", agent):
        raise ValueError(f"agent id {agent!r} cannot be used in a policy: letters, digits and _.:- only")


def table_arns(prefix: str = "", region: str = "*", account: str = "*", partition: str = "aws") -> list[str]:
    """The ARNs of the four tables and of their indexes."""
    arns: list[str] = []
    for table, indexes in TABLES.items():
        arn = f"arn:{partition}:dynamodb:{region}:{account}:table/{prefix}{PHYSICAL_NAMES[table]}"
        arns.append(arn)
        if indexes:
            arns.append(f"{arn}/index/*")
    return arns


def _deny_statement(resources: list[str]) -> dict[str, Any]:
    return {"Sid": "NoScanNoPartiQL", "Effect": "Deny", "Action": list(DENIED_ACTIONS), "Resource": resources}


def server_policy(prefix: str = "", region: str = "*", account: str = "*") -> Policy:
    """The policy of the server (and of the consolidation Lambda): every tool path, nothing else."""
    resources = table_arns(prefix, region, account)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AgentMemoryTables",
                "Effect": "Allow",
                "Action": list(SERVER_ACTIONS),
                "Resource": resources,
            },
            _deny_statement(resources),
        ],
    }


def agent_policy(agent: str, prefix: str = "", region: str = "*", account: str = "*") -> Policy:
    """The policy of one agent reaching the tables directly (see the module docstring)."""
    resources = table_arns(prefix, region, account)

    def leading(patterns: Sequence[str]) -> dict[str, Any]:
        return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)}}

    by_table = {t: [a for a in resources if f"table/{prefix}{PHYSICAL_NAMES[t]}" in a] for t in TABLES}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnPartitions",
                "Effect": "Allow",
                "Action": list(SERVER_ACTIONS),
                "Resource": resources,
                "Condition": leading(own_leading_keys(agent)),
            },
            {
                "Sid": "SharedPartitions",
                "Effect": "Allow",
                "Action": list(SERVER_ACTIONS),
                "Resource": resources,
                "Condition": leading(SHARED_LEADING_KEYS),
            },
            {
                "Sid": "ShareWithReaders",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
                "Resource": by_table["ltm"],
                "Condition": leading([keys.shared_reader_pk("*")]),
            },
            {
                "Sid": "DeliverToInboxes",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem"],
                "Resource": by_table["signals"],
                "Condition": leading([keys.inbox_pk("*")]),
            },
            {
                "Sid": "ReferSignalsToTargets",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem"],
                "Resource": by_table["signals"],
                "Condition": leading([keys.signal_ref_pk("*", "*")]),
            },
            {
                "Sid": "ReadAndAckSignalsAddressedToYou",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": by_table["signals"],
                "Condition": leading([keys.signal_pk("*", "*")]),
            },
            {
                "Sid": "CountDeliveries",
                "Effect": "Allow",
                "Action": ["dynamodb:UpdateItem"],
                "Resource": by_table["state"],
                "Condition": leading([keys.signal_rollup_pk("*", "hour"), keys.signal_rollup_pk("*", "day")]),
            },
            _deny_statement(resources),
        ],
    }


# --------------------------------------------------------------------------------------------------
# requests -> (action, resource, leading key), and a small evaluator
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """One authorisation DynamoDB makes for a request (a transaction makes one per operation)."""

    action: str
    table: str
    """The physical table name."""
    index: str | None
    leading_key: str | None
    """The partition key value the request addresses (None for a Scan)."""

    def resource(self, region: str = "us-east-1", account: str = "123456789012") -> str:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{self.table}"
        return f"{arn}/index/{self.index}" if self.index else arn


_OPERATIONS = {
    "GetItem": "dynamodb:GetItem",
    "PutItem": "dynamodb:PutItem",
    "UpdateItem": "dynamodb:UpdateItem",
    "DeleteItem": "dynamodb:DeleteItem",
    "Query": "dynamodb:Query",
    "Scan": "dynamodb:Scan",
}
_TRANSACT = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem"}
_TRANSACT["ConditionCheck"] = "dynamodb:ConditionCheckItem"


def _string(value: Mapping[str, Any]) -> str:
    return str(value["S"])


def _query_partition(params: Mapping[str, Any]) -> str:
    """The partition key value of a Query (the ``=`` term on the table's or index's hash key)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    hash_attr = f"{params['IndexName']}pk" if params.get("IndexName") else "pk"
    for name, value in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
        if names.get(name, name) == hash_attr:
            return _string(values[value])
    raise ValueError(f"no partition key in {params['KeyConditionExpression']!r}")


def accesses(operation: str, params: Mapping[str, Any]) -> list[Access]:
    """The authorisations DynamoDB makes for one API call (as botocore's event hooks see it)."""
    if operation == "TransactWriteItems":
        out = []
        for entry in params["TransactItems"]:
            ((kind, op),) = entry.items()
            key = op["Item"] if kind == "Put" else op["Key"]
            out.append(Access(_TRANSACT[kind], op["TableName"], None, _string(key["pk"])))
        return out
    if operation not in _OPERATIONS:
        return [Access(f"dynamodb:{operation}", str(params.get("TableName", "*")), None, None)]
    action, table = _OPERATIONS[operation], params["TableName"]
    if operation == "Query":
        return [Access(action, table, params.get("IndexName"), _query_partition(params))]
    if operation == "Scan":
        return [Access(action, table, params.get("IndexName"), None)]
    key = params["Item"] if operation == "PutItem" else params["Key"]
    return [Access(action, table, None, _string(key["pk"]))]


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: Mapping[str, Any], access: Access) -> bool:
    for operator, tests in condition.items():
        for key, patterns in tests.items():
            if key != "dynamodb:LeadingKeys" or operator not in (
                "ForAllValues:StringLike",
                "ForAllValues:StringEquals",
            ):
                # Never guess: a condition this evaluator does not know fails loudly.
                raise ValueError(f"unsupported condition {operator} on {key}")
            if access.leading_key is None:
                # ForAllValues over an empty set is true in IAM; a Scan has no leading key, which
                # is why scans are denied explicitly.
                continue
            if operator.endswith("StringLike"):
                # IAM's ${*} stands for a literal '*' (fnmatch's [*]).
                hit = any(
                    fnmatch.fnmatchcase(access.leading_key, p.replace("${*}", "[*]"))
                    for p in _listed(patterns)
                )
            else:
                hit = access.leading_key in _listed(patterns)
            if not hit:
                return False
    return True


def _statement_matches(statement: Mapping[str, Any], access: Access, resource: str) -> bool:
    return (
        any(fnmatch.fnmatchcase(access.action, a) for a in _listed(statement["Action"]))
        and any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement["Resource"]))
        and _condition_holds(statement.get("Condition", {}), access)
    )


def allows(
    policy: Policy, access: Access, *, region: str = "us-east-1", account: str = "123456789012"
) -> bool:
    """IAM's decision for one access under one identity policy: an explicit Deny wins, then any
    Allow, else the implicit deny. Knows the condition operators these policies use, nothing more."""
    resource = access.resource(region, account)
    statements: Iterable[Mapping[str, Any]] = policy["Statement"]
    if any(s["Effect"] == "Deny" and _statement_matches(s, access, resource) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _statement_matches(s, access, resource) for s in statements)


def logical_table(physical: str, prefix: str = "") -> TableName | None:
    for table, name in PHYSICAL_NAMES.items():
        if physical == prefix + name:
            return table
    return None
