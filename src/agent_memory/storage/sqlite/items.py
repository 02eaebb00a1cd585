"""Items as the SQLite engine stores them: validation by DynamoDB's rules, rows, conditions, updates.

The rules themselves are in :mod:`agent_memory.item_rules`; this module applies them to rows,
so that data the embedded store accepts can always be moved to DynamoDB (and a record-layer bug
shows up on both backends alike). Data the rules refuse raises InvalidInput/LimitExceeded; a
malformed request (unknown table, an update of a key attribute, a condition without attribute...)
is a programming error of the record layer and raises ValueError/TypeError.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

import orjson

from agent_memory.errors import InvalidInput, StorageCorrupt
from agent_memory.item_rules import (
    DYNAMODB_ARITHMETIC,
    MAX_ATTRIBUTE_NAME_BYTES,
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SIGNIFICANT_DIGITS,
    MAX_SORT_KEY_BYTES,
    MAX_TRANSACTION_BYTES,
    as_decimal,
    check_attribute_name,
    check_item_size,
    check_key,
    check_storable,
    check_transaction,
    check_value,
    child_path,
    item_size,
    plain_value,
    size_bound,
)
from agent_memory.memo import Memo
from agent_memory.storage.engine import TABLES, TTL_ATTRIBUTE, Cond, Put, TableName, Update, WriteOp

__all__ = [
    "PLAIN_TABLES",
    "Row",
    "check_conditions",
    "check_table",
    "check_transaction_size",
    "check_update",
    "decode_data",
    "encode_data",
    "holds",
    "index_columns",
    "item_size",
    "json_length",
    "load",
    "row",
    "target",
    "updated",
]


def _find_unencodable(value: Any, where: str) -> str | None:
    """Where the first string that is not valid Unicode (a lone surrogate) sits, for the message."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    children: Any = ()
    if isinstance(value, list | tuple):
        children = enumerate(value)
    elif isinstance(value, dict):
        children = value.items()
    for name, child in children:
        if isinstance(name, str):
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                return child_path(where, name)
        found = _find_unencodable(child, child_path(where, name))
        if found is not None:
            return found
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """DynamoDB's ``=``: equal type and value, numbers compared as decimals (so 3 == 3.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return as_decimal(a) == as_decimal(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a is None and b is None


def _add(base: int | float, delta: int | float) -> int | float:
    if isinstance(base, int) and isinstance(delta, int):
        return base + delta
    return float(DYNAMODB_ARITHMETIC.add(as_decimal(base), as_decimal(delta)))


# --- items and rows --------------------------------------------------------------------------------


class Row(NamedTuple):
    """One item as stored: its JSON text plus the columns the indexes are built on (``gsi``: as
    :func:`index_columns` fills them). A named tuple: one is built per item written."""

    table: TableName
    pk: str
    sk: str
    data: str
    """The JSON of the attributes the key columns do not hold (what the ``data`` column decodes to)."""
    stored: str | bytes
    """The ``data`` column's value: :func:`encode_data` of ``data``."""
    size: int | None
    """DynamoDB's size of the item; None for a small item, not measured (see :func:`row`)."""
    ttl: int | float | None
    gsi: tuple[str | None, str | None, str | None, str | None, str | None, str | None]

    def params(self) -> tuple[Any, ...]:
        return (self.table, self.pk, self.sk, self.stored, self.ttl, *self.gsi)


def check_table(table: Any) -> TableName:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    return cast(TableName, table)


_INDEX_KEYS: Mapping[TableName, tuple[tuple[int, str, str], ...]] = {
    table: tuple((int(index[-1]), f"{index}pk", f"{index}sk") for index in indexes)
    for table, indexes in TABLES.items()
}
"""Per table: (n, pk attribute, sk attribute) of each of its indexes."""

_MAX_PLAIN_NAME = MAX_ATTRIBUTE_NAME_BYTES // 4
"""Attribute names of at most this many characters are within the byte limit whatever they hold."""


