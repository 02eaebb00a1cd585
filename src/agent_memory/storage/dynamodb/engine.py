"""The DynamoDB backend of the item engine, over aioboto3, with optional DAX for cached reads.

One long-lived low-level client per engine (created in :meth:`DynamoEngine.open`, closed in
:meth:`DynamoEngine.close`). Retries are layered deliberately:

- throttling and transient service/network errors are retried by botocore itself (standard mode,
  5 attempts, jittered backoff); nothing here retries them again, so a throttled call costs at most
  five requests;
- a transaction cancelled because of a *conflict* with another transaction is not retried by
  botocore (it is a TransactionCanceledException); it is retried here with tenacity, a bounded
  number of times, and then surfaces as :class:`TransactionConflict`.

Everything that escapes is one of the engine contract's exceptions or :mod:`agent_memory.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import Any, cast

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from agent_memory.config import Settings
from agent_memory.errors import (
    AgentMemoryError,
    ConfigurationError,
    InvalidInput,
    LimitExceeded,
    StorageUnavailable,
)
from agent_memory.storage import usage
from agent_memory.storage.dynamodb.codec import (
    AttributeValue,
    check_item_size,
    from_wire,
    item_size,
    to_attr,
    to_wire,
)
from agent_memory.storage.engine import (
    MAX_TRANSACTION_ITEMS,
    PHYSICAL_NAMES,
    TABLES,
    Check,
    Cond,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    Key,
    Put,
    QueryPage,
    TableName,
    TransactionConflict,
    Update,
    WriteOp,
)

# DynamoDB's cap on the summed size of the items of one TransactWriteItems call.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
TRANSACTION_ATTEMPTS = 6

# botocore's defaults (60 s connect and read timeouts) would leave a tool call hanging for minutes
# against a dead endpoint once multiplied by the retry attempts.
DEFAULT_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=20,
)

_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "AccessDeniedException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
    }
)
# Errors the callers turn into engine exceptions themselves, with the operation's context.
_CONDITIONAL_CODES = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
# Named by the no-op REMOVE of an empty Update; no item ever has it.
_NOOP_ATTRIBUTE = "__agent_memory_noop__"


def client_config(overrides: Config | None = None) -> Config:
    """The client configuration every DynamoDB client of the package uses, plus ``overrides``."""
    return DEFAULT_CLIENT_CONFIG.merge(overrides) if overrides is not None else DEFAULT_CLIENT_CONFIG


def create_client(
    settings: Settings, *, session: Any = None, config: Config | None = None
) -> Any:  # an async context manager yielding an aiobotocore DynamoDB client
    session = session if session is not None else aioboto3.Session()
    return session.client(
        "dynamodb",
        region_name=settings.aws_region,
        endpoint_url=settings.dynamodb_endpoint_url,
        config=client_config(config),
    )


def endpoint_description(settings: Settings) -> str:
    if settings.dynamodb_endpoint_url:
        return f"DynamoDB at {settings.dynamodb_endpoint_url}"
    return f"DynamoDB in region {settings.aws_region}" if settings.aws_region else "DynamoDB"


def translate_error(exc: Exception, what: str, where: str) -> AgentMemoryError:
    """The package error for a botocore (or DAX) failure of ``what``, sent to ``where``."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        if code == "ValidationException":
            lowered = message.lower()
            if "size" in lowered and "exceed" in lowered:
                return LimitExceeded(f"{where} refused {what}: {message}")
            return InvalidInput(f"{where} refused {what}: {message}")
        if code == "ResourceNotFoundException":
            return StorageUnavailable(
                f"{what} failed: the table does not exist in {where} ({message}); create the tables first"
            )
        if code in _THROTTLING_CODES:
            return StorageUnavailable(
                f"{where} kept throttling {what} after retries ({code}); try again in a few seconds"
            )
        if code in _CREDENTIAL_CODES:
            return StorageUnavailable(
                f"{where} rejected the AWS credentials for {what} ({code}: {message}); "
                "check the credentials and their permissions"
            )
        return StorageUnavailable(f"{what} failed at {where}: {code}: {message}")
    if isinstance(exc, NoCredentialsError):
        return StorageUnavailable(
            f"no AWS credentials found for {what} on {where}: configure credentials "
            "(environment, profile or instance role)"
        )
    return StorageUnavailable(f"cannot reach {where} for {what} (after retries): {exc}")


