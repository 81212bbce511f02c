"""The AWS implementations behind the hot path's small interfaces, against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from airlake.calibration import BUILTIN_VERSION, Calibrator, ModelProvider
from airlake.hot.models import S3ModelSource
from airlake.hot.outputs import KinesisStream, SnsNotifier
from airlake.hot.state import DynamoDBStateStore, Write
from airlake.producer import Producer


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _table() -> DynamoDBStateStore:
    boto3.client("dynamodb").create_table(
        TableName="state",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    return DynamoDBStateStore("state", lambda: boto3.client("dynamodb"))


def test_dynamodb_store_reads_in_batches_and_rejects_stale_writes(aws: None) -> None:
    store = _table()
    # Given 150 new items (more than one BatchGetItem of 100)
    writes = [Write(f"agg#d{i}", "windows", {"n": i}, None, 1_900_000_000) for i in range(150)]
    assert store.put_many(writes) == []
    # Then all read back, with version 1
    got = store.get_many([(w.pk, w.sk) for w in writes] + [("agg#missing", "windows")])
    assert (
        len(got) == 150
        and got[("agg#d7", "windows")].doc == {"n": 7}
        and got[("agg#d7", "windows")].version == 1
    )
    # When one writer updates d7 and a stale writer (still at "absent") tries too
    assert store.put_many([Write("agg#d7", "windows", {"n": 70}, 1, 1_900_000_000)]) == []
    conflicts = store.put_many([Write("agg#d7", "windows", {"n": -1}, None, 1_900_000_000),
                                Write("agg#d8", "windows", {"n": 80}, 0, 1_900_000_000)])  # fmt: skip
    # Then both stale writes are refused and the newer document stays
    assert conflicts == [("agg#d7", "windows"), ("agg#d8", "windows")]
    assert store.get_many([("agg#d7", "windows")])[("agg#d7", "windows")].doc == {"n": 70}
    item = boto3.client("dynamodb").get_item(
        TableName="state", Key={"pk": {"S": "agg#d7"}, "sk": {"S": "windows"}}
    )
    assert item["Item"]["expires_at"] == {"N": "1900000000"}


def _artifact(s3: Any, prefix: str, slope: float, version: str) -> None:
    model = {"format": "airlake.model/v1", "kind": "calibration", "features": [{"op": "raw", "col": "mox_co"}],
             "classes": None, "target_transform": None,
             "estimator": {"type": "linear", "fill": [0.0], "mean": [0.0], "scale": [1.0], "coef": [[slope]],
                           "intercept": [0.0]}}  # fmt: skip
    metadata = {"format": "airlake.model/v1", "kind": "calibration", "version": version}
    s3.put_object(Bucket="models", Key=f"{prefix}/model.json", Body=json.dumps(model).encode())
    s3.put_object(Bucket="models", Key=f"{prefix}/metadata.json", Body=json.dumps(metadata).encode())


def test_models_follow_the_ssm_pointer_without_a_redeploy(aws: None) -> None:
    s3, ssm = boto3.client("s3"), boto3.client("ssm")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    source = S3ModelSource("models", "/airlake/test/models/current", lambda: s3, lambda: ssm)
    now = [0.0]
    # Given no pointer yet: the built-in baseline runs
    calibrator = Calibrator(ModelProvider(source, refresh_seconds=30, clock=lambda: now[0]))
    assert calibrator.version == BUILTIN_VERSION
    # When registry v1 (co = 2 x mox_co) is published and the pointer set
    _artifact(s3, "releases/1/co", 2.0, "co-1")
    s3.put_object(Bucket="models", Key="releases/1/registry.json",
                  Body=json.dumps({"version": "r1", "calibration": {"fleet": {"co": "co"}}}).encode())  # fmt: skip
    ssm.put_parameter(Name="/airlake/test/models/current", Value="releases/1/registry.json", Type="String")
    now[0] += 30
    # Then the next check loads it
    assert calibrator.calibrate_channels("d1", {"mox_co": 2.0}, 0) == ({"co": 4.0}, "r1")
    # When v2 is published and the pointer moves
    _artifact(s3, "releases/2/co", 3.0, "co-2")
    s3.put_object(Bucket="models", Key="releases/2/registry.json",
                  Body=json.dumps({"version": "r2", "calibration": {"fleet": {"co": "co"}}}).encode())  # fmt: skip
    ssm.put_parameter(Name="/airlake/test/models/current", Value="releases/2/registry.json", Overwrite=True,
                      Type="String")  # fmt: skip
    # Then it is used from the first check after the interval
    now[0] += 29
    assert calibrator.calibrate_channels("d1", {"mox_co": 2.0}, 0)[1] == "r1"
    now[0] += 1
    assert calibrator.calibrate_channels("d1", {"mox_co": 2.0}, 0) == ({"co": 6.0}, "r2")


def test_kinesis_stream_puts_in_chunks_of_500_keyed_by_device(aws: None) -> None:
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName="calibrated", ShardCount=1)
    stream = KinesisStream("calibrated", lambda: kinesis)
    records = [(f"d{i % 7}", json.dumps({"i": i}).encode()) for i in range(1_201)]
    assert stream.put_records(records) == []
    shard = kinesis.describe_stream(StreamName="calibrated")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="calibrated", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    got = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=10_000)["Records"]
    assert [json.loads(r["Data"])["i"] for r in got] == list(range(1_201))


class _Flaky:
    """A Kinesis client whose first reply fails two entries (HTTP 200 with FailedRecordCount)."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([r["Data"] for r in Records])
        if len(self.calls) == 1:
            replies = [{"ErrorCode": "ProvisionedThroughputExceededException"} if i in (1, 3) else {"SequenceNumber": "1"}
                       for i in range(len(Records))]  # fmt: skip
            return {"FailedRecordCount": 2, "Records": replies}
        return {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "2"} for _ in Records]}