def _plain_attributes(item: dict[str, Any], checked: set[int] | None) -> bool:
    """Whether every attribute of ``item`` certainly passes the checks of :func:`row` (names and
    values), told in one walk: :func:`check_attribute_name` and :func:`check_value` then only run
    to name what is wrong. ``checked``: ids of maps and lists found plain before, by the rows of
    the same write (items of one transaction often hold the same map: a signal in each inbox
    entry); those found now are added."""
    for name, value in item.items():
        if type(name) is not str or not name or len(name) > _MAX_PLAIN_NAME:
            return False
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if (kind is dict or kind is list) and checked is not None:
            if id(value) in checked:
                continue
            if not plain_value(value, 0):
                return False
            checked.add(id(value))
            continue
        if not plain_value(value, 0):
            return False
    return True


def row(
    table: TableName,
    item: Any,
    *,
    values_checked: bool = False,
    key: tuple[TableName, str, str] | None = None,
    checked: set[int] | None = None,
    compress: bool = True,
) -> Row:
    """The row for an item. ``values_checked``: every value was already validated (an update
    re-serialises the stored item with checked changes; re-checking every stored value made
    writes to large counter items, such as busy rollups, grow with their size). ``key``: the
    item's key as :func:`target` checked it. ``checked``: see :func:`_plain_attributes`.
    ``compress``: False for an item of counters, written by an update that adds to it (rollups,
    quota counters): such an item is read, changed and rewritten by every write that counts in
    it, and there are few of them, so it is kept as plain JSON (compressing and decompressing a
    busy day's rollup on every decision made a million-decision store's log_decision 1.2x slower
    than a small one's). Records (a decision given its outcome by an update included) are
    compressed, but the items of :data:`PLAIN_TABLES`."""
    if key is not None:
        _, pk, sk = key
    else:
        if not isinstance(item, dict):
            raise TypeError(f"an item must be a dict of attributes, not {type(item).__name__}")
        pk = check_key(item.get("pk"), "pk", MAX_PARTITION_KEY_BYTES)
        sk = check_key(item.get("sk"), "sk", MAX_SORT_KEY_BYTES)
    if not values_checked and not _plain_attributes(item, checked):
        for name, value in item.items():
            check_attribute_name(name)
            check_value(value, name)
    gsi: list[str | None] = [None] * 6
    for n, pk_name, sk_name in _INDEX_KEYS[table]:
        # DynamoDB type-checks an index key attribute whenever it is present, even without its pair.
        gsi_pk = check_key(item[pk_name], pk_name, MAX_PARTITION_KEY_BYTES) if pk_name in item else None
        gsi_sk = check_key(item[sk_name], sk_name, MAX_SORT_KEY_BYTES) if sk_name in item else None
        if gsi_pk is not None and gsi_sk is not None:
            gsi[2 * n - 2], gsi[2 * n - 1] = gsi_pk, gsi_sk
    ttl = item.get(TTL_ATTRIBUTE)
    ttl_column: int | float | None = None
    if isinstance(ttl, float):
        ttl_column = ttl
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        # SQLite integers are 64-bit; a (nonsensical but legal) larger ttl is kept as a real.
        ttl_column = ttl if -(2**63) <= ttl < 2**63 else float(ttl)
    text, raw = _stored_text(item, gsi)
    # DynamoDB's measure of an item is under twice its compact JSON length (numbers, bools and
    # empty containers are the worst cases), so a small item cannot be over the limit: skip the
    # exact measure, which walks every value (it was a fifth of a write's CPU). A transaction's
    # total is measured exactly when the bounds add up to its limit (check_transaction_size).
    small = len(text) < MAX_ITEM_BYTES // 4
    size = None if small else check_item_size(item, f"item {pk!r}/{sk!r}")
    if raw is None:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            where = _find_unencodable(item, "") or "?"
            raise InvalidInput(
                f"attribute '{where}' is not valid Unicode (it has a lone surrogate); send UTF-8 text"
            ) from exc
    stored = _encode(text, raw) if compress and table not in PLAIN_TABLES else text
    columns = index_columns(sk, gsi) if _INDEX_KEYS[table] else _NO_INDEX_COLUMNS
    return Row(table, pk, sk, text, stored, size, ttl_column, columns)


