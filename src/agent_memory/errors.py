"""One error tree for the whole package.

Storage backends translate their own failures (botocore ClientError, sqlite3 errors) into these at
the storage edge; the MCP layer maps them, in one place, to tool errors whose text tells the model
what to change. Every message is written for the caller: what was wrong and what to do next.
"""

from __future__ import annotations

from typing import Any


class AgentMemoryError(Exception):
    """Base of every error this package raises on purpose."""

    code = "error"
    retryable: bool = False
    """Whether the same call may succeed if retried unchanged (a transient fault or a lost race)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        """For a retryable error: how long to wait before retrying, when known."""


class InvalidInput(AgentMemoryError):
    """The caller sent something the memory cannot store or answer (bad shape, range, size)."""

    code = "invalid_input"


class LimitExceeded(InvalidInput):
    """A size or count limit (item size, targets per signal, page size) was exceeded."""

    code = "limit_exceeded"


class QuotaExceeded(AgentMemoryError):
    """The write would take the calling agent past one of its storage quotas (live decisions,
    notes, signals, patterns, checkpoints, stored bytes; see docs/SECURITY.md). Not retryable as
    is: the message names the quota, the current use and the limit, and what frees room."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, quota: str, used: int, limit: int) -> None:
        super().__init__(message)
        self.quota = quota
        self.used = used
        self.limit = limit


class NotFound(AgentMemoryError):
    """The record does not exist, has expired, or is not visible to the caller.

    Not-visible and not-found are deliberately the same error: an agent must not learn that
    another agent's private record exists.
    """

    code = "not_found"


class AccessDenied(AgentMemoryError):
    """The caller's role does not allow this operation (e.g. reading another agent's history)."""

    code = "access_denied"


class Conflict(AgentMemoryError):
    """A conditional write lost: the record exists with other content, or was changed meanwhile.

    ``current`` carries the record as it is now (a pydantic model or None), so the caller can
    re-read nothing and retry from it.
    """

    code = "conflict"
    retryable = True

    def __init__(self, message: str, current: Any = None) -> None:
        super().__init__(message)
        self.current = current


class VersionConflict(Conflict):
    """An update named an ``expected_version`` that is no longer the current one."""

    code = "version_conflict"

    def __init__(self, message: str, current: Any = None, current_version: int | None = None) -> None:
        super().__init__(message, current)
        self.current_version = current_version


class RateLimited(AgentMemoryError):
    """The caller sent more calls than its rate limit allows; ``retry_after_s`` says when to retry."""

    code = "rate_limited"
    retryable = True


class TransactionConflict(Conflict):
    """A transaction kept being cancelled because concurrent writes touched the same items.

    Engines retry these themselves a bounded number of times before raising; nothing was written.
    """

    code = "conflict"

    def __init__(self, message: str, *, retry_after_s: float | None = 0.1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageUnavailable(AgentMemoryError):
    """The storage failed. The base of every storage fault; raised as itself only for a fault the
    backend did not classify (then the text carries the backend's own words).

    Transient subclasses (``retryable``, with ``retry_after_s``): :class:`Throttled`,
    :class:`StorageBusy`, :class:`StorageUnreachable`. Permanent ones, whose text says what the
    operator must do: :class:`StorageFull`, :class:`StorageCorrupt`, :class:`StorageReadOnly`.
    """

    code = "storage_unavailable"
    retryable = False


class Throttled(StorageUnavailable):
    """DynamoDB kept refusing requests for capacity after the client's own retries."""

    code = "throttled"
    retryable = True


class StorageBusy(StorageUnavailable):
    """The store is held by other writers (an SQLite lock held too long, a DynamoDB transaction in
    progress on the item)."""

    code = "storage_busy"
    retryable = True


class StorageUnreachable(StorageUnavailable):
    """The store did not answer in time: connection refused, reset or timed out, or the call's
    deadline passed."""

    code = "storage_unreachable"
    retryable = True


class StorageFull(StorageUnavailable):
    """The disk (or DynamoDB item collection) is full: writes fail until space is freed.

    Reads still work. On SQLite, writes resume by themselves once space is freed."""

    code = "storage_full"


class StorageCorrupt(StorageUnavailable):
    """The stored file is damaged: writes are refused so nothing more is lost; restore from an
    export."""

    code = "storage_corrupt"


class StorageReadOnly(StorageUnavailable):
    """The store cannot be written (read-only file or file system, missing permission)."""

    code = "storage_read_only"


class ConfigurationError(AgentMemoryError):
    """Settings are invalid or the configured backend cannot start. Raised at start-up."""

    code = "configuration_error"