class _Expression:
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
                    raise InvalidInput(f"condition {cond.kind!r} needs an attribute name")
                if cond.kind == "attr_exists":
                    parts.append(f"attribute_exists({self.name(cond.attr)})")
                elif cond.kind == "attr_not_exists":
                    parts.append(f"attribute_not_exists({self.name(cond.attr)})")
                elif cond.kind == "eq":
                    parts.append(f"{self.name(cond.attr)} = {self.value(cond.value, cond.attr)}")
                else:
                    raise InvalidInput(f"unknown condition kind {cond.kind!r}")
        return " AND ".join(parts) if parts else None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.names:
            params["ExpressionAttributeNames"] = self.names
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def _wire_key(pk: str, sk: str) -> dict[str, AttributeValue]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _put_key(op: Put) -> tuple[str, str]:
    pk, sk = op.item.get("pk"), op.item.get("sk")
    if not isinstance(pk, str) or not isinstance(sk, str):
        raise InvalidInput("an item to put needs string 'pk' and 'sk' attributes")
    return pk, sk


def _op_key(op: WriteOp) -> tuple[str, str]:
    return _put_key(op) if isinstance(op, Put) else (op.pk, op.sk)


def _update_expression(op: Update, expr: _Expression) -> str:
    seen: set[str] = set()
    for attr in (*op.set, *op.add, *op.remove):
        if attr in seen:
            raise InvalidInput(f"attribute {attr!r} appears more than once in one update")
        if attr in ("pk", "sk"):
            raise InvalidInput(f"attribute {attr!r} is part of the key and cannot be updated")
        seen.add(attr)
    clauses: list[str] = []
    if op.set:
        assignments = (f"{expr.name(a)} = {expr.value(v, a)}" for a, v in op.set.items())
        clauses.append("SET " + ", ".join(assignments))
    if op.add:
        for attr, amount in op.add.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise InvalidInput(f"attribute {attr!r}: only numbers can be added, got {amount!r}")
        clauses.append("ADD " + ", ".join(f"{expr.name(a)} {expr.value(v, a)}" for a, v in op.add.items()))
    if op.remove:
        clauses.append("REMOVE " + ", ".join(expr.name(a) for a in op.remove))
    if not clauses:
        # An update that changes nothing must still create the item if it is absent (the contract),
        # and TransactWriteItems requires an UpdateExpression: removing an attribute that never
        # exists does both without touching anything else.
        clauses.append(f"REMOVE {expr.name(_NOOP_ATTRIBUTE)}")
    return " ".join(clauses)


def _write_size(op: WriteOp) -> int:
    """The bytes ``op`` writes, as far as known before sending; LimitExceeded if over the limit.

    For an update that is its key and the values it sets: the attributes it leaves alone are
    unknown here (DynamoDB itself refuses an update that grows an item past the limit)."""
    if isinstance(op, Put):
        return check_item_size(op.item)
    if isinstance(op, Update):
        return check_item_size({"pk": op.pk, "sk": op.sk, **op.set, **op.add}, "update")
    return item_size({"pk": op.pk, "sk": op.sk})


