"""The producer retries only what failed and never drops a record silently."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from airlake.producer import MAX_RECORDS_PER_CALL, Producer, batches


class FlakyKinesis:
    """Fails chosen entries of chosen calls, like a real stream near its shard limits."""

    def __init__(
        self, fail_entries: dict[int, set[int]] | None = None, throttle_calls: set[int] = frozenset()
    ) -> None:  # type: ignore[assignment]
        self.fail_entries = fail_entries or {}
        self.throttle_calls = throttle_calls
        self.calls: list[list[bytes]] = []
        self.stored: list[bytes] = []

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append([entry["Data"] for entry in kwargs["Records"]])
        if call in self.throttle_calls:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutRecords")
        results = []
        for i, entry in enumerate(kwargs["Records"]):
            if i in self.fail_entries.get(call, set()):
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
                )
            else:
                self.stored.append(entry["Data"])
                results.append({"SequenceNumber": str(len(self.stored)), "ShardId": "shardId-000000000000"})
        failed = sum("ErrorCode" in r for r in results)
        return {"FailedRecordCount": failed, "Records": results}


def records(n: int) -> list[tuple[str, bytes]]:
    return [(f"aq-{i % 3}", f'{{"n":{i}}}'.encode()) for i in range(n)]


def test_a_partial_failure_resends_only_the_failed_entries() -> None:
    kinesis = FlakyKinesis(fail_entries={0: {1, 3}})
    sleeps: list[float] = []
    producer = Producer(kinesis, "readings", sleep=sleeps.append)

    stats = producer.send(records(5))

    assert kinesis.calls[1] == [b'{"n":1}', b'{"n":3}']
    assert sorted(kinesis.stored) == sorted(data for _, data in records(5))
    assert (stats.sent, stats.calls, stats.retried_entries, stats.failed) == (5, 2, 2, [])
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1


def test_a_throttled_call_is_retried_whole_with_growing_backoff() -> None:
    kinesis = FlakyKinesis(throttle_calls={0, 1})
    sleeps: list[float] = []

    stats = Producer(kinesis, "readings", sleep=sleeps.append, base_delay_s=1.0, max_delay_s=100).send(
        records(3)
    )

    assert (stats.sent, stats.throttled_calls, len(kinesis.calls)) == (3, 2, 3)
    assert len(sleeps) == 2 and sleeps[0] <= 2.0 and sleeps[1] <= 4.0


def test_entries_that_never_succeed_are_reported_not_dropped() -> None:
    kinesis = FlakyKinesis(fail_entries={call: {0} for call in range(10)})

    stats = Producer(kinesis, "readings", max_attempts=3, sleep=lambda _: None).send(records(2))

    assert stats.sent == 1
    assert stats.failed == [("aq-0", b'{"n":0}', "ProvisionedThroughputExceededException")]


def test_an_error_that_is_not_a_throttle_is_raised() -> None:
    class Broken:
        def put_records(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "PutRecords")

    with pytest.raises(ClientError):
        Producer(Broken(), "nope", sleep=lambda _: None).send(records(1))


def test_batches_respect_the_count_and_byte_limits_and_reject_oversized_records() -> None:
    rejected: list[tuple[str, bytes, str]] = []
    big = b"x" * (1024 * 1024)
    items = [*records(1001), ("aq-9", big), *[("aq-1", b"y" * 1_000_000)] * 6]

    sizes = [len(batch) for batch in batches(items, rejected)]

    # 1 small record + 5 records of ~1 MB fit in 5 MiB; the sixth starts a new call.
    assert sizes == [MAX_RECORDS_PER_CALL, MAX_RECORDS_PER_CALL, 6, 1]
    assert rejected == [("aq-9", big, "RecordTooLarge")]
