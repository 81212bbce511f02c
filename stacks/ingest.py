"""Ingest: the Kinesis streams and the Firehose raw landing.

Two streams. `readings` takes device records (partition key `device_id`, so each device's records
stay in order on one shard). `calibrated` carries the calibrate Lambda's output to two independent
consumers (aggregate and classify). A second Kinesis stream, rather than SNS/SQS or EventBridge, keeps
per-device ordering, replay from any point within retention, and the same event-source-mapping
failure handling on both hops.

Firehose copies every `readings` record, unchanged, to `raw/` (ELT: nothing is parsed or dropped
here). The only processor appends a newline after each record so an object is JSON lines; that is
framing, not transformation.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from airlake.settings import CapacityMode, FirehoseConfig, StreamConfig
from stacks.nag import (
    CDK_GRANT_ACTIONS,
    S3_DELETE_ACTIONS,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    acknowledge_all,
)

# Arrival-time partitions of the raw zone (shared convention: raw/dt=YYYY-MM-DD/hour=HH/).
RAW_PREFIX = "raw/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
RAW_ERROR_PREFIX = "raw-errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"


class IngestStreams(Construct):
    """The `readings` and `calibrated` Kinesis streams, KMS-encrypted with the stage key."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        readings_stream_name: str,
        calibrated_stream_name: str,
        config: StreamConfig,
        key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.readings = self._stream("Readings", readings_stream_name, config, key, removal_policy)
        self.calibrated = self._stream("Calibrated", calibrated_stream_name, config, key, removal_policy)

    def _stream(
        self, id_: str, name: str, config: StreamConfig, key: kms.IKey, removal_policy: RemovalPolicy
    ) -> kinesis.Stream:
        provisioned = config.capacity_mode is CapacityMode.PROVISIONED
        stream = kinesis.Stream(
            self,
            id_,
            stream_name=name,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=config.shard_count if provisioned else None,
            retention_period=Duration.hours(config.retention_hours),
            removal_policy=removal_policy,
        )
        acknowledge(
            stream,
            "AwsSolutions-KDS3",
            "A customer-managed key is required: one key policy governs streams, lake, topics and queues, "
            "and its grants are what least privilege is built on; the extra KMS cost is accepted.",
        )
        return stream


class RawLanding(Construct):
    """Firehose: readings stream -> S3 `raw/` as gzip JSON lines, failures under `raw-errors/`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        delivery_stream_name: str,
        source: kinesis.IStream,
        lake: s3.IBucket,
        key: kms.IKey,
        config: FirehoseConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.log_group = logs.LogGroup(
            self, "DeliveryErrors", retention=log_retention, removal_policy=removal_policy
        )
        self.delivery_stream = firehose.DeliveryStream(
            self,
            "ToRaw",
            delivery_stream_name=delivery_stream_name,
            source=firehose.KinesisStreamSource(source),
            destination=firehose.S3Bucket(
                lake,
                data_output_prefix=RAW_PREFIX,
                error_output_prefix=RAW_ERROR_PREFIX,
                compression=firehose.Compression.GZIP,
                buffering_interval=Duration.seconds(config.buffer_interval_seconds),
                buffering_size=Size.mebibytes(config.buffer_size_mb),
                encryption_key=key,
                logging_config=firehose.EnableLogging(self.log_group),
                processors=[firehose.AppendDelimiterToRecordProcessor()],
            ),
        )
        lake_objects = (
            f"AwsSolutions-IAM5[Resource::<{Stack.of(self).get_logical_id(lake.node.default_child)}.Arn>/*]"  # type: ignore[arg-type]
        )
        acknowledge_all(
            self.delivery_stream,
            {
                **CDK_GRANT_ACTIONS,
                **S3_READ_ACTIONS,
                **S3_WRITE_ACTIONS,
                **S3_DELETE_ACTIONS,
                lake_objects: "Firehose's S3 destination grant (CDK) writes raw/ and raw-errors/ objects of the lake.",
            },
        )
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-KDF1",
            "Firehose cannot enable server-side encryption when its source is a Kinesis stream; "
            "the source stream and the destination objects are both encrypted with the stage KMS key.",
        )
