"""deploy/template.yaml against the code: the tables are the ones `agent-memory tables create`
makes, the server policy is the generated one, handlers and settings exist."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_memory.analytics.emf import CALL_DIMENSIONS, CALL_METRICS, DECISION_METRICS, DIMENSIONS, SERVICE
from agent_memory.config import Settings
from agent_memory.storage.dynamodb.admin import (
    TABLE_SPECS,
    cloudformation_tables,
    create_table_request,
)
from agent_memory.storage.dynamodb.iam import DENIED_ACTIONS, SERVER_ACTIONS, server_policy
from agent_memory.storage.engine import TABLES, TTL_ATTRIBUTE
from tests.fixtures.aws import load_cfn_template

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"


def load_template() -> dict[str, Any]:
    """The template as plain data, short-form intrinsics (!Ref, !Sub) in their long form."""
    return load_cfn_template(TEMPLATE)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_table_resources_are_the_code_rendering(template: dict[str, Any]) -> None:
    rendered = cloudformation_tables()
    in_template = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"}
    assert set(in_template) == set(rendered)
    for logical_id, resource in rendered.items():
        assert in_template[logical_id] == resource, (
            f"{logical_id} in deploy/template.yaml differs from the code; replace the tables block with:\n"
            + yaml.safe_dump({logical_id: resource}, sort_keys=False)
        )


def test_cloudformation_and_create_table_agree() -> None:
    """Both renderings of each spec describe the same table (the API only spells them differently)."""
    rendered = cloudformation_tables()
    for table, spec in TABLE_SPECS.items():
        request = create_table_request(spec, "name")
        props = rendered[spec.logical_id]["Properties"]
        assert props["TableName"] == {"Fn::Sub": "${TablePrefix}" + spec.physical}
        for field in ("KeySchema", "AttributeDefinitions", "BillingMode"):
            assert props[field] == request[field]
        assert props.get("GlobalSecondaryIndexes") == request.get("GlobalSecondaryIndexes")
        assert [g["IndexName"] for g in props.get("GlobalSecondaryIndexes", [])] == list(TABLES[table])
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
        assert request["SSESpecification"] == {"Enabled": True, "SSEType": "KMS"}
        stream = request.get("StreamSpecification")
        assert props.get("StreamSpecification") == (
            {"StreamViewType": stream["StreamViewType"]} if stream else None
        )
    # The archive needs the decisions' old images; nothing else streams.
    assert [s.table for s in TABLE_SPECS.values() if s.stream] == ["decisions"]
    assert TABLE_SPECS["decisions"].stream == "OLD_IMAGE"


def test_server_policy_is_the_generated_one(template: dict[str, Any]) -> None:
    document = template["Resources"]["ServerPolicy"]["Properties"]["PolicyDocument"]
    statement, deny = document["Statement"]
    generated = server_policy()["Statement"]
    assert [s["Effect"] for s in generated] == [statement["Effect"], deny["Effect"]] == ["Allow", "Deny"]
    assert tuple(statement["Action"]) == SERVER_ACTIONS == tuple(generated[0]["Action"])
    assert tuple(deny["Action"]) == DENIED_ACTIONS == tuple(generated[1]["Action"])
    assert deny["Resource"] == statement["Resource"]
    referenced = {json.dumps(r) for r in statement["Resource"]}
    for spec in TABLE_SPECS.values():
        assert json.dumps({"Fn::GetAtt": [spec.logical_id, "Arn"]}) in referenced
        index_arn = json.dumps({"Fn::Sub": "${" + spec.logical_id + ".Arn}/index/*"})
        assert (index_arn in referenced) == bool(spec.indexes)


def test_lambda_handlers_exist(template: dict[str, Any]) -> None:
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 2
    for function in functions:
        module, _, name = function["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))


def _unless(entry: dict[str, Any]) -> dict[str, Any]:
    """A list entry set under a condition (Fn::If [cond, entry, AWS::NoValue]): the entry."""
    if "Fn::If" in entry:
        _, value, _ = entry["Fn::If"]
        return dict(value)
    return entry


def test_environment_names_are_settings(template: dict[str, Any]) -> None:
    """Every AGENT_MEMORY_* variable the template sets is one the server reads (no typo survives)."""
    names: list[str] = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        names += list(props.get("Environment", {}).get("Variables", {}))
        for container in props.get("ContainerDefinitions", []):
            names += [_unless(e)["Name"] for e in container.get("Environment", [])]
    fields = {f"AGENT_MEMORY_{name.upper()}" for name in Settings.model_fields}
    # The tokens secret arrives as JSON and is written to AGENT_MEMORY_TOKENS_FILE by the entrypoint.
    unknown = [n for n in names if n.startswith("AGENT_MEMORY_") and n not in fields]
    assert names and unknown == []


def _container_env(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    return {_unless(e)["Name"]: _unless(e)["Value"] for e in container["Environment"]}


def test_alarms_and_dashboard_watch_metrics_the_server_emits(template: dict[str, Any]) -> None:
    """Every AgentMemory metric the alarms and the dashboard name is one analytics/emf.py writes,
    under dimensions it writes, in the namespace the container is configured with."""
    env = _container_env(template)
    namespace = env["AGENT_MEMORY_EMF_NAMESPACE"]
    assert env["AGENT_MEMORY_EMF_METRICS"] in ("stdout", "stderr")  # the awslogs driver ships both
    emitted = {**{m: DIMENSIONS for m in DECISION_METRICS}, **{m: CALL_DIMENSIONS for m in CALL_METRICS}}
    alarms = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    ours = [a for a in alarms if a["Namespace"] == namespace]
    assert {a["MetricName"] for a in ours} == {"SuccessCount", "ErrorCount", "ThrottleCount", "CallLatencyMs"}
    for alarm in ours:
        assert alarm["MetricName"] in emitted
        assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    searched = set()
    for widget in widgets:
        for line in widget["properties"]["metrics"]:
            for part in line:
                if isinstance(part, dict) and "SEARCH(" in part.get("expression", ""):
                    for space, dims, name in re.findall(
                        r"\{(\w+),([\w,]+)\} MetricName=\"(\w+)\"", part["expression"]
                    ):
                        assert space == namespace and name in emitted, part["expression"]
                        assert dims.split(",") == emitted[name], part["expression"]
                        searched.add(name)
            if line and line[0] == namespace:
                assert line[1] in emitted and line[2:4] == ["service", SERVICE]
                searched.add(line[1])
    # success rate, latency, error rate, throttles and cost per tool are all drawn
    assert {"SuccessCount", "LatencyMs", "ErrorCount", "ThrottleCount", "CallLatencyMs"} <= searched
    assert {"ReadUnits", "WriteUnits"} <= searched
    assert "${PriceWritePerMillion}" in body and "${PriceReadPerMillion}" in body


def test_jwt_settings_sit_next_to_the_tokens_secret(template: dict[str, Any]) -> None:
    """JWT sign-in is configured by parameters, only when an issuer is given; tokens are optional
    then; a Rule refuses a stack with neither."""
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    jwt = {
        _unless(e)["Name"]: e["Fn::If"][0]
        for e in container["Environment"]
        if "Fn::If" in e and _unless(e)["Name"].startswith("AGENT_MEMORY_JWT_")
    }
    assert set(jwt) == {
        f"AGENT_MEMORY_JWT_{n}" for n in ("ISSUER", "JWKS_URL", "AUDIENCE", "AGENT_CLAIM", "ROLE_CLAIM")
    }
    assert {f"AGENT_MEMORY_{n.upper()}" for n in Settings.model_fields} >= set(jwt)
    (secret,) = container["Secrets"]
    assert secret["Fn::If"][0] == "HasTokens"
    assert template["Parameters"]["TokensSecretArn"]["Default"] == ""
    assert set(template["Rules"]) == {"SignInConfigured", "JwtNeedsKeys"}
