"""The one table from backend failure codes to the error tree, and the per-call deadline.

DynamoDB failures are classified by their error code (``Error.Code`` of a ClientError, or a
transaction's ``CancellationReasons[].Code``), SQLite failures by their primary result code
(``sqlite3.Error.sqlite_errorcode & 0xFF``). Never by the words of a message: those change between
versions and emulators. Each entry carries text that is true for that cause and says what to do.

Programming errors (a closed connection used, bad SQL, wrong types) are not in the table: they are
bugs, and stay the exceptions Python raised.

The deadline every engine call runs under is in :mod:`agent_memory.deadline`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from agent_memory.errors import (
    AgentMemoryError,
    InvalidInput,
    StorageBusy,
    StorageCorrupt,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    StorageUnreachable,
    Throttled,
    TransactionConflict,
)


@dataclass(frozen=True)
class Fault:
    """What a backend failure code means for the caller."""

    error: type[AgentMemoryError]
    cause: str
    """What happened, in words true for this code."""
    action: str
    """What the caller (transient) or the operator (permanent) should do."""
    retry_after_s: float | None = None


_RETRY_SOON = "retry in a few seconds"
_THROTTLED = Fault(
    Throttled,
    "DynamoDB kept throttling the requests (over the table's capacity) after the client's retries",
    "retry in a few seconds; if it persists, raise the table's capacity or use on-demand mode",
    2.0,
)
_RESTORE = (
    "the memory must be restored: stop the servers, move the file aside, and import the last export "
    "(agent-memory import) into a new file"
)

# DynamoDB error codes (ClientError ``Error.Code``) and transaction cancellation reason codes.
DYNAMODB_FAULTS: Mapping[str, Fault] = {
    "ProvisionedThroughputExceededException": _THROTTLED,
    "ThrottlingException": _THROTTLED,
    "RequestLimitExceeded": _THROTTLED,
    "ThrottlingError": _THROTTLED,
    "ProvisionedThroughputExceeded": _THROTTLED,
    "TransactionConflictException": Fault(
        TransactionConflict,
        "the item is being changed by a concurrent transaction",
        "nothing was written; retry the call",
        0.1,
    ),
    "TransactionConflict": Fault(
        TransactionConflict,
        "the transaction kept conflicting with concurrent writes to the same items",
        "nothing was written; retry the call",
        0.1,
    ),
    "TransactionInProgressException": Fault(
        StorageBusy, "a transaction with the same token is still in progress", _RETRY_SOON, 1.0
    ),
    "InternalServerError": Fault(
        StorageUnreachable, "DynamoDB answered with internal server errors after retries", _RETRY_SOON, 2.0
    ),
    "ServiceUnavailable": Fault(
        StorageUnreachable, "DynamoDB reported itself unavailable after retries", _RETRY_SOON, 2.0
    ),
    "ValidationException": Fault(InvalidInput, "DynamoDB refused the request as invalid", "change the input"),
    "ValidationError": Fault(InvalidInput, "DynamoDB refused the request as invalid", "change the input"),
    "ItemCollectionSizeLimitExceededException": Fault(
        StorageFull,
        "the item collection reached DynamoDB's size limit",
        "the operator must delete records of this agent or move it to a new table",
    ),
    "ItemCollectionSizeLimitExceeded": Fault(
        StorageFull,
        "the item collection reached DynamoDB's size limit",
        "the operator must delete records of this agent or move it to a new table",
    ),
    "ResourceNotFoundException": Fault(
        StorageUnavailable,
        "the table does not exist",
        "the operator must create the tables (agent-memory create-tables) or fix the table prefix",
    ),
    "ResourceInUseException": Fault(
        StorageBusy, "the table is being created, updated or deleted", _RETRY_SOON, 5.0
    ),
    **{
        code: Fault(
            StorageUnavailable,
            "DynamoDB rejected the AWS credentials or their permissions",
            "the operator must check the credentials and the IAM policy for the tables",
        )
        for code in (
            "UnrecognizedClientException",
            "AccessDeniedException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "MissingAuthenticationTokenException",
            "IncompleteSignatureException",
        )
    },
}

_LOCKED = Fault(
    StorageBusy,
    "another process held the database's write lock for too long",
    "retry shortly; if it persists, find the process holding a long write transaction",
    1.0,
)
# SQLite primary result codes (https://sqlite.org/rescode.html).
SQLITE_FAULTS: Mapping[int, Fault] = {
    sqlite3.SQLITE_BUSY: _LOCKED,
    sqlite3.SQLITE_LOCKED: _LOCKED,
    sqlite3.SQLITE_FULL: Fault(
        StorageFull,
        "the disk holding the database is full",
        "reads still work; the operator must free disk space, and writes resume by themselves",
    ),
    sqlite3.SQLITE_CORRUPT: Fault(StorageCorrupt, "the database file is damaged (malformed)", _RESTORE),
    sqlite3.SQLITE_NOTADB: Fault(StorageCorrupt, "the file is not an SQLite database", _RESTORE),
    sqlite3.SQLITE_READONLY: Fault(
        StorageReadOnly,
        "the database file cannot be written (read-only file, directory or file system)",
        "the operator must make the file and its directory writable by the server",
    ),
    sqlite3.SQLITE_PERM: Fault(
        StorageReadOnly,
        "the operating system denied access to the database file",
        "the operator must give the server read and write access to the file and its directory",
    ),
    sqlite3.SQLITE_CANTOPEN: Fault(
        StorageUnavailable,
        "the database file (or its WAL) cannot be opened",
        "the operator must check that the file and its directory exist and are accessible",
    ),
    sqlite3.SQLITE_IOERR: Fault(
        StorageUnavailable,
        "the operating system reported an I/O error on the database file",
        "the operator must check the disk; reads and writes fail until it is fixed",
    ),
    sqlite3.SQLITE_NOMEM: Fault(StorageBusy, "SQLite ran out of memory", _RETRY_SOON, 5.0),
    sqlite3.SQLITE_PROTOCOL: _LOCKED,
}


def _build(fault: Fault, message: str) -> AgentMemoryError:
    error = fault.error(message)
    if fault.retry_after_s is not None:
        error.retry_after_s = fault.retry_after_s
    return error


def dynamodb_error(code: str, detail: str, what: str, where: str) -> AgentMemoryError:
    """The error for a DynamoDB failure ``code`` of ``what`` at ``where`` (``detail``: its text)."""
    fault = DYNAMODB_FAULTS.get(code)
    if fault is None:
        return StorageUnavailable(f"{what} failed at {where}: {code}: {detail}")
    if fault.error is InvalidInput:
        return InvalidInput(f"{where} refused {what}: {detail}")
    return _build(fault, f"{what} failed at {where}: {fault.cause} ({code}); {fault.action}")


def is_fault_code(code: str, error: type[AgentMemoryError]) -> bool:
    fault = DYNAMODB_FAULTS.get(code)
    return fault is not None and issubclass(fault.error, error)


def sqlite_result_code(exc: BaseException) -> int | None:
    """The primary result code of an sqlite3 error, or None when it carries none."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def sqlite_fault(exc: BaseException) -> Fault | None:
    code = sqlite_result_code(exc)
    return SQLITE_FAULTS.get(code) if code is not None else None


def sqlite_error(exc: sqlite3.Error, path: object) -> AgentMemoryError | None:
    """The error for a failed SQLite call on ``path``; None for a programming error (re-raise it)."""
    if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError | sqlite3.NotSupportedError):
        return None
    fault = sqlite_fault(exc)
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    if fault is None:
        return StorageUnavailable(f"the SQLite database {path} failed: {exc} ({name})")
    return _build(fault, f"the SQLite database {path} failed: {fault.cause} ({name}); {fault.action}")
