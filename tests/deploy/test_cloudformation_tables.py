"""The table part of deploy/template.yaml deployed by CloudFormation (moto), then the whole storage
contract suite run against the tables that stack created.

moto's CloudFormation creates the tables with their keys, indexes, billing mode and stream; it does
not apply TimeToLiveSpecification, PointInTimeRecoverySpecification or SSESpecification (those are
checked in the template itself by test_template.py), and the engine enforces expiry on read anyway.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_memory.config import Settings
from agent_memory.storage.dynamodb.admin import TABLE_SPECS
from agent_memory.storage.dynamodb.engine import DynamoEngine
from agent_memory.storage.engine import ItemEngine
from tests.deploy.test_template import load_template
from tests.fixtures.aws import aws_client

# The whole record-level contract suite, collected again here against the stack's tables (the
# module-level `engine` fixture below overrides the per-backend one of tests/conftest.py).
from tests.storage.test_store_contract import *  # noqa: F403


def tables_stack(prefix: str) -> dict[str, Any]:
    """The table resources of deploy/template.yaml, as a stack of their own."""
    template = load_template()
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"TablePrefix": template["Parameters"]["TablePrefix"]},
        "Resources": resources,
    }


def deploy_tables(endpoint: str, prefix: str) -> str:
    cfn = aws_client(endpoint, "cloudformation")
    name = f"tables-{prefix.strip('_')}"
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(tables_stack(prefix)),
        Parameters=[{"ParameterKey": "TablePrefix", "ParameterValue": prefix}],
    )
    status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE", status
    return name


def drop_tables(endpoint: str, stack: str, prefix: str) -> None:
    aws_client(endpoint, "cloudformation").delete_stack(StackName=stack)
    ddb = aws_client(endpoint, "dynamodb")
    for spec in TABLE_SPECS.values():  # DeletionPolicy: Retain keeps them: delete by hand
        ddb.delete_table(TableName=prefix + spec.physical)


def test_stack_creates_the_tables_the_code_defines(moto_endpoint: str) -> None:
    prefix = f"cf{uuid.uuid4().hex[:8]}_"
    stack = deploy_tables(moto_endpoint, prefix)
    try:
        ddb = aws_client(moto_endpoint, "dynamodb")
        for spec in TABLE_SPECS.values():
            table = ddb.describe_table(TableName=prefix + spec.physical)["Table"]
            assert table["KeySchema"] == spec.key_schema()
            assert sorted(a["AttributeName"] for a in table["AttributeDefinitions"]) == sorted(
                spec.attributes
            )
            assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
            assert sorted(i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])) == list(
                spec.indexes
            )
            stream = table.get("StreamSpecification", {})
            assert stream.get("StreamViewType") == spec.stream
    finally:
        drop_tables(moto_endpoint, stack, prefix)


@pytest.fixture
async def engine(moto_endpoint: str) -> AsyncIterator[ItemEngine]:
    prefix = f"cf{uuid.uuid4().hex[:8]}_"
    stack = deploy_tables(moto_endpoint, prefix)
    settings = Settings(
        backend="dynamodb", dynamodb_endpoint_url=moto_endpoint, aws_region="us-east-1", table_prefix=prefix
    )
    eng = await DynamoEngine.open(settings)
    try:
        yield eng
    finally:
        await eng.close()
        drop_tables(moto_endpoint, stack, prefix)
