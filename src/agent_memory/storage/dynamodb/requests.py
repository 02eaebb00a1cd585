"""DynamoDB requests: the client and its timeouts, expressions, sizes, and failure translation.

The client's timeouts and retry count follow the per-call deadline
(``AGENT_MEMORY_CALL_TIMEOUT_SECONDS``, default 30 s): botocore retries throttling and transient
errors itself (standard mode, :data:`MAX_ATTEMPTS` attempts, jittered backoff), and each attempt's
read timeout is a quarter of the deadline, so an endpoint that accepts connections but never
answers uses up its attempts inside the deadline and fails as ``storage_unreachable`` instead of
hanging for minutes (botocore's own defaults are 60 s per attempt). The engine also bounds every call
by the deadline itself, whatever botocore does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from agent_memory.config import Settings
from agent_memory.deadline import DEFAULT_CALL_TIMEOUT_S
from agent_memory.errors import (
    AgentMemoryError,
    ConfigurationError,
    InvalidInput,
    StorageUnavailable,
    StorageUnreachable,
)
from agent_memory.storage.dynamodb.codec import AttributeValue, check_item_size, item_size, to_attr
from agent_memory.storage.engine import Cond, Put, Update, WriteOp
from agent_memory.storage.faults import dynamodb_error

MAX_ATTEMPTS = 3
"""Requests per call, the first included (botocore's total_max_attempts)."""
# Errors the engine turns into engine exceptions itself, with the operation's context.
CONDITIONAL_CODES = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
# Named by the no-op REMOVE of an empty Update; no item ever has it.
_NOOP_ATTRIBUTE = "__agent_memory_noop__"


def timeouts(call_timeout: float = DEFAULT_CALL_TIMEOUT_S) -> Config:
    """Connect and read timeouts and retries that fit :data:`MAX_ATTEMPTS` attempts (plus their
    backoff) inside one call's deadline."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=min(3.0, call_timeout / 10),
        read_timeout=call_timeout / (MAX_ATTEMPTS + 1),
    )


def client_config(overrides: Config | None = None, call_timeout: float = DEFAULT_CALL_TIMEOUT_S) -> Config:
    """The client configuration every DynamoDB client of the package uses, plus ``overrides``."""
    base = timeouts(call_timeout)
    return base.merge(overrides) if overrides is not None else base


def create_client(
    settings: Settings, *, session: Any = None, config: Config | None = None
) -> Any:  # an async context manager yielding an aiobotocore DynamoDB client
    session = session if session is not None else aioboto3.Session()
    return session.client(
        "dynamodb",
        region_name=settings.aws_region,
        endpoint_url=settings.dynamodb_endpoint_url,
        config=client_config(config, settings.call_timeout_seconds),
    )


def endpoint_description(settings: Settings) -> str:
    if settings.dynamodb_endpoint_url:
        return f"DynamoDB at {settings.dynamodb_endpoint_url}"
    return f"DynamoDB in region {settings.aws_region}" if settings.aws_region else "DynamoDB"


_UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    OSError,
)


def translate_error(exc: Exception, what: str, where: str) -> AgentMemoryError:
    """The package error for a botocore (or DAX) failure of ``what``, sent to ``where``.

    ClientErrors are classified by their code in :data:`agent_memory.storage.faults.DYNAMODB_FAULTS`."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        return dynamodb_error(code, str(error.get("Message", "")) or str(exc), what, where)
    if isinstance(exc, NoCredentialsError):
        return StorageUnavailable(
            f"no AWS credentials found for {what} on {where}: the operator must configure credentials "
            "(environment, profile or instance role)"
        )
    if isinstance(exc, _UNREACHABLE):
        return StorageUnreachable(
            f"cannot reach {where} for {what} (after {MAX_ATTEMPTS} attempts): {exc}; retry in a few "
            "seconds, and check the endpoint and the network if it persists",
            retry_after_s=2.0,
        )
    return StorageUnavailable(f"{what} failed at {where}: {exc}")


class Expression:
    """Collects ``#n``/``:v`` placeholders so no attribute name can clash with a reserved word."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}
        self._placeholders: dict[str, str] = {}

    def name(self, attr: str) -> str:
        placeholder = self._placeholders.get(attr)
        if placeholder is None:
            placeholder = f"#n{len(self._placeholders)}"
            self._placeholders[attr] = placeholder
            self.names[placeholder] = attr
        return placeholder

    def value(self, value: Any, path: str) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_attr(value, path)
        return placeholder

    def condition(self, conditions: Sequence[Cond]) -> str | None:
        parts: list[str] = []
        for cond in conditions:
            if cond.kind == "item_exists":
                parts.append(f"attribute_exists({self.name('pk')})")
            elif cond.kind == "item_not_exists":
                parts.append(f"attribute_not_exists({self.name('pk')})")
            else:
                if not cond.attr:
                    raise ValueError(f"condition {cond.kind!r} needs an attribute name")
                if cond.kind == "attr_exists":
                    parts.append(f"attribute_exists({self.name(cond.attr)})")
                elif cond.kind == "attr_not_exists":
                    parts.append(f"attribute_not_exists({self.name(cond.attr)})")
                elif cond.kind == "eq":
                    parts.append(f"{self.name(cond.attr)} = {self.value(cond.value, cond.attr)}")
                elif cond.kind == "at_most":
                    # An absent counter is 0: it holds when the bound is not negative.
                    name, value = self.name(cond.attr), self.value(cond.value, cond.attr)
                    absent = f"attribute_not_exists({name}) OR " if cond.value >= 0 else ""
                    parts.append(f"({absent}{name} <= {value})")
                else:
                    raise ValueError(f"unknown condition kind {cond.kind!r}")
        return " AND ".join(parts) if parts else None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.names:
            params["ExpressionAttributeNames"] = self.names
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def wire_key(pk: str, sk: str) -> dict[str, AttributeValue]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put_key(op: Put) -> tuple[str, str]:
    pk, sk = op.item.get("pk"), op.item.get("sk")
    if not isinstance(pk, str) or not isinstance(sk, str):
        raise InvalidInput("an item to put needs string 'pk' and 'sk' attributes")
    return pk, sk


def op_key(op: WriteOp) -> tuple[str, str]:
    return put_key(op) if isinstance(op, Put) else (op.pk, op.sk)


def update_expression(op: Update, expr: Expression) -> str:
    seen: set[str] = set()
    for attr in (*op.set, *op.add, *op.remove):
        if attr in seen:
            raise ValueError(f"attribute {attr!r} appears more than once in one update")
        if attr in ("pk", "sk"):
            raise ValueError(f"attribute {attr!r} is part of the key and cannot be updated")
        seen.add(attr)
    clauses: list[str] = []
    if op.set:
        assignments = (f"{expr.name(a)} = {expr.value(v, a)}" for a, v in op.set.items())
        clauses.append("SET " + ", ".join(assignments))
    if op.add:
        for attr, amount in op.add.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise TypeError(f"attribute {attr!r}: only numbers can be added, got {amount!r}")
        clauses.append("ADD " + ", ".join(f"{expr.name(a)} {expr.value(v, a)}" for a, v in op.add.items()))
    if op.remove:
        clauses.append("REMOVE " + ", ".join(expr.name(a) for a in op.remove))
    if not clauses:
        # An update that changes nothing must still create the item if it is absent (the contract),
        # and TransactWriteItems requires an UpdateExpression: removing an attribute that never
        # exists does both without touching anything else.
        clauses.append(f"REMOVE {expr.name(_NOOP_ATTRIBUTE)}")
    return " ".join(clauses)


def write_size(op: WriteOp) -> int:
    """The bytes ``op`` writes, as far as known before sending; LimitExceeded if over the limit.

    For an update that is its key and the values it sets: the attributes it leaves alone are
    unknown here (DynamoDB itself refuses an update that grows an item past the limit)."""
    if isinstance(op, Put):
        return check_item_size(op.item)
    if isinstance(op, Update):
        return check_item_size({"pk": op.pk, "sk": op.sk, **op.set, **op.add}, "update")
    return item_size({"pk": op.pk, "sk": op.sk})


def create_dax_client(endpoint: str, region: str | None) -> Any:
    try:
        from amazondax import AmazonDaxClient
    except ImportError as exc:
        raise ConfigurationError(
            "AGENT_MEMORY_DAX_ENDPOINT is set but the amazon-dax-client package is not installed"
        ) from exc
    try:
        return AmazonDaxClient(endpoint_url=endpoint, region_name=region)
    except Exception as exc:
        raise StorageUnavailable(f"cannot connect to DAX at {endpoint}: {exc}") from exc