PLAIN_TABLES: frozenset[TableName] = frozenset(("signals",))
"""Tables whose items are stored as plain JSON. Every item of the signals table (a signal, its
inbox entries, its refs) expires with its signal, within 14 days (limits.MAX_SIGNAL_TTL_HOURS), and
is purged then: compressing them saved few bytes for long, and cost a publish to three targets four
compressions and an ack two, a seventh of either tool's work in-process (issue #14: the first
compression of a call finds zlib's code and the primed compressor out of the CPU's caches)."""

_NO_INDEX_COLUMNS: tuple[None, None, None, None, None, None] = (None, None, None, None, None, None)
"""The index columns of an item of a table without indexes (the counters of the state table)."""


def load(data: str | bytes) -> Any:
    return json.loads(decode_data(data))


# --- the data column -------------------------------------------------------------------------------
#
# The data column holds either the item's JSON as TEXT (rows written before schema v5, and items
# whose JSON does not get shorter) or a BLOB: a format byte, the JSON's length in UTF-8 bytes as a
# LEB128 varint, then the JSON compressed by raw DEFLATE primed with a preset dictionary of the
# attribute names and values every item repeats. Small items are most of the store and DEFLATE
# alone barely shortens them; primed, a decision's JSON takes under half its length (issue #14).
# A format byte names its dictionary for ever: a better dictionary is a new format byte, and
# readers keep every earlier one.

_DEFLATE_V1 = 1
_DICTIONARIES: Mapping[int, bytes] = {
    _DEFLATE_V1: (
        # Rarer first: DEFLATE reaches the end of the dictionary with the shortest distances.
        b'"label":"","state":{"version":1,"current":{},"configuration":{},"source_metrics":{},'
        b'"context_performance":{},"updated_by":"","role":"agent","first_seen":"","last_seen":"",'
        b'"pattern_id":"","domain":"general","description":"","conditions":[{"field":"","op":"eq",'
        b'"value":""}],"outcomes":{},"confidence":0.,"success_rate":0.,"sample_size":0,"shared_with":[],'
        b'"status":"active","source":"learned","manual","superseded_by":"","stats":{},"updated_at":"",'
        b'"feedback":{"applied_count":0,"applied_successes":0,"author_applied_count":0,'
        b'"author_applied_successes":0,"access_count":0,"last_accessed":""},"evidence":{'
        b'"measured_confidence":0.,"basis":"applications"},"key":"","bucket":"","n_decisions":0,'
        b'"n_mem":0,"n_outcomes":0,"n_success":0,"q_sum":0.,"q_n":0,"signal_id":"","signal_type":"",'
        b'"source_agent":"","target_agents":[""],"severity":"medium","data":{},"recommended_action":"",'
        b'"processing_status":{"":{"status":"pending","processed_at":"","decision_id":""}},'
        b'"parent_decision_id":"","parent_agent_id":"","patterns_applied":[""],"memory_influenced":true,'
        b'"agent_version":null,"latency_ms":0.,"signals_generated":0,"errors":[],"request_token":"",'
        b'"ttl":1800000000,"agent_id":"","decision_type":"","created_at":"2026-12-01T00:00:00.000000Z",'
        b'"outcome":{"success":false,"quality_score":0.5,"recorded_at":"2026-12-01T00:00:00.000000Z"}}'
        b'{"decision_id":"dec_","agent_id":"","decision_type":"","created_at":"2026-12-01T00:00:00.0000'
        b'00Z","expires_at":"2027-03-01T00:00:00.000000Z","context":{},"reasoning":{},"ttl":1800000000,'
        b'"outcome":{"success":true,"quality_score":0.75,"recorded_at":"2026-12-01T00:00:00.000000Z"}}'
    ),
}
_WBITS = -12
"""Raw DEFLATE (no header or checksum: SQLite has its own), 4 KB window: the dictionary and the
matches of a small item fit, and a compressor's set-up stays cheap."""
_MEM_LEVEL = 4
_MIN_COMPRESSED = 256
"""Shorter JSON is stored as it is: a compressor costs tens of microseconds per item written, and
the small items are mostly counters rewritten on every call (rollups, quotas, the registry), whose
bytes do not grow with the memory (measured: docs/BENCHMARKS.md "Footprint")."""


