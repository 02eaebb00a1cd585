"""The DynamoDB backend of the item engine, over aioboto3, with optional DAX for cached reads.

One long-lived low-level client per engine (created in :meth:`DynamoEngine.open`, closed in
:meth:`DynamoEngine.close`). Retries are layered deliberately, all inside one deadline per call
(:func:`agent_memory.deadline.bounded`):

- throttling and transient service/network errors are retried by botocore itself (standard mode,
  :data:`~agent_memory.storage.dynamodb.requests.MAX_ATTEMPTS` attempts, jittered backoff, timeouts
  sized to the deadline); nothing here retries them again;
- a write cancelled because of a *conflict* with a concurrent transaction (TransactionCanceled with
  reason TransactionConflict, or TransactionConflictException on a single write) is not retried by
  botocore; it is retried here with tenacity, :data:`TRANSACTION_ATTEMPTS` times, and then
  surfaces as :class:`~agent_memory.errors.TransactionConflict` (code ``conflict``, retryable).

Every other failure is classified by its code in :mod:`agent_memory.storage.faults`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import Any, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from agent_memory.config import Settings
from agent_memory.deadline import bounded
from agent_memory.errors import (
    ConfigurationError,
    InvalidInput,
    TransactionConflict,
)
from agent_memory.item_rules import MAX_ITEM_BYTES, check_transaction, item_too_large
from agent_memory.storage import usage
from agent_memory.storage.dynamodb.codec import from_wire, item_size, to_wire
from agent_memory.storage.dynamodb.requests import (
    CONDITIONAL_CODES,
    Expression,
    create_client,
    create_dax_client,
    endpoint_description,
    op_key,
    put_key,
    translate_error,
    update_expression,
    wire_key,
    write_size,
)
from agent_memory.storage.engine import (
    PHYSICAL_NAMES,
    TABLES,
    Check,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    Key,
    Put,
    QueryPage,
    TableName,
    Update,
    WriteOp,
)
from agent_memory.storage.faults import dynamodb_error

__all__ = ["TRANSACTION_ATTEMPTS", "DynamoEngine"]

TRANSACTION_ATTEMPTS = 6


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
        self.call_timeout = settings.call_timeout_seconds
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
                dax_client = await asyncio.to_thread(create_dax_client, settings.dax_endpoint, region)
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
            raise ValueError(f"unknown table {table!r}") from None

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
            if exc.response.get("Error", {}).get("Code") in CONDITIONAL_CODES:
                raise
            raise translate_error(exc, what, "DAX" if dax else self._where) from exc
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, what, "DAX" if dax else self._where) from exc
        return cast(dict[str, Any], response)

    def _use_dax(self, consistent: bool) -> bool:
        return not consistent and self._dax is not None

    # --- reads -----------------------------------------------------------------------------------

    def _bounded(self, what: str) -> Any:
        return bounded(self.call_timeout, what, self._where)

    async def get(self, table: TableName, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        async with self._bounded(f"reading an item of {table}"):
            return await self._get(table, pk, sk, consistent=consistent)

    async def _get(self, table: TableName, pk: str, sk: str, *, consistent: bool) -> Item | None:
        params: dict[str, Any] = {"TableName": self._table(table), "Key": wire_key(pk, sk)}
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
            raise ValueError(f"limit must be at least 1, got {limit}")
        if sk_prefix is not None and (sk_gte is not None or sk_lte is not None):
            raise ValueError("sk_prefix cannot be combined with sk_gte/sk_lte")
        if index is not None and index not in TABLES[table]:
            raise ValueError(f"table {table!r} has no index {index!r}")
        # DynamoDB refuses empty strings as key values; "" as a bound or prefix is just no bound,
        # and an upper bound of "" (or below the lower bound) matches nothing.
        if sk_lte == "" or (sk_gte is not None and sk_lte is not None and sk_gte > sk_lte):
            return QueryPage([], None)
        pk_attr, sk_attr = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        expr = Expression()
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
        async with self._bounded(f"querying {table}"):
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
            async with self._bounded(f"scanning {table}"):
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
        pk, sk = op_key(op)
        return await self._get(op.table, pk, sk, consistent=True)

    # --- writes ----------------------------------------------------------------------------------

    def _request(self, op: WriteOp) -> tuple[str, dict[str, Any]]:
        """The single-item request for ``op``: (operation name, parameters)."""
        expr = Expression()
        params: dict[str, Any] = {"TableName": self._table(op.table)}
        if isinstance(op, Put):
            put_key(op)
            params["Item"] = to_wire(op.item)
            kind = "Put"
        else:
            params["Key"] = wire_key(op.pk, op.sk)
            if isinstance(op, Update):
                params["UpdateExpression"] = update_expression(op, expr)
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
        check_transaction(len(ops))
        async with self._bounded(f"writing {len(ops)} item(s)"):
            if len(ops) == 1 and not isinstance(ops[0], Check):
                await self._conflict_retrying(lambda: self._write_one(ops[0]))
            else:
                await self._transact(ops)

    async def update(self, op: Update) -> Item:
        async with self._bounded(f"updating an item of {op.table}"):
            item: Item | None = await self._conflict_retrying(lambda: self._write_one(op, return_new=True))
        if item is None:
            raise AssertionError("update_item with ReturnValues=ALL_NEW returned no item")
        return item

    async def _conflict_retrying(self, attempt_once: Any) -> Any:
        """Run ``attempt_once`` again while concurrent transactions cancel it (bounded)."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(TRANSACTION_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.02, max=0.5),
            retry=retry_if_exception_type(TransactionConflict),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await attempt_once()
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _write_one(self, op: WriteOp, *, return_new: bool = False) -> Item | None:
        kind, params = self._request(op)
        size = write_size(op)
        method = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}[kind]
        if return_new:
            params["ReturnValues"] = "ALL_NEW"
        try:
            response = await self._send(method, params)
        except ClientError as exc:
            usage.record(f"{kind}Item", write_units=usage.write_units(size))
            raise await self._condition_failed(0, op, exc.response) from exc
        except InvalidInput as exc:
            raise await self._refused(op, exc) from exc
        if return_new:
            item = from_wire(response.get("Attributes", {}))
            # What DynamoDB bills is the larger of the old and new item; the new one is known here.
            usage.record(f"{kind}Item", write_units=usage.write_units(max(size, item_size(item))))
            return item
        usage.record(f"{kind}Item", write_units=usage.write_units(size))
        return None

    async def _refused(self, op: WriteOp, refusal: InvalidInput) -> InvalidInput:
        """A refused update is LimitExceeded when the item it would produce is over the item size
        limit (the one refusal the checks before sending cannot foresee: they do not know the
        attributes the update leaves alone). Decided by measuring, not by the message's words."""
        if not isinstance(op, Update):
            return refusal
        current = await self._current(op)
        after: dict[str, Any] = dict(current) if current is not None else {"pk": op.pk, "sk": op.sk}
        after.update(op.set)
        for name, delta in op.add.items():
            after[name] = delta if not isinstance(after.get(name), int | float) else after[name] + delta
        for name in op.remove:
            after.pop(name, None)
        size = item_size(after)
        return item_too_large(size, "updated item") if size > MAX_ITEM_BYTES else refusal

    async def _condition_failed(self, index: int, op: WriteOp, failure: dict[str, Any]) -> ConditionFailed:
        wire = failure.get("Item")
        if wire is not None:
            return ConditionFailed(index, from_wire(wire))
        # DynamoDB omits the item when it does not exist; older emulators never send it. A
        # consistent read tells which.
        return ConditionFailed(index, await self._current(op))

    async def _transact(self, ops: list[WriteOp]) -> None:
        items: list[dict[str, Any]] = []
        for op in ops:
            kind, params = self._request(op)
            items.append({kind: params})
        sizes = [write_size(op) for op in ops]
        check_transaction(len(ops), sum(sizes))
        units = sum(usage.write_units(size, transactional=True) for size in sizes)
        await self._conflict_retrying(lambda: self._transact_once(ops, items, units))

    async def _transact_once(self, ops: list[WriteOp], items: list[dict[str, Any]], units: float) -> None:
        try:
            await self._send("transact_write_items", {"TransactItems": items})
        except ClientError as exc:
            usage.record("TransactWriteItems", write_units=units)
            raise await self._cancelled(ops, exc) from exc
        usage.record("TransactWriteItems", write_units=units)

    async def _cancelled(self, ops: list[WriteOp], exc: ClientError) -> Exception:
        """The exception for a cancelled transaction, from its cancellation reason codes: the first
        failed condition if any, else the first reason the fault table knows."""
        reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons") or []
        for index, reason in enumerate(reasons):
            if reason.get("Code") == "ConditionalCheckFailed" and index < len(ops):
                return await self._condition_failed(index, ops[index], reason)
        failed = [(i, r) for i, r in enumerate(reasons) if r.get("Code") not in (None, "None")]
        detail = "; ".join(f"operation {i}: {r.get('Code')}: {r.get('Message', '')}" for i, r in failed)
        detail = detail or str(exc)
        what = f"a transaction of {len(ops)} operations"
        if not failed:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return dynamodb_error(code, detail, what, self._where)
        index, reason = failed[0]
        error = dynamodb_error(str(reason.get("Code")), detail, what, self._where)
        if isinstance(error, TransactionConflict):
            error.message = (
                f"{what} kept conflicting with concurrent writes to the same items "
                f"({TRANSACTION_ATTEMPTS} attempts); nothing was written: retry the call"
            )
            error.args = (error.message,)
        if isinstance(error, InvalidInput) and index < len(ops):
            return await self._refused(ops[index], error)
        return error