class DynamoEngine:
    """:class:`agent_memory.storage.engine.ItemEngine` on DynamoDB. Create with :meth:`open`."""

    def __init__(
        self,
        settings: Settings,
        client: Any,
        stack: AsyncExitStack,
        *,
        dax: Any = None,
        owns_dax: bool = False,
    ) -> None:
        self._client = client
        self._stack = stack
        self._dax = dax
        self._owns_dax = owns_dax
        self._where = endpoint_description(settings)
        self._names: dict[TableName, str] = {t: settings.table_name(PHYSICAL_NAMES[t]) for t in TABLES}
        self._closed = False

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        dax_client: Any = None,
        session: Any = None,
        client_config: Config | None = None,
    ) -> DynamoEngine:
        """Create the engine's client (and a DAX client if ``settings.dax_endpoint`` is set).

        ``dax_client`` replaces the DAX client: any object with the synchronous ``get_item`` and
        ``query`` of boto3's low-level DynamoDB client; the engine does not close it.
        ``session`` is an ``aioboto3.Session``; ``client_config`` is merged over the defaults.
        """
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                create_client(settings, session=session, config=client_config)
            )
        except NoRegionError as exc:
            await stack.aclose()
            raise ConfigurationError(
                "no AWS region for DynamoDB: set AGENT_MEMORY_AWS_REGION or AWS_DEFAULT_REGION"
            ) from exc
        except BotoCoreError as exc:
            await stack.aclose()
            raise ConfigurationError(f"cannot create the DynamoDB client: {exc}") from exc
        owns_dax = False
        if dax_client is None and settings.dax_endpoint:
            try:
                region = settings.aws_region or (session.region_name if session is not None else None)
                dax_client = await asyncio.to_thread(_create_dax_client, settings.dax_endpoint, region)
            except BaseException:
                await stack.aclose()
                raise
            owns_dax = True
        return cls(settings, client, stack, dax=dax_client, owns_dax=owns_dax)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._stack.aclose()
        finally:
            if self._owns_dax and self._dax is not None:
                await asyncio.to_thread(self._dax.close)

    # --- requests --------------------------------------------------------------------------------

    def _table(self, table: TableName) -> str:
        try:
            return self._names[table]
        except KeyError:
            raise InvalidInput(f"unknown table {table!r}") from None

    async def _send(self, method: str, params: dict[str, Any], *, dax: bool = False) -> dict[str, Any]:
        """One request. Conditional failures come back as the raw ClientError for the caller to
        interpret; every other failure is translated."""
        what = f"{method} on {params.get('TableName', 'a transaction')}"
        try:
            if dax:
                # The DAX client is synchronous (and blocks on its own sockets).
                response = await asyncio.to_thread(getattr(self._dax, method), **params)
            else:
                response = await getattr(self._client, method)(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _CONDITIONAL_CODES:
                raise
            raise translate_error(exc, what, "DAX" if dax else self._where) from exc
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, what, "DAX" if dax else self._where) from exc
        return cast(dict[str, Any], response)

    def _use_dax(self, consistent: bool) -> bool:
        return not consistent and self._dax is not None

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, table: TableName, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        params: dict[str, Any] = {"TableName": self._table(table), "Key": _wire_key(pk, sk)}
        dax = self._use_dax(consistent)
        if not dax:
            params["ConsistentRead"] = consistent
        response = await self._send("get_item", params, dax=dax)
        wire = response.get("Item")
        item = from_wire(wire) if wire else None
        size = item_size(item) if item is not None else 0
        # A DAX cache hit costs no read units, but the client cannot tell a hit from a miss; the
        # miss's cost is recorded, an upper bound.
        usage.record(
            "DaxGetItem" if dax else "GetItem", read_units=usage.read_units(size, consistent=consistent)
        )
        return item

    async def query(
        self,
        table: TableName,
        pk: str,
        *,
        index: IndexName | None = None,
        sk_gte: str | None = None,
        sk_lte: str | None = None,
        sk_prefix: str | None = None,
        forward: bool = True,
        limit: int = 100,
        start: Key | None = None,
        consistent: bool = True,
    ) -> QueryPage:
        table_name = self._table(table)
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        if sk_prefix is not None and (sk_gte is not None or sk_lte is not None):
            raise InvalidInput("sk_prefix cannot be combined with sk_gte/sk_lte")
        if index is not None and index not in TABLES[table]:
            raise InvalidInput(f"table {table!r} has no index {index!r}")
        # DynamoDB refuses empty strings as key values; "" as a bound or prefix is just no bound,
        # and an upper bound of "" (or below the lower bound) matches nothing.
        if sk_lte == "" or (sk_gte is not None and sk_lte is not None and sk_gte > sk_lte):
            return QueryPage([], None)
        pk_attr, sk_attr = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        expr = _Expression()
        condition = f"{expr.name(pk_attr)} = {expr.value(pk, pk_attr)}"
        if sk_prefix:
            condition += f" AND begins_with({expr.name(sk_attr)}, {expr.value(sk_prefix, sk_attr)})"
        elif sk_gte and sk_lte is not None:
            condition += (
                f" AND {expr.name(sk_attr)} BETWEEN {expr.value(sk_gte, sk_attr)}"
                f" AND {expr.value(sk_lte, sk_attr)}"
            )
        elif sk_gte:
            condition += f" AND {expr.name(sk_attr)} >= {expr.value(sk_gte, sk_attr)}"
        elif sk_lte is not None:
            condition += f" AND {expr.name(sk_attr)} <= {expr.value(sk_lte, sk_attr)}"
        # One item more than asked tells whether the range goes on, so last_key is None exactly
        # when the range is exhausted (DynamoDB alone returns a key whenever Limit is reached).
        params: dict[str, Any] = {
            "TableName": table_name,
            "KeyConditionExpression": condition,
            "ScanIndexForward": forward,
            "Limit": limit + 1,
            **expr.params(),
        }
        if index is not None:
            params["IndexName"] = index
        if start:
            params["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
        dax = self._use_dax(consistent)
        # Global secondary indexes refuse ConsistentRead=True; they are eventually consistent.
        strongly = consistent and index is None
        if not dax:
            params["ConsistentRead"] = strongly
        response = await self._send("query", params, dax=dax)
        items = [from_wire(wire) for wire in response.get("Items", [])]
        usage.record(
            "DaxQuery" if dax else "Query",
            read_units=usage.read_units(sum(item_size(i) for i in items), consistent=strongly),
        )
        if len(items) > limit:
            items = items[:limit]
            key_attrs = ("pk", "sk") if index is None else ("pk", "sk", pk_attr, sk_attr)
            return QueryPage(items, {name: str(items[-1][name]) for name in key_attrs})
        last = response.get("LastEvaluatedKey")
        return QueryPage(items, {name: str(value["S"]) for name, value in last.items()} if last else None)

    async def scan(self, table: TableName) -> AsyncIterator[Item]:
        params: dict[str, Any] = {"TableName": self._table(table), "ConsistentRead": True}
        while True:
            response = await self._send("scan", params)
            items = [from_wire(wire) for wire in response.get("Items", [])]
            usage.record(
                "Scan", read_units=usage.read_units(sum(item_size(i) for i in items), consistent=True)
            )
            for item in items:
                yield item
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    async def _current(self, op: WriteOp) -> Item | None:
        pk, sk = _op_key(op)
        return await self.get(op.table, pk, sk, consistent=True)

    # --- writes ----------------------------------------------------------------------------------

    def _request(self, op: WriteOp) -> tuple[str, dict[str, Any]]:
        """The single-item request for ``op``: (operation name, parameters)."""
        expr = _Expression()
        params: dict[str, Any] = {"TableName": self._table(op.table)}
        if isinstance(op, Put):
            _put_key(op)
            params["Item"] = to_wire(op.item)
            kind = "Put"
        else:
            params["Key"] = _wire_key(op.pk, op.sk)
            if isinstance(op, Update):
                params["UpdateExpression"] = _update_expression(op, expr)
                kind = "Update"
            elif isinstance(op, Delete):
                kind = "Delete"
            else:
                kind = "ConditionCheck"
        condition = expr.condition(op.conditions)
        if condition is None and kind == "ConditionCheck":
            # ConditionCheck requires an expression; a check without conditions always holds.
            condition = f"attribute_exists({expr.name('pk')}) OR attribute_not_exists({expr.name('pk')})"
        if condition is not None:
            params["ConditionExpression"] = condition
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        params.update(expr.params())
        return kind, params

    async def write(self, ops: Sequence[WriteOp]) -> None:
        ops = list(ops)
        if not ops:
            return
        if len(ops) > MAX_TRANSACTION_ITEMS:
            raise LimitExceeded(
                f"a transaction has {len(ops)} operations, over the limit of {MAX_TRANSACTION_ITEMS}: "
                "split the write"
            )
        if len(ops) == 1 and not isinstance(ops[0], Check):
            await self._write_one(ops[0])
        else:
            await self._transact(ops)

    async def _write_one(self, op: WriteOp, *, return_new: bool = False) -> Item | None:
        kind, params = self._request(op)
        size = _write_size(op)
        method = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}[kind]
        if return_new:
            params["ReturnValues"] = "ALL_NEW"
        try:
            response = await self._send(method, params)
        except ClientError as exc:
            usage.record(f"{kind}Item", write_units=usage.write_units(size))
            raise await self._condition_failed(0, op, exc.response) from exc
        if return_new:
            item = from_wire(response.get("Attributes", {}))
            # What DynamoDB bills is the larger of the old and new item; the new one is known here.
            usage.record(f"{kind}Item", write_units=usage.write_units(max(size, item_size(item))))
            return item
        usage.record(f"{kind}Item", write_units=usage.write_units(size))
        return None

    async def _condition_failed(self, index: int, op: WriteOp, failure: dict[str, Any]) -> ConditionFailed:
        wire = failure.get("Item")
        if wire is not None:
            return ConditionFailed(index, from_wire(wire))
        # DynamoDB omits the item when it does not exist; older emulators never send it. A
        # consistent read tells which.
        return ConditionFailed(index, await self._current(op))

    async def update(self, op: Update) -> Item:
        item = await self._write_one(op, return_new=True)
        assert item is not None
        return item

    async def _transact(self, ops: list[WriteOp]) -> None:
        items: list[dict[str, Any]] = []
        for op in ops:
            kind, params = self._request(op)
            items.append({kind: params})
        sizes = [_write_size(op) for op in ops]
        if sum(sizes) > MAX_TRANSACTION_BYTES:
            raise LimitExceeded(
                f"a transaction writes {sum(sizes)} bytes, over DynamoDB's {MAX_TRANSACTION_BYTES}-byte "
                "(4 MB) limit: split the write"
            )
        units = sum(usage.write_units(size, transactional=True) for size in sizes)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(TRANSACTION_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.02, max=0.5),
            retry=retry_if_exception_type(TransactionConflict),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._transact_once(ops, items, units)

    async def _transact_once(self, ops: list[WriteOp], items: list[dict[str, Any]], units: float) -> None:
        try:
            await self._send("transact_write_items", {"TransactItems": items})
        except ClientError as exc:
            usage.record("TransactWriteItems", write_units=units)
            raise await self._cancelled(ops, exc) from exc
        usage.record("TransactWriteItems", write_units=units)

    async def _cancelled(self, ops: list[WriteOp], exc: ClientError) -> Exception:
        reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons") or []
        for index, reason in enumerate(reasons):
            if reason.get("Code") == "ConditionalCheckFailed" and index < len(ops):
                return await self._condition_failed(index, ops[index], reason)
        codes = [str(reason.get("Code")) for reason in reasons if reason.get("Code") not in (None, "None")]
        if "TransactionConflict" in codes:
            return TransactionConflict(
                f"the transaction kept conflicting with concurrent writes to the same items "
                f"({TRANSACTION_ATTEMPTS} attempts); retry the call"
            )
        messages = "; ".join(
            f"operation {i}: {r.get('Code')}: {r.get('Message', '')}"
            for i, r in enumerate(reasons)
            if r.get("Code") not in (None, "None")
        )
        if "ValidationError" in codes:
            lowered = messages.lower()
            if "size" in lowered and "exceed" in lowered:
                return LimitExceeded(f"{self._where} refused the transaction: {messages}")
            return InvalidInput(f"{self._where} refused the transaction: {messages}")
        if any(code in _THROTTLING_CODES for code in codes):
            return StorageUnavailable(
                f"{self._where} kept throttling the transaction ({messages}); try again in a few seconds"
            )
        detail = messages or str(exc)
        return StorageUnavailable(f"{self._where} cancelled the transaction: {detail}")


def _create_dax_client(endpoint: str, region: str | None) -> Any:
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