_PRIMED = zlib.compressobj(
    6, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _DICTIONARIES[_DEFLATE_V1]
)
"""A compressor that has read the dictionary: each item's is a copy (a third cheaper than priming
a new one)."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _header(value: bytes) -> tuple[int, int, int]:
    """(format, JSON length, offset of the compressed bytes) of a BLOB data column."""
    length, shift, i = 0, 0, 1
    while i < len(value) and i <= 5:
        byte = value[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value[0], length, i
        shift += 7
    raise StorageCorrupt("a stored item's data has a damaged header; restore the file from an export")


def encode_data(text: str) -> str | bytes:
    """The data column's value for an item's JSON: compressed when that is shorter."""
    return text if len(text) < _MIN_COMPRESSED else _encode(text, text.encode("utf-8"))


def _encode(text: str, raw: bytes) -> str | bytes:
    """:func:`encode_data` of ``text``, whose UTF-8 is ``raw``."""
    if len(text) < _MIN_COMPRESSED:
        return text
    deflate = _PRIMED.copy()
    packed = b"".join((bytes((_DEFLATE_V1,)), _varint(len(raw)), deflate.compress(raw), deflate.flush()))
    return packed if len(packed) < len(raw) else text


def decode_data(value: str | bytes) -> str | bytes:
    """The JSON an item's data column holds (bytes: UTF-8, as :func:`json.loads` takes it)."""
    if isinstance(value, str):
        return value
    return (_INFLATED.get(value) or _inflated(value))[0]


def _inflated(value: bytes) -> tuple[bytes, bool]:
    """The JSON of a compressed data column, and whether orjson may read it (:func:`_plain`)."""
    raw = _inflate(value)
    found = (raw, _plain(raw))
    if len(raw) <= _INFLATED_MAX_BYTES:
        _INFLATED.keep(value, found)
    return found


_INFLATED_MAX_BYTES = 4096
_INFLATED: Memo[bytes, tuple[bytes, bool]] = Memo(2048)
"""Compressed data columns remembered with their JSON (and whether orjson may read it), for items
of at most :data:`_INFLATED_MAX_BYTES` of JSON, 2,048 of them (at most 16 MB with their keys; a
decision takes about 1 KB): a row's bytes name their JSON for ever, and reads return to the same
rows (an agent's recent decisions on every recall_stm, its patterns on every recall_patterns),
whose inflating was a fifth of a small row's load, and the digit scan of :func:`_plain` a quarter
of what was left of its decoding (issue #14)."""


def _inflate(value: bytes) -> bytes:
    fmt, length, offset = _header(value)
    dictionary = _DICTIONARIES.get(fmt)
    if dictionary is None:
        raise StorageCorrupt(
            f"a stored item's data is in format {fmt}, which this version of agent-memory does not know: "
            "the file was written by a newer agent-memory or is damaged"
        )
    try:
        inflate = zlib.decompressobj(_WBITS, dictionary)
        raw = inflate.decompress(value[offset:])
    except zlib.error as exc:
        raise StorageCorrupt(
            f"a stored item's data does not decompress ({exc}); restore the file from an export"
        ) from exc
    if len(raw) != length or not inflate.eof:
        raise StorageCorrupt("a stored item's data is truncated; restore the file from an export")
    return raw


def json_length(value: str | bytes) -> int:
    """Length of the JSON an item's data column holds, without decoding it (the inline budget)."""
    return len(value) if isinstance(value, str) else _header(value)[1]


# An item is stored as its key columns plus the JSON of its other attributes (rows written by
# earlier versions also repeat the keys in the JSON: reading merges both, so either layout loads).
KEY_COLUMNS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
ITEM_COLUMNS = "data, " + ", ".join(KEY_COLUMNS)
BASE_COLUMNS = "data, pk, sk"
"""What a query selects of the rows of a table without indexes (:func:`item_columns`)."""


