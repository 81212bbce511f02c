"""Hot path: one construct per Lambda consumer of a Kinesis stream.

A `KinesisConsumer` is a function (arm64, explicit log group with retention, active tracing,
Powertools settings) plus its event source mapping with the safe settings: partial batch responses
(`ReportBatchItemFailures`), bisect on error, bounded retries and record age, and an encrypted SQS
on-failure destination. The on-failure queue receives only the shard id and sequence range of the
failed batch, not the records; they stay re-readable from the stream (within retention) or from the
raw zone.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from airlake.settings import EventSourceConfig, LambdaConfig
from stacks.nag import acknowledge

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
METRICS_NAMESPACE = "Airlake"


class KinesisConsumer(Construct):
    """Attributes: `function`, `log_group`, `failures` (on-failure queue), `event_source`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        function_name: str,
        handler_module: str,
        code: lambda_.Code,
        stream: kinesis.IStream,
        environment: Mapping[str, str],
        sizing: LambdaConfig,
        event_source: EventSourceConfig,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=log_retention,
            removal_policy=removal_policy,
        )
        # An explicit role instead of AWSLambdaBasicExecutionRole: logs go to this log group only.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Airlake {handler_module} Lambda",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=f"Airlake hot path: {handler_module}",
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=code,
            handler=f"lambdas.{handler_module}.handler.handler",
            memory_size=sizing.memory_mb,
            timeout=Duration.seconds(sizing.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            environment={
                "POWERTOOLS_SERVICE_NAME": handler_module,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": sizing.log_level,
                **environment,
            },
        )
        self.failures = sqs.Queue(
            self,
            "OnFailure",
            queue_name=f"{function_name}-failures",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        acknowledge(
            self.failures,
            "AwsSolutions-SQS3",
            "This queue is itself the on-failure destination of the event source mapping; "
            "it only holds shard/sequence pointers and is alarmed on depth.",
        )
        self.event_source = event_sources.KinesisEventSource(
            stream,
            starting_position=lambda_.StartingPosition(event_source.starting_position.value),
            batch_size=event_source.batch_size,
            max_batching_window=Duration.seconds(event_source.max_batching_window_seconds),
            parallelization_factor=event_source.parallelization_factor,
            retry_attempts=event_source.max_retry_attempts,
            max_record_age=Duration.seconds(event_source.max_record_age_seconds),
            bisect_batch_on_error=event_source.bisect_batch_on_error,
            report_batch_item_failures=True,
            on_failure=event_sources.SqsDlq(self.failures),
        )
        self.function.add_event_source(self.event_source)
