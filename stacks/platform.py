"""The stacks of one stage and how they depend on each other.

    Data  <-  HotPath  <-  Monitoring
      ^                      |
      +---  ColdPath  <------+

`Data` holds everything stateful (key, buckets, streams, Firehose, topics, state table, model
pointer) so compute stacks can be replaced without touching data. Dependencies only point towards
`Data`, so there are no cross-stack cycles. The stacks do the cross-construct grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import App, CfnOutput, Environment, RemovalPolicy, Stack, Tags
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from airlake.settings import StageConfig
from stacks.alerts import AlertTopics
from stacks.analytics import AnalyticsWorkgroup
from stacks.bundling import lambda_code
from stacks.cold_path import GLUE_JOBS, BatchJobs, LakeCatalog
from stacks.encryption import PlatformKey
from stacks.hot_path import LAMBDA_RUNTIME, KinesisConsumer
from stacks.ingest import IngestStreams, RawLanding
from stacks.models import ModelPointer
from stacks.monitoring import PipelineMonitoring
from stacks.nag import (
    CDK_GRANT_ACTIONS,
    S3_DELETE_ACTIONS,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    XRAY,
    acknowledge_all,
)
from stacks.state import StateTable
from stacks.storage import ATHENA_RESULTS, LAKE, MODELS, LakeBuckets, bucket_name, nag_bucket_name

_RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(config: StageConfig) -> logs.RetentionDays:
    return _RETENTION[config.log_retention_days]


def removal_policy(config: StageConfig) -> RemovalPolicy:
    return RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY


class DataStack(Stack):
    """Key, buckets, streams, raw landing, topics, state table, model pointer."""

    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, env: Environment | None) -> None:
        super().__init__(scope, id_, env=env, description=f"Airlake {config.stage}: data, ingest and alerts")
        names = config.names
        policy = removal_policy(config)
        self.key = PlatformKey(self, "Key", alias=f"alias/{names.prefix}", removal_policy=policy).key
        self.buckets = LakeBuckets(
            self,
            "Buckets",
            names=names,
            key=self.key,
            lake=config.lake,
            athena_results_retention_days=config.athena.results_retention_days,
            removal_policy=policy,
        )
        self.streams = IngestStreams(
            self,
            "Streams",
            readings_stream_name=names.readings_stream,
            calibrated_stream_name=names.calibrated_stream,
            config=config.stream,
            key=self.key,
            removal_policy=policy,
        )
        self.raw_landing = RawLanding(
            self,
            "RawLanding",
            delivery_stream_name=names.raw_delivery_stream,
            source=self.streams.readings,
            lake=self.buckets.lake,
            key=self.key,
            config=config.firehose,
            log_retention=log_retention(config),
            removal_policy=policy,
        )
        self.topics = AlertTopics(
            self, "Topics", alerts_topic_name=names.alerts_topic, ops_topic_name=names.ops_topic, key=self.key
        )
        self.state = StateTable(
            self, "State", table_name=names.state_table, key=self.key, removal_policy=policy
        )
        self.model_pointer = ModelPointer(self, "ModelPointer", parameter_name=names.model_pointer_parameter)

        outputs = {
            "ReadingsStreamName": self.streams.readings.stream_name,
            "CalibratedStreamName": self.streams.calibrated.stream_name,
            "AlertsTopicArn": self.topics.alerts.topic_arn,
            "OpsTopicArn": self.topics.ops.topic_arn,
            "LakeBucketName": self.buckets.lake.bucket_name,
            "ModelsBucketName": self.buckets.models.bucket_name,
            "ModelPointerParameter": self.model_pointer.parameter.parameter_name,
            "StateTableName": self.state.table.table_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)


class HotPathStack(Stack):
    """The calibrate, aggregate and classify Lambdas with their event source mappings."""

    def __init__(
        self, scope: Construct, id_: str, *, config: StageConfig, data: DataStack, env: Environment | None
    ) -> None:
        super().__init__(scope, id_, env=env, description=f"Airlake {config.stage}: hot path Lambdas")
        names = config.names
        code = lambda_code(LAMBDA_RUNTIME)
        # Buckets are addressed by their deterministic names, so IAM resources are readable strings.
        lake = s3.Bucket.from_bucket_attributes(
            self, "Lake", bucket_name=bucket_name(names, LAKE), encryption_key=data.key
        )
        models = s3.Bucket.from_bucket_attributes(
            self, "Models", bucket_name=bucket_name(names, MODELS), encryption_key=data.key
        )
        common = {"LAKE_BUCKET": lake.bucket_name}
        models_env = {
            "MODELS_BUCKET": models.bucket_name,
            "MODEL_POINTER_PARAMETER": data.model_pointer.parameter.parameter_name,
        }
        state_env = {"STATE_TABLE_NAME": data.state.table.table_name}
        settings = {
            "calibrate": (data.streams.readings, {**common, **models_env,
                          "CALIBRATED_STREAM_NAME": data.streams.calibrated.stream_name}),
            "aggregate": (data.streams.calibrated, {**common, **state_env}),
            "classify": (data.streams.calibrated, {**common, **state_env, **models_env,
                         "ALERTS_TOPIC_ARN": data.topics.alerts.topic_arn}),
        }  # fmt: skip
        self.consumers: dict[str, KinesisConsumer] = {}
        for handler, (stream, environment) in settings.items():
            self.consumers[handler] = KinesisConsumer(
                self,
                handler.capitalize(),
                function_name=names.function(handler),
                handler_module=handler,
                code=code,
                stream=stream,
                environment=environment,
                sizing=config.lambdas,
                event_source=config.event_source,
                key=data.key,
                log_retention=log_retention(config),
                removal_policy=removal_policy(config),
            )

        calibrate = self.consumers["calibrate"].function
        aggregate = self.consumers["aggregate"].function
        classify = self.consumers["classify"].function
        # Each function writes only its own hot/ prefix of the lake.
        data.streams.calibrated.grant_write(calibrate)
        lake.grant_put(calibrate, "hot/quarantine/*")
        lake.grant_put(aggregate, "hot/aggregates/*")
        lake.grant_put(aggregate, "hot/late/*")
        lake.grant_put(classify, "hot/alerts/*")
        data.state.table.grant_read_write_data(aggregate)
        data.state.table.grant_read_write_data(classify)
        data.topics.alerts.grant_publish(classify)
        # Models: read only.
        for fn in (calibrate, classify):
            models.grant_read(fn)
            data.model_pointer.parameter.grant_read(fn)

        lake_nag = nag_bucket_name(names, LAKE)
        models_nag = nag_bucket_name(names, MODELS)
        writes = {"calibrate": ["hot/quarantine/*"], "aggregate": ["hot/aggregates/*", "hot/late/*"],
                  "classify": ["hot/alerts/*"]}  # fmt: skip
        for handler, prefixes in writes.items():
            findings = {**CDK_GRANT_ACTIONS, **XRAY, **S3_WRITE_ACTIONS}
            for prefix in prefixes:
                findings[f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{lake_nag}/{prefix}]"] = (
                    f"{handler} writes only objects under the lake's {prefix} prefix."
                )
            if handler in ("calibrate", "classify"):
                findings.update(S3_READ_ACTIONS)
                findings[f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{models_nag}/*]"] = (
                    "Reads model artifacts and registry objects of the models bucket (read only)."
                )
            acknowledge_all(self.consumers[handler].role, findings)


class ColdPathStack(Stack):
    """Glue catalog, Glue jobs and workflow, Athena workgroup with its queries and views."""

    def __init__(
        self, scope: Construct, id_: str, *, config: StageConfig, data: DataStack, env: Environment | None
    ) -> None:
        super().__init__(
            scope, id_, env=env, description=f"Airlake {config.stage}: Glue catalog and jobs, Athena"
        )
        names = config.names
        lake = s3.Bucket.from_bucket_attributes(
            self, "Lake", bucket_name=bucket_name(names, LAKE), encryption_key=data.key
        )
        results = s3.Bucket.from_bucket_attributes(
            self, "AthenaResults", bucket_name=bucket_name(names, ATHENA_RESULTS), encryption_key=data.key
        )
        self.catalog = LakeCatalog(self, "Catalog", database_name=names.glue_database, lake=lake)
        self.batch = BatchJobs(
            self,
            "Batch",
            job_names={job: names.glue_job(job) for job in GLUE_JOBS},
            workflow_name=names.glue_workflow,
            catalog=self.catalog,
            lake=lake,
            key=data.key,
            config=config.glue,
        )
        self.analytics = AnalyticsWorkgroup(
            self,
            "Analytics",
            workgroup_name=names.athena_workgroup,
            database_name=names.glue_database,
            results=results,
            key=data.key,
            bytes_scanned_cutoff_bytes=config.athena.bytes_scanned_cutoff_bytes,
            tables=list(self.catalog.tables.values()),
            lake=lake,
            results_nag_name=nag_bucket_name(names, ATHENA_RESULTS),
        )
        lake_nag = f"arn:<AWS::Partition>:s3:::{nag_bucket_name(names, LAKE)}"
        glue_findings = {**CDK_GRANT_ACTIONS, **S3_READ_ACTIONS, **S3_WRITE_ACTIONS, **S3_DELETE_ACTIONS}
        for prefix, why in {
            "raw/*": "reads the raw zone",
            "hot/*": "reads hot-path outputs (late readings, aggregates) for recomputation",
            "reference/*": "reads the device registry",
            "curated/*": "writes, compacts and replaces curated tables",
            "glue-temp/*": "Spark temporary files (--TempDir)",
        }.items():
            glue_findings[f"AwsSolutions-IAM5[Resource::{lake_nag}/{prefix}]"] = f"The Glue role {why}."
        glue_findings.update(
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "cloudwatch:PutMetricData has no resource type; the statement is limited to the Glue namespace."
                ),
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]": (
                    "Job scripts and airlake.zip are CDK assets in the bootstrap bucket (read only)."
                ),
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{names.glue_database}/*]": (
                    "Jobs read and add partitions to every table of the stage's own database only."
                ),
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws-glue/*]": (
                    "Glue names its job log groups at run time under /aws-glue/ (encrypted by the security configuration)."
                ),
            }
        )
        acknowledge_all(self.batch.role, glue_findings)
        CfnOutput(self, "AthenaWorkgroup", value=names.athena_workgroup)
        CfnOutput(self, "GlueDatabase", value=names.glue_database)
        CfnOutput(self, "GlueWorkflow", value=names.glue_workflow)


class MonitoringStack(Stack):
    """Alarms to the ops topic and the pipeline dashboard."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        data: DataStack,
        hot: HotPathStack,
        cold: ColdPathStack,
        env: Environment | None,
    ) -> None:
        super().__init__(scope, id_, env=env, description=f"Airlake {config.stage}: alarms and dashboard")
        self.monitoring = PipelineMonitoring(
            self,
            "Pipeline",
            dashboard_name=f"{config.names.prefix}-pipeline",
            ops_topic=data.topics.ops,
            consumers=hot.consumers,
            streams={"readings": data.streams.readings, "calibrated": data.streams.calibrated},
            delivery_stream=data.raw_landing.delivery_stream,
            glue_jobs=cold.batch.jobs,
            config=config.alarms,
        )