def item_columns(table: TableName) -> str:
    """The columns a query of ``table`` selects, for :func:`load_row`: :data:`ITEM_COLUMNS`, or
    :data:`BASE_COLUMNS` for a table without indexes, whose rows never hold index keys
    (:func:`row` fills the index columns of the table's own indexes only): their six NULLs were a
    third of the SQLite time of a page of notes (issue #14)."""
    return ITEM_COLUMNS if TABLES[table] else BASE_COLUMNS


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""One encoder for every row (``json.dumps`` with options builds one per call)."""


def stored_json(item: Mapping[str, Any], gsi: Sequence[str | None]) -> str:
    """The ``data`` column of an item: its attributes but those its key columns hold (``gsi``: the
    six index key columns as filled for the row)."""
    return _stored_text(item, gsi)[0]


def _stored_text(item: Mapping[str, Any], gsi: Sequence[str | None]) -> tuple[str, bytes | None]:
    """:func:`stored_json` and, when orjson encoded it, its UTF-8 (else None: the caller encodes).

    orjson encodes an item several times faster than :mod:`json` and writes the same compact
    text (UTF-8, no escaping beyond JSON's), but for floats with an exponent (``1e-05`` is
    ``1e-5``, ``1e+16`` is ``1e16``: the same number to every reader). What it refuses (integers
    beyond 64 bits, which the item rules allow up to 38 digits; a lone surrogate) is encoded by
    :data:`_ENCODER` as before. NaN and infinity, which orjson would write as null, never get
    here: the item rules refuse them first (``row`` checks every value it was not told is checked,
    and updates check what they set and add)."""
    rest = dict(item)  # (a copy less a few keys: a third of the time of a filtering comprehension)
    rest.pop("pk", None)
    rest.pop("sk", None)
    if any(gsi):
        for name, value in zip(KEY_COLUMNS[2:], gsi, strict=True):
            if value:
                rest.pop(name, None)
    try:
        raw = orjson.dumps(rest)
    except TypeError:  # orjson.JSONEncodeError
        return _ENCODER.encode(rest), None
    return raw.decode("utf-8"), raw


def index_columns(
    sk: str, gsi: Sequence[str | None]
) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None]:
    """The six index key columns of a row, from the item's index keys (``gsi``: both halves of an
    index key or neither). An index sort key equal to the item's sort key is left NULL: the
    indexes are built on ``COALESCE(gsiNsk, sk)`` (schema v5), and most decisions' two of three
    index sort keys are their sort key."""
    out = list(gsi)
    for i in (1, 3, 5):
        if out[i] == sk and out[i - 1] is not None:
            out[i] = None
    return (out[0], out[1], out[2], out[3], out[4], out[5])


_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19
"""Nineteen digits in a row (a text mapped by :data:`_DIGITS_AS_ZERO`): where the JSON may hold an
integer beyond 64 bits, or a string or float with such a run, which is harmless to decode the slower
way. ``bytes.translate`` and ``in`` find it several times faster than a regular expression."""


def load_json(data: str | bytes) -> Any:
    """The value of a stored JSON text, exactly as :func:`json.loads` reads it.

    orjson decodes a row several times faster, and reads every value json does the same way but
    integers beyond 64 bits, which it turns into floats (the item rules allow 38 digits): a text
    with a run of 19 digits is read by :mod:`json`, as is one orjson refuses (``NaN``, a lone
    surrogate: no row is written with them, but rows of other writers are read as before)."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
    except UnicodeEncodeError:
        return json.loads(data)
    return _loads(raw, _plain(raw), data)


def _plain(raw: bytes) -> bool:
    """Whether orjson reads the JSON ``raw`` as :mod:`json` does, as far as a scan tells: no run
    of :data:`_LONG_RUN` digits (see :func:`load_json`)."""
    return _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO)


def _loads(raw: bytes, plain: bool, data: str | bytes) -> Any:
    """The value of the JSON ``data`` (``raw``: its UTF-8), by orjson when ``plain`` and it takes
    the text, else by :mod:`json`."""
    if plain:
        try:
            return orjson.loads(raw)
        except ValueError:  # orjson.JSONDecodeError, for any text it does not take
            pass
    return json.loads(data)


