"""The local event source mapping behaves as Lambda's Kinesis mapping is documented to."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

from airlake.local.esm import EventSourceMapping, MappingSettings

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/airlake-dev-readings"
ARRIVAL = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


class FakeKinesis:
    """One or more shards of records with consecutive sequence numbers, read like GetRecords."""

    def __init__(self, shards: dict[str, list[bytes]], arrival: datetime = ARRIVAL) -> None:
        self.shards = {
            shard: [
                {
                    "SequenceNumber": f"{i + 1:05d}",
                    "Data": data,
                    "PartitionKey": "aq-1",
                    "ApproximateArrivalTimestamp": arrival,
                }
                for i, data in enumerate(datas)
            ]
            for shard, datas in shards.items()
        }

    def list_shards(self, StreamName: str) -> dict[str, Any]:
        return {"Shards": [{"ShardId": shard} for shard in self.shards]}

    def get_shard_iterator(
        self, StreamName: str, ShardId: str, ShardIteratorType: str, **kw: Any
    ) -> dict[str, Any]:
        start = 0 if ShardIteratorType == "TRIM_HORIZON" else int(kw["StartingSequenceNumber"])
        return {"ShardIterator": f"{ShardId}|{start}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, start = ShardIterator.split("|")
        records = self.shards[shard][int(start) : int(start) + Limit]
        return {
            "Records": [dict(r) for r in records],
            "NextShardIterator": f"{shard}|{int(start) + len(records)}",
        }


class Recorder:
    """A handler that records what it saw and fails as told."""

    def __init__(self, fail: Any = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        data = [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]
        self.batches.append(data)
        if self.fail is not None:
            result: dict[str, Any] = self.fail(event, len(self.batches))
            return result
        return {"batchItemFailures": []}


def mapping(
    kinesis: FakeKinesis, handler: Any, **settings: Any
) -> tuple[EventSourceMapping, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    defaults: dict[str, Any] = {"batch_size": 4, "max_retry_attempts": 2, "max_record_age_s": 3600}
    esm = EventSourceMapping(
        kinesis,
        "airlake-dev-readings",
        ARN,
        handler,
        "calibrate",
        MappingSettings(**{**defaults, **settings}),
        on_failure=sent.append,
        clock=lambda: ARRIVAL.timestamp() + 10,
    )
    return esm, sent


def records(n: int) -> list[bytes]:
    return [f"r{i}".encode() for i in range(n)]


def test_batches_follow_shard_order_and_the_checkpoint_moves_past_each_success() -> None:
    handler = Recorder()
    esm, sent = mapping(FakeKinesis({"shardId-000000000000": records(10)}), handler)

    stats = esm.drain()

    assert handler.batches == [["r0", "r1", "r2", "r3"], ["r4", "r5", "r6", "r7"], ["r8", "r9"]]
    assert (stats.invocations, stats.records_succeeded, sent) == (3, 10, [])


def test_the_event_is_shaped_as_lambda_delivers_kinesis_records() -> None:
    events: list[dict[str, Any]] = []
    esm, _ = mapping(FakeKinesis({"shardId-000000000001": [b'{"a":1}']}), lambda e, c: events.append(e))

    esm.drain()

    assert events == [
        {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": "aq-1",
                        "sequenceNumber": "00001",
                        "data": "eyJhIjoxfQ==",
                        "approximateArrivalTimestamp": ARRIVAL.timestamp(),
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": "shardId-000000000001:00001",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/calibrate-role",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": ARN,
                }
            ]
        }
    ]


def test_a_partial_failure_resumes_from_the_lowest_failed_sequence_number() -> None:
    #   batch 1: r0 r1 r2 r3   -> reports r3 and r1 failed
    #   batch 2: r1 r2 r3      (everything from the lowest failure is delivered again)
    #   batch 3: r4 r5
    def fail(event: dict[str, Any], call: int) -> dict[str, Any]:
        seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        return {
            "batchItemFailures": [{"itemIdentifier": seqs[3]}, {"itemIdentifier": seqs[1]}]
            if call == 1
            else []
        }

    handler = Recorder(fail)
    esm, sent = mapping(FakeKinesis({"s": records(6)}), handler)

    stats = esm.drain()

    assert handler.batches == [["r0", "r1", "r2", "r3"], ["r1", "r2", "r3"], ["r4", "r5"]]
    assert (stats.partial_failures, stats.records_succeeded, sent) == (1, 6, [])


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    def fail(event: dict[str, Any], call: int) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": "nope"}] if call == 1 else []}

    handler = Recorder(fail)
    esm, _ = mapping(FakeKinesis({"s": records(3)}), handler)

    esm.drain()

    assert handler.batches == [["r0", "r1", "r2"], ["r0", "r1", "r2"]]


def test_a_poison_record_is_isolated_by_bisection_then_sent_to_the_on_failure_destination() -> None:
    def fail(event: dict[str, Any], call: int) -> dict[str, Any]:
        if any(base64.b64decode(r["kinesis"]["data"]) == b"r2" for r in event["Records"]):
            raise ValueError("poison")
        return {"batchItemFailures": []}

    handler = Recorder(fail)
    esm, sent = mapping(FakeKinesis({"shardId-000000000000": records(6)}), handler, max_retry_attempts=1)

    stats = esm.drain()

    # [r0 r1 r2 r3] fails -> halves [r0 r1] ok, [r2 r3] fails -> [r2] fails, retried, given up; [r3] ok
    assert handler.batches == [
        ["r0", "r1", "r2", "r3"],
        ["r0", "r1"],
        ["r2", "r3"],
        ["r2"],
        ["r2"],
        ["r3"],
        ["r4", "r5"],
    ]
    assert stats.records_succeeded == 5
    assert stats.records_to_on_failure == 1
    assert [m["KinesisBatchInfo"]["startSequenceNumber"] for m in sent] == ["00003"]
    info = sent[0]["KinesisBatchInfo"]
    assert (info["endSequenceNumber"], info["batchSize"], info["shardId"]) == (
        "00003",
        1,
        "shardId-000000000000",
    )
    assert sent[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_without_bisection_the_whole_batch_is_retried_then_given_up_and_the_shard_moves_on() -> None:
    def fail(event: dict[str, Any], call: int) -> dict[str, Any]:
        if call <= 3:
            raise RuntimeError("downstream is down")
        return {"batchItemFailures": []}

    handler = Recorder(fail)
    esm, sent = mapping(FakeKinesis({"s": records(5)}), handler, bisect_on_error=False, max_retry_attempts=2)

    stats = esm.drain()

    assert handler.batches == [["r0", "r1", "r2", "r3"]] * 3 + [["r4"]]
    assert [
        (m["KinesisBatchInfo"]["startSequenceNumber"], m["KinesisBatchInfo"]["endSequenceNumber"])
        for m in sent
    ] == [("00001", "00004")]
    assert (stats.function_errors, stats.records_succeeded, stats.records_to_on_failure) == (3, 1, 4)


def test_records_older_than_the_maximum_age_skip_the_function() -> None:
    handler = Recorder()
    kinesis = FakeKinesis({"s": records(2)}, arrival=datetime(2026, 8, 1, tzinfo=UTC))
    esm, sent = mapping(kinesis, handler, max_record_age_s=60)

    esm.drain()

    assert handler.batches == []
    assert [m["requestContext"]["condition"] for m in sent] == ["RecordAgeExceeded"]


def test_a_handler_that_outlives_the_function_timeout_counts_as_an_error() -> None:
    def slow(event: dict[str, Any], call: int) -> dict[str, Any]:
        if call == 1:
            time.sleep(0.05)
        return {"batchItemFailures": []}

    handler = Recorder(slow)
    esm, _ = mapping(FakeKinesis({"s": records(1)}), handler, function_timeout_s=0.01)

    stats = esm.drain()

    assert (stats.function_errors, len(handler.batches), stats.records_succeeded) == (1, 2, 1)


def test_each_shard_is_polled_and_keeps_its_own_order() -> None:
    handler = Recorder()
    esm, _ = mapping(FakeKinesis({"a": records(2), "b": [b"x0", b"x1"]}), handler)

    esm.drain()

    assert handler.batches == [["r0", "r1"], ["x0", "x1"]]
