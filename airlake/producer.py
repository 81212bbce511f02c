"""A Kinesis producer that loses nothing: PutRecords batching with per-entry retries.

* Batches hold at most 500 records and 5 MiB (the PutRecords limits), keyed by `device_id` so
  each device's readings stay ordered within its shard.
* An HTTP 200 reply can still carry `FailedRecordCount > 0`: only the failed entries are sent
  again, with exponential backoff and full jitter. A whole-call throttle
  (ProvisionedThroughputExceededException / LimitExceededException) retries the whole batch.
* A retry after a lost reply can write a record twice; that is fine by design: the reading's
  idempotency key (device_id, ts, seq) removes the copy downstream.
* After `max_attempts` the remaining entries are returned as failures, never dropped silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

_T = TypeVar("_T")
MAX_RECORDS_PER_CALL: Final = 500
MAX_BYTES_PER_CALL: Final = 5 * 1024 * 1024
MAX_RECORD_BYTES: Final = 1024 * 1024  # data + partition key
RETRYABLE_CALL_ERRORS: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "InternalFailure",
    }
)


class KinesisClient(Protocol):
    def put_records(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(slots=True)
class ProducerStats:
    sent: int = 0  # records acknowledged by Kinesis
    calls: int = 0
    retried_entries: int = 0  # entry-level retries after a partial failure
    throttled_calls: int = 0  # whole calls rejected and retried
    failed: list[tuple[str, bytes, str]] = field(default_factory=list)  # (key, data, error) given up on


class Producer:
    def __init__(
        self,
        client: KinesisClient,
        stream_name: str,
        *,
        max_attempts: int = 8,
        base_delay_s: float = 0.05,
        max_delay_s: float = 5.0,
        records_per_second: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._stream = stream_name
        self._max_attempts = max_attempts
        self._base = base_delay_s
        self._cap = max_delay_s
        self._rate = records_per_second
        self._sleep = sleep
        self._rng = rng or random.Random(0)
        self.stats = ProducerStats()
        self._window_start = time.monotonic()
        self._window_count = 0

    def send(
        self, records: Iterable[tuple[str, bytes]], progress: Callable[[int], None] | None = None
    ) -> ProducerStats:
        """Send (partition_key, data) pairs; returns cumulative stats."""
        for batch in batches(records, self.stats.failed):
            self._throttle(len(batch))
            self._put_with_retries(batch)
            if progress is not None:
                progress(len(batch))
        return self.stats

    def put_batch(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        """Put (partition_key, data) pairs in as many PutRecords calls as the limits need, with
        the same retries as `send`; return the indexes of the records that still failed (a record
        over 1 MiB fails without a call). For callers that must answer per record, such as a
        Lambda reporting batch item failures: the failures are returned, not kept in `stats`."""
        failed: list[int] = []
        for chunk in _chunks(range(len(records)), lambda i: _size(records[i]), failed.append):
            pending, _error = self._put_entries([records[i] for i in chunk])
            failed.extend(chunk[j] for j in pending)
        return sorted(failed)

    def _put_with_retries(self, batch: list[tuple[str, bytes]]) -> None:
        pending, last_error = self._put_entries(batch)
        self.stats.failed.extend((batch[i][0], batch[i][1], last_error) for i in pending)

    def _put_entries(self, batch: list[tuple[str, bytes]]) -> tuple[list[int], str]:
        """One batch with retries: the positions in `batch` that never succeeded, and the last
        error code. Only failed entries are sent again; a throttled call is retried whole."""
        pending = list(range(len(batch)))
        last_error = "NotAttempted"
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(self._backoff(attempt))
            entries = [{"Data": batch[i][1], "PartitionKey": batch[i][0]} for i in pending]
            self.stats.calls += 1
            try:
                reply = self._client.put_records(StreamName=self._stream, Records=entries)
            except Exception as exc:
                code = _error_code(exc)
                if code not in RETRYABLE_CALL_ERRORS:
                    raise
                self.stats.throttled_calls += 1
                last_error = code
                continue
            results = reply.get("Records", [])
            failed = [i for i, result in zip(pending, results, strict=True) if "ErrorCode" in result]
            self.stats.sent += len(pending) - len(failed)
            if not failed:
                return [], last_error
            self.stats.retried_entries += len(failed)
            last_error = next(r["ErrorCode"] for r in results if "ErrorCode" in r)
            pending = failed
        return pending, last_error

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return self._rng.uniform(0, min(self._cap, self._base * 2**attempt))

    def _throttle(self, count: int) -> None:
        if not self._rate:
            return
        self._window_count += count
        expected = self._window_count / self._rate
        elapsed = time.monotonic() - self._window_start
        if expected > elapsed:
            self._sleep(expected - elapsed)


def batches(
    records: Iterable[tuple[str, bytes]], rejected: list[tuple[str, bytes, str]]
) -> Iterator[list[tuple[str, bytes]]]:
    """Group records into PutRecords calls of <= 500 records and <= 5 MiB.

    A record Kinesis can never accept (over 1 MiB) goes to `rejected`, not into a batch.
    """
    return _chunks(records, _size, lambda record: rejected.append((*record, "RecordTooLarge")))


def _size(record: tuple[str, bytes]) -> int:
    """What a record counts against the PutRecords limits: data plus partition key."""
    return len(record[1]) + len(record[0].encode())


def _chunks(
    items: Iterable[_T], size_of: Callable[[_T], int], reject: Callable[[_T], None]
) -> Iterator[list[_T]]:
    """Lazily group items (records, or indexes of records) into PutRecords-sized calls."""
    batch: list[_T] = []
    size = 0
    for item in items:
        record_size = size_of(item)
        if record_size > MAX_RECORD_BYTES:
            reject(item)
            continue
        if batch and (len(batch) == MAX_RECORDS_PER_CALL or size + record_size > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += record_size
    if batch:
        yield batch


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