def load_row(found: Sequence[Any]) -> dict[str, Any]:
    """An item from a row selected as :data:`ITEM_COLUMNS` (or :data:`BASE_COLUMNS`).

    Written out column by column (a loop over the key columns with ``zip`` cost a third of a
    small row's load, and a query page loads one per item): the key columns that are set, in
    their order, then each index sort key left NULL as the item's sort key (see
    :func:`index_columns`)."""
    data = found[0]
    if type(data) is str:
        item: dict[str, Any] = load_json(data)
    else:  # (decode_data and load_json, the digit scan remembered with the JSON)
        raw, plain = _INFLATED.get(data) or _inflated(data)
        item = _loads(raw, plain, raw)
    if len(found) == 3:  # BASE_COLUMNS: no index columns
        item["pk"] = found[1]
        item["sk"] = found[2]
        return item
    pk, sk, g1pk, g1sk, g2pk, g2sk, g3pk, g3sk = found[1:9]
    if pk is not None:
        item["pk"] = pk
    if sk is not None:
        item["sk"] = sk
    if g1pk is not None:
        item["gsi1pk"] = g1pk
    if g1sk is not None:
        item["gsi1sk"] = g1sk
    if g2pk is not None:
        item["gsi2pk"] = g2pk
    if g2sk is not None:
        item["gsi2sk"] = g2sk
    if g3pk is not None:
        item["gsi3pk"] = g3pk
    if g3sk is not None:
        item["gsi3sk"] = g3sk
    if g1sk is None and g1pk is not None:
        item["gsi1sk"] = sk
    if g2sk is None and g2pk is not None:
        item["gsi2sk"] = sk
    if g3sk is None and g3pk is not None:
        item["gsi3sk"] = sk
    return item


# --- conditions and updates ------------------------------------------------------------------------

_ATTR_KINDS = ("attr_exists", "attr_not_exists", "eq", "at_most")
_KINDS = ("item_exists", "item_not_exists", *_ATTR_KINDS)


def check_conditions(conditions: Sequence[Cond]) -> None:
    for cond in conditions:
        kind = cond.kind if type(cond) is Cond else None
        if kind in _PRESENCE_KINDS:
            continue  # (the common case: nothing more to check)
        if not isinstance(cond, Cond) or cond.kind not in _KINDS:
            raise ValueError(f"unknown condition {cond!r}")
        if cond.kind in _ATTR_KINDS and (not isinstance(cond.attr, str) or not cond.attr):
            raise ValueError(f"condition {cond.kind} needs an attribute name")
        if cond.kind == "eq":
            check_value(cond.value, f"{cond.attr} (condition value)")
        if cond.kind == "at_most" and (isinstance(cond.value, bool) or not isinstance(cond.value, int)):
            raise ValueError(f"condition at_most on {cond.attr} needs an integer, not {cond.value!r}")


_PRESENCE_KINDS = frozenset(("item_exists", "item_not_exists"))


def holds(cond: Cond, item: Mapping[str, Any] | None) -> bool:
    if cond.kind == "item_exists":
        return item is not None
    if cond.kind == "item_not_exists":
        return item is None
    attr = cast(str, cond.attr)
    if cond.kind == "attr_exists":
        return item is not None and attr in item
    if cond.kind == "attr_not_exists":
        return item is None or attr not in item
    if cond.kind == "at_most":
        current = item.get(attr, 0) if item is not None else 0
        return isinstance(current, int | float) and current <= cond.value
    return item is not None and attr in item and same(item[attr], cond.value)


def check_update(op: Update) -> None:
    if _plain_update(op):
        return
    seen: set[str] = set()
    for group in (op.set, op.add, op.remove):
        for name in group:
            if not isinstance(name, str) or not name:
                raise ValueError(f"attribute names must be non-empty strings, not {name!r}")
            if name in ("pk", "sk"):
                raise ValueError(f"cannot update key attribute '{name}'; write a new item instead")
            if name in seen:
                raise ValueError(f"attribute '{name}' appears in more than one of set, add and remove")
            seen.add(name)
    for name, value in op.set.items():
        check_attribute_name(name)
        check_value(value, name)
    for name, delta in op.add.items():
        if not _is_number(delta):
            raise TypeError(f"add needs a number for attribute '{name}', not {delta!r}")
        check_storable(delta, name)


