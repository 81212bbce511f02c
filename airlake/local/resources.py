"""The platform's resources on the local endpoint, from the same StageConfig the stacks use.

Names come from `StageConfig.names` and sizes from its sections, so the local run and a
deployed stage agree on stream names, the state table's key schema, the model pointer parameter
and the event-source-mapping settings. Only what moto can emulate is created here; Lambda, Glue,
Firehose-from-Kinesis and Athena are replaced by in-process equivalents (see airlake.local).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3

from airlake.local.endpoint import LOCAL_ACCOUNT, LOCAL_REGION
from airlake.settings import CapacityMode, StageConfig

MODELS_PREFIX: Final = "models"
REGISTRY_KEY: Final = f"{MODELS_PREFIX}/registry.json"
LOCAL_ON_DEMAND_SHARDS: Final = 2  # on-demand streams start with 4 shards in AWS; 2 suit 2 cores
# A subscriber that only wants critical alerts, as a downstream service would subscribe.
CRITICAL_FILTER: Final = {"severity": ["critical"]}


@dataclass(frozen=True, slots=True)
class LocalResources:
    config: StageConfig
    lake_bucket: str
    models_bucket: str
    readings_stream: str
    calibrated_stream: str
    readings_stream_arn: str
    calibrated_stream_arn: str
    state_table: str
    alerts_topic_arn: str
    failure_queue_url: str
    failure_queue_arn: str
    critical_alerts_queue_url: str
    all_alerts_queue_url: str
    model_pointer_parameter: str

    def lambda_env(self) -> dict[str, str]:
        """The environment the stacks give the three functions, pointing at these resources."""
        return {
            "POWERTOOLS_SERVICE_NAME": "airlake",
            "POWERTOOLS_METRICS_NAMESPACE": "Airlake",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "POWERTOOLS_METRICS_DISABLED": "false",
            "LOG_LEVEL": "WARNING",
            "LAKE_BUCKET": self.lake_bucket,
            "MODELS_BUCKET": self.models_bucket,
            "MODEL_POINTER_PARAMETER": self.model_pointer_parameter,
            "CALIBRATED_STREAM_NAME": self.calibrated_stream,
            "STATE_TABLE_NAME": self.state_table,
            "ALERTS_TOPIC_ARN": self.alerts_topic_arn,
        }

    def describe(self) -> dict[str, str]:
        return {
            "readings stream": self.readings_stream,
            "calibrated stream": self.calibrated_stream,
            "lake bucket": self.lake_bucket,
            "models bucket": self.models_bucket,
            "state table": self.state_table,
            "alerts topic": self.alerts_topic_arn,
            "on-failure queue": self.failure_queue_url,
            "critical-alerts subscriber queue": self.critical_alerts_queue_url,
        }


def create(
    config: StageConfig, *, models_dir: Path | None, devices: list[dict[str, Any]] | None
) -> LocalResources:
    """Create every resource (idempotent: existing ones are reused) and publish the models."""
    names = config.names
    kinesis = boto3.client("kinesis")
    s3 = boto3.client("s3")
    shards = (
        config.stream.shard_count
        if config.stream.capacity_mode is CapacityMode.PROVISIONED
        else LOCAL_ON_DEMAND_SHARDS
    )
    arns = {}
    for stream in (names.readings_stream, names.calibrated_stream):
        existing = kinesis.list_streams().get("StreamNames", [])
        if stream not in existing:
            kinesis.create_stream(StreamName=stream, ShardCount=shards)
        arns[stream] = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]

    lake = names.bucket("lake", account=LOCAL_ACCOUNT, region=LOCAL_REGION)
    models = names.bucket("models", account=LOCAL_ACCOUNT, region=LOCAL_REGION)
    for bucket in (lake, models):
        s3.create_bucket(Bucket=bucket)

    dynamodb = boto3.client("dynamodb")
    if names.state_table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=names.state_table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=names.state_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )

    sns = boto3.client("sns")
    sqs = boto3.client("sqs")
    topic_arn = sns.create_topic(Name=names.alerts_topic)["TopicArn"]
    failure_url = sqs.create_queue(QueueName=f"{config.names.prefix}-hot-path-failures")["QueueUrl"]
    failure_arn = sqs.get_queue_attributes(QueueUrl=failure_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    critical_url = _subscribe(sns, sqs, topic_arn, f"{names.prefix}-critical-alerts", CRITICAL_FILTER)
    all_url = _subscribe(sns, sqs, topic_arn, f"{names.prefix}-all-alerts", None)

    ssm = boto3.client("ssm")
    if models_dir is not None and (models_dir / "registry.json").exists():
        for path in sorted(models_dir.rglob("*")):
            if path.is_file():
                key = f"{MODELS_PREFIX}/{path.relative_to(models_dir).as_posix()}"
                s3.put_object(Bucket=models, Key=key, Body=path.read_bytes())
    if devices is not None:
        s3.put_object(Bucket=models, Key=f"{MODELS_PREFIX}/devices.json", Body=json.dumps(devices).encode())
    ssm.put_parameter(Name=names.model_pointer_parameter, Value=REGISTRY_KEY, Type="String", Overwrite=True)

    return LocalResources(
        config=config,
        lake_bucket=lake,
        models_bucket=models,
        readings_stream=names.readings_stream,
        calibrated_stream=names.calibrated_stream,
        readings_stream_arn=arns[names.readings_stream],
        calibrated_stream_arn=arns[names.calibrated_stream],
        state_table=names.state_table,
        alerts_topic_arn=topic_arn,
        failure_queue_url=failure_url,
        failure_queue_arn=failure_arn,
        critical_alerts_queue_url=critical_url,
        all_alerts_queue_url=all_url,
        model_pointer_parameter=names.model_pointer_parameter,
    )


def _subscribe(
    sns: Any, sqs: Any, topic_arn: str, queue_name: str, filter_policy: dict[str, Any] | None
) -> str:
    url: str = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true"}
    if filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url