@dataclass(frozen=True, slots=True)
class Platform:
    data: DataStack
    hot: HotPathStack
    cold: ColdPathStack
    monitoring: MonitoringStack

    @property
    def stacks(self) -> tuple[Stack, ...]:
        return (self.data, self.hot, self.cold, self.monitoring)


def build_platform(app: App, config: StageConfig) -> Platform:
    """Create every stack of `config.stage` in `app` (stack names: Airlake-<stage>-<part>)."""
    env = (
        Environment(account=config.account, region=config.region) if config.account or config.region else None
    )
    prefix = f"Airlake-{config.stage}"
    data = DataStack(app, f"{prefix}-Data", config=config, env=env)
    hot = HotPathStack(app, f"{prefix}-HotPath", config=config, data=data, env=env)
    cold = ColdPathStack(app, f"{prefix}-ColdPath", config=config, data=data, env=env)
    monitoring = MonitoringStack(
        app, f"{prefix}-Monitoring", config=config, data=data, hot=hot, cold=cold, env=env
    )
    platform = Platform(data=data, hot=hot, cold=cold, monitoring=monitoring)
    for stack in platform.stacks:
        Tags.of(stack).add("project", config.project)
        Tags.of(stack).add("stage", config.stage)
        Tags.of(stack).add("cost-center", config.cost_center)
    return platform