def _plain_update(op: Update) -> bool:
    """Whether ``op`` certainly passes :func:`check_update` (the common case, told in one pass):
    short string names, none of them a key or in two groups, plain values and numbers."""
    sets, adds, removes = op.set, op.add, op.remove
    for group in (sets, adds, removes):
        for name in group:
            if type(name) is not str or not name or len(name) > _MAX_PLAIN_NAME or name in _KEY_NAMES:
                return False
    if sets and adds and not sets.keys().isdisjoint(adds):
        return False
    if removes and len({*sets, *adds, *removes}) != len(sets) + len(adds) + len(removes):
        return False
    for value in sets.values():
        kind = type(value)
        if not (kind is str or kind is bool or value is None or plain_value(value, 0)):
            return False
    for delta in adds.values():
        kind = type(delta)
        if kind is int:
            if not -_PLAIN_INT < delta < _PLAIN_INT:
                return False
        elif kind is not float or not plain_value(delta, 0):
            return False
    return True


_KEY_NAMES = frozenset(("pk", "sk"))
_PLAIN_INT = 10**MAX_SIGNIFICANT_DIGITS
"""Integers of fewer digits are stored as they are (item_rules: 38 significant digits)."""


def updated(op: Update, current: Mapping[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = dict(current) if current is not None else {"pk": op.pk, "sk": op.sk}
    item.update(op.set)
    for name, delta in op.add.items():
        base = item.get(name, 0)
        if type(base) is int and type(delta) is int and -_PLAIN_INT < base + delta < _PLAIN_INT:
            item[name] = base + delta  # (the common case: a counter, storable as it is)
            continue
        if not _is_number(base):
            # The stored data, not the request, decides this: DynamoDB answers ValidationException.
            raise InvalidInput(
                f"cannot add to attribute '{name}': it holds a {type(base).__name__}, not a number"
            )
        item[name] = _add(base, delta)
        check_storable(item[name], name)  # a sum can leave the storable range
    for name in op.remove:
        item.pop(name, None)
    return item


def target(op: WriteOp) -> tuple[TableName, str, str]:
    table = check_table(op.table)
    if isinstance(op, Put):
        if not isinstance(op.item, dict):
            raise TypeError(f"an item must be a dict of attributes, not {type(op.item).__name__}")
        return (
            table,
            check_key(op.item.get("pk"), "pk", MAX_PARTITION_KEY_BYTES),
            check_key(op.item.get("sk"), "sk", MAX_SORT_KEY_BYTES),
        )
    return (
        table,
        check_key(op.pk, "pk", MAX_PARTITION_KEY_BYTES),
        check_key(op.sk, "sk", MAX_SORT_KEY_BYTES),
    )


_KEYS_BOUND = 8 * (MAX_PARTITION_KEY_BYTES + 16)
"""More than the key attributes of an item (names and values) can take."""


def check_transaction_size(ops: Sequence[WriteOp], put_rows: Mapping[int, Row]) -> None:
    # Measured as the DynamoDB engine measures it (an update counts what it sends), so both
    # backends refuse the same transactions. The bounds of small rows are summed first; only a
    # total over the limit is measured exactly.
    if _total(ops, put_rows, exact=False) > MAX_TRANSACTION_BYTES:
        check_transaction(len(ops), _total(ops, put_rows, exact=True))


def _total(ops: Sequence[WriteOp], put_rows: Mapping[int, Row], *, exact: bool) -> int:
    total = 0
    for i, op in enumerate(ops):
        if isinstance(op, Put):
            size = put_rows[i].size
            if size is None and exact:
                size = item_size(op.item)
            # An unmeasured row's bound: twice its JSON, plus its keys (see row()).
            total += size if size is not None else 2 * len(put_rows[i].data) + _KEYS_BOUND
        elif isinstance(op, Update) and exact:
            total += item_size({"pk": op.pk, "sk": op.sk, **op.set, **op.add})
        elif isinstance(op, Update):
            total += size_bound(op.pk) + size_bound(op.sk) + 4 + size_bound(op.set) + size_bound(op.add)
        else:
            total += item_size({"pk": op.pk, "sk": op.sk})
    return total