def test_kinesis_stream_retries_only_the_failed_entries() -> None:
    client = _Flaky()
    stream = KinesisStream("calibrated", lambda: client, backoff_s=0)
    assert stream.put_records([(f"d{i}", bytes([i])) for i in range(5)]) == []
    assert client.calls == [[bytes([i]) for i in range(5)], [bytes([1]), bytes([3])]]


def test_sns_publish_sends_string_attributes(aws: None) -> None:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    SnsNotifier(topic, lambda: sns).publish('{"a": 1}', {"severity": "critical", "site": "s1"})
    message = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"][0]
    assert message["Body"] == '{"a": 1}'
    assert {k: v["StringValue"] for k, v in message["MessageAttributes"].items()} == {
        "severity": "critical",
        "site": "s1",
    }


class _Stubborn:
    """A Kinesis client that always fails the entries whose data starts with b"x", and counts calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        replies = [{"ErrorCode": "InternalFailure"} if r["Data"].startswith(b"x") else {"SequenceNumber": "1"}
                   for r in Records]  # fmt: skip
        return {"FailedRecordCount": sum("ErrorCode" in r for r in replies), "Records": replies}


def test_kinesis_stream_returns_the_indexes_that_failed_after_its_five_attempts() -> None:
    # Given a stream that never accepts two of the entries, and one record over the 1 MiB limit
    client = _Stubborn()
    stream = KinesisStream("calibrated", lambda: client, backoff_s=0)
    records = [("d1", b"ok"), ("d2", b"x1"), ("d3", b"ok"), ("d4", b"\0" * (1024 * 1024)), ("d5", b"x2")]
    # When they are put
    failed = stream.put_records(records)
    # Then exactly those indexes are reported, after five calls (the oversized one is never sent)
    assert (failed, client.calls) == ([1, 3, 4], 5)


def test_kinesis_stream_raises_an_error_that_retrying_cannot_fix() -> None:
    error = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "PutRecords")
    client = _Stubborn(error)
    with pytest.raises(ClientError):
        KinesisStream("calibrated", lambda: client, backoff_s=0).put_records([("d1", b"ok")])
    assert client.calls == 1


def test_producer_put_batch_splits_at_500_records_and_keeps_no_failures_in_its_stats() -> None:
    client = _Stubborn()
    producer = Producer(client, "calibrated", max_attempts=2, sleep=lambda _s: None)  # type: ignore[arg-type]
    records = [(f"d{i}", b"x" if i in (7, 612) else b"ok") for i in range(1_001)]
    assert producer.put_batch(records) == [7, 612]
    assert (client.calls, producer.stats.sent, producer.stats.failed) == (2 + 2 + 1, 999, [])
