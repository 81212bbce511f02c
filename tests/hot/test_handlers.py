"""The Lambda entry points: import cost rules, settings, the exact partial-batch response, and the
AWS implementations against moto (Kinesis, S3, SSM, DynamoDB, SNS -> SQS with a filter policy)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from airlake.calibration import load_calibrator
from airlake.hot.outputs import MemoryLake, MemoryStream
from airlake.hot.pipeline import CalibrateStage
from airlake.hot.settings import SettingsError
from lambdas.aggregate import handler as aggregate_handler
from lambdas.calibrate import handler as calibrate_handler
from lambdas.classify import handler as classify_handler
from tests.hot.conftest import FakeContext, load_event, seqnos

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("lambdas.calibrate.handler", "lambdas.aggregate.handler", "lambdas.classify.handler")
ENV_NAMES = ("LAKE_BUCKET", "CALIBRATED_STREAM_NAME", "MODELS_BUCKET", "MODEL_POINTER_PARAMETER", "STATE_TABLE_NAME",
             "ALERTS_TOPIC_ARN")  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_stages() -> Iterator[None]:
    for module in (calibrate_handler, aggregate_handler, classify_handler):
        module.set_stage(None)
    yield
    for module in (calibrate_handler, aggregate_handler, classify_handler):
        module.set_stage(None)


def test_handlers_import_without_environment_and_without_heavy_libraries() -> None:
    # Given a bare environment (no AWS settings, no credentials)
    code = (
        "import sys\n"
        f"for name in {HANDLERS!r}: __import__(name)\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'scipy', 'numpy', 'pyarrow') if m in sys.modules))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    # When the three handler modules are imported in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    # Then none of pandas, scikit-learn, scipy, numpy or pyarrow was imported
    assert done.stdout.strip() == "[]"


def test_missing_settings_fail_the_first_invocation_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        SettingsError, match="LAKE_BUCKET, CALIBRATED_STREAM_NAME, MODELS_BUCKET, MODEL_POINTER"
    ):
        calibrate_handler.handler(load_event("kinesis_readings.json"), FakeContext())


def test_partial_failure_response_has_the_exact_lambda_shape() -> None:
    # Given a calibrated stream that refuses the second record's reading
    event = load_event("kinesis_readings.json")
    calibrate_handler.set_stage(
        CalibrateStage(load_calibrator(Path("/none")), MemoryStream(fail_indexes={1}), MemoryLake())
    )
    # When the handler runs
    response = calibrate_handler.handler(event, FakeContext())
    # Then exactly that record is reported; the quarantined (poison) records are not failures
    assert response == {"batchItemFailures": [{"itemIdentifier": seqnos(event)[1]}]}


def test_all_good_batch_reports_no_failures() -> None:
    calibrate_handler.set_stage(CalibrateStage(load_calibrator(Path("/none")), MemoryStream(), MemoryLake()))
    assert calibrate_handler.handler(load_event("kinesis_readings.json"), FakeContext()) == {
        "batchItemFailures": []
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Every resource of the hot path in moto, and the functions' environment variables."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_SERVICE_NAME": "hot"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in ("lake", "models"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        devices = [{"device_id": "site1-dev-001", "site": "site-1", "model": "AL-100", "installed": "2025-01-01",
                    "reference": False}]  # fmt: skip
        s3.put_object(Bucket="models", Key="current/devices.json", Body=json.dumps(devices).encode())
        boto3.client("ssm").put_parameter(Name="/airlake/test/models/current", Value="current/registry.json",
                                          Type="String")  # fmt: skip
        boto3.client("kinesis").create_stream(StreamName="calibrated", ShardCount=1)
        boto3.client("dynamodb").create_table(
            TableName="state", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
        )  # fmt: skip
        topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="warnings")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns").subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
            Attributes={"FilterPolicy": json.dumps({"severity": ["warning", "critical"], "site": ["site-1"]}),
                        "RawMessageDelivery": "true"},
        )  # fmt: skip
        env = {"LAKE_BUCKET": "lake", "CALIBRATED_STREAM_NAME": "calibrated", "MODELS_BUCKET": "models",
               "MODEL_POINTER_PARAMETER": "/airlake/test/models/current", "STATE_TABLE_NAME": "state",
               "ALERTS_TOPIC_ARN": topic, "QUEUE_URL": queue}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


def _lake_docs(prefix: str) -> list[dict[str, Any]]:
    s3 = boto3.client("s3")
    docs: list[dict[str, Any]] = []
    for obj in s3.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", []):
        body = gzip.decompress(s3.get_object(Bucket="lake", Key=obj["Key"])["Body"].read())
        docs.extend(orjson.loads(line) for line in body.splitlines())
    return docs


def test_calibrate_handler_on_aws_writes_the_stream_and_quarantine(aws: dict[str, str]) -> None:
    # When the calibrate handler runs with its settings from the environment
    response = calibrate_handler.handler(load_event("kinesis_readings.json"), FakeContext())
    # Then no failure, two calibrated records on the stream, two quarantine lines in the lake
    assert response == {"batchItemFailures": []}
    kinesis = boto3.client("kinesis")
    shard = kinesis.describe_stream(StreamName="calibrated")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="calibrated", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [r["PartitionKey"] for r in records] == ["site1-dev-001", "site1-dev-002"]
    assert orjson.loads(records[0]["Data"])["model_version"] == "builtin-linear-uci-v1"
    assert sorted(d["reason"] for d in _lake_docs("hot/quarantine/dt=2026-03-10/")) == [
        "invalid_json",
        "out_of_range",
    ]


def test_aggregate_handler_on_aws_keeps_state_in_dynamodb_and_is_idempotent(aws: dict[str, str]) -> None:
    event = load_event("kinesis_calibrated.json")
    assert aggregate_handler.handler(event, FakeContext()) == {"batchItemFailures": []}
    first = _lake_docs("hot/aggregates/")
    # When the batch is redelivered
    assert aggregate_handler.handler(event, FakeContext()) == {"batchItemFailures": []}
    # Then the aggregates are unchanged, and the device's state is one DynamoDB item
    assert _lake_docs("hot/aggregates/") == first
    assert {(d["window"], d["start"]) for d in first} == {
        ("tumbling_5m", "2026-03-10T12:00:00.000Z"),
        ("sliding_1h_5m", "2026-03-10T11:05:00.000Z"),
    }
    items = boto3.client("dynamodb").scan(TableName="state")["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"], i["version"]["N"]) for i in items] == [
        ("agg#site1-dev-001", "windows", "1")
    ]


def test_classify_handler_on_aws_publishes_a_filterable_alert_once(aws: dict[str, str]) -> None:
    event = load_event("kinesis_calibrated.json")
    # When the batch is processed, then redelivered
    assert classify_handler.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert classify_handler.handler(event, FakeContext()) == {"batchItemFailures": []}
    # Then the subscriber filtering on severity and site got exactly one message, the raise
    messages = boto3.client("sqs").receive_message(QueueUrl=aws["QUEUE_URL"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    assert len(messages) == 1
    alert = json.loads(messages[0]["Body"])
    assert (alert["status"], alert["event_type"], alert["site"]) == ("raised", "co2_high", "site-1")
    assert [d["alert_id"] for d in _lake_docs("hot/alerts/dt=2026-03-10/")] == [alert["alert_id"]]


def test_partial_batch_response_names_the_failed_records_in_record_order() -> None:
    from airlake.hot.lambda_support import partial_batch_response

    records = [{"kinesis": {"sequenceNumber": s}} for s in ("49-1", "49-2", "49-3", "49-4")]
    assert partial_batch_response(records, {"49-4", "49-2"}) == {
        "batchItemFailures": [{"itemIdentifier": "49-2"}, {"itemIdentifier": "49-4"}]
    }
    assert partial_batch_response(records, set()) == {"batchItemFailures": []}


def test_the_garbage_collector_is_back_on_after_a_batch_even_when_the_stage_raises() -> None:
    import gc

    from airlake.hot.lambda_support import run_batch

    def broken(_records: object) -> object:
        assert not gc.isenabled()  # paused while the stage runs
        raise RuntimeError("stage bug")

    with pytest.raises(RuntimeError, match="stage bug"):
        run_batch({"Records": []}, FakeContext(), broken, logger=aggregate_handler.logger,  # type: ignore[arg-type]
                  metrics=aggregate_handler.metrics)  # fmt: skip
    assert gc.isenabled()
