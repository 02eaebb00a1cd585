"""One definition of DynamoDB's item rules (item_rules.py), applied alike by both engines and by
the models that validate tool input: a value is refused everywhere, or nowhere."""

from __future__ import annotations

import math
import sqlite3
from decimal import Context, Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from agent_memory.errors import InvalidInput, LimitExceeded, StorageBusy, StorageCorrupt, StorageFull
from agent_memory.item_rules import MAX_NESTING_DEPTH, item_size
from agent_memory.models import MAX_DEPTH, JsonValue
from agent_memory.storage.engine import ItemEngine, Put
from agent_memory.storage.faults import DYNAMODB_FAULTS, SQLITE_FAULTS, dynamodb_error, sqlite_error


class Payload(BaseModel):
    value: JsonValue = None


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def model_accepts(value: Any) -> bool:
    try:
        Payload(value=value)
    except ValueError:
        return False
    return True


async def engine_accepts(engine: ItemEngine, value: Any) -> bool:
    try:
        await engine.write([Put("ltm", {"pk": "p", "sk": "s", "v": value})])
    except InvalidInput:
        return False
    assert (await engine.get("ltm", "p", "s")) == {"pk": "p", "sk": "s", "v": value}
    return True


@pytest.mark.parametrize(
    "number",
    [
        10**37 + 1,
        int("9" * 38),
        10**38 + 1,
        1e-130,
        1e-131,
        9.99e125,
        1e126,
        -1.5e125,
        123456789.123456789,
        2**63 + 1,
    ],
)
async def test_models_and_engines_agree_on_numbers(engine: ItemEngine, number: float) -> None:
    assert model_accepts(number) == await engine_accepts(engine, number)


async def test_nesting_limit_is_dynamodbs_on_every_backend(engine: ItemEngine) -> None:
    # 32 levels counting the attribute: a number inside 31 lists is the deepest DynamoDB takes.
    assert await engine_accepts(engine, nested(MAX_NESTING_DEPTH - 1))
    with pytest.raises(LimitExceeded, match=str(MAX_NESTING_DEPTH)):
        await engine.write([Put("ltm", {"pk": "p", "sk": "deep", "v": nested(MAX_NESTING_DEPTH)})])
    # A payload may nest as deep as fits inside its record (two levels of envelope at most).
    assert MAX_DEPTH == MAX_NESTING_DEPTH - 3
    assert model_accepts(nested(MAX_DEPTH)) and not model_accepts(nested(MAX_DEPTH + 1))


def test_every_sqlite_result_code_in_the_table_maps_to_its_error() -> None:
    for code, fault in SQLITE_FAULTS.items():
        exc = sqlite3.OperationalError("whatever the words")
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        exc.sqlite_errorname = f"CODE_{code}"  # type: ignore[attr-defined]
        error = sqlite_error(exc, "memory.db")
        assert type(error) is fault.error
        assert error is not None and error.retryable == (fault.retry_after_s is not None)
        assert fault.action in error.message
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL | (1 << 8)  # type: ignore[attr-defined]  # extended
    assert isinstance(sqlite_error(full, "memory.db"), StorageFull)
    assert sqlite_error(sqlite3.ProgrammingError("closed"), "memory.db") is None  # a bug, re-raised


def test_classification_is_by_code_never_by_message() -> None:
    for code, fault in DYNAMODB_FAULTS.items():
        assert type(dynamodb_error(code, "any words", "get_item", "DynamoDB")) is fault.error
    # Words that used to be sniffed ("size", "exceed") do not change the class.
    refused = dynamodb_error("ValidationException", "Item size has exceeded the limit", "put", "DynamoDB")
    assert type(refused) is InvalidInput
    locked = sqlite3.OperationalError("disk is full")  # words of one fault, code of another
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    assert isinstance(sqlite_error(locked, "memory.db"), StorageBusy)
    corrupt = sqlite3.DatabaseError("database disk image is malformed")
    corrupt.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
    assert isinstance(sqlite_error(corrupt, "memory.db"), StorageCorrupt)


NUMBERS = [
    1,
    -7,
    10,
    1200,
    10**37 + 1,
    -(10**37),
    0.75,
    -0.125,
    1e-05,
    1.5e20,
    100.0,
    123.456,
    0.1 + 0.2,
    1e-125,
    9.99e119,
    1e120,
    1e-126,
    5e-300,
]


@pytest.mark.parametrize("number", NUMBERS)
def test_number_sizes_are_dynamodbs(number: float) -> None:
    # DynamoDB counts a number as one byte per two significant digits of its decimal form, plus one
    # (a float by its shortest repr). The engines size plain numbers without a Decimal.
    digits = len(Decimal(repr(number)).normalize(Context(prec=100)).as_tuple().digits)
    assert item_size({"n": number}) == 1 + math.ceil(digits / 2) + 1
