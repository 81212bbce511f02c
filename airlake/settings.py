"""Stage configuration: one frozen, validated object per deployment stage.

The CDK app and the local runtime both read `cdk.json` through this module, so a stream, table or
topic has the same name and the same limits everywhere (the local runtime creates moto resources with
these names; the CDK stacks deploy them). This module deliberately does not import aws-cdk-lib: the
local runtime must not pay for jsii start-up.

`cdk.json` holds the stages under `context.stages`::

    {"app": ".venv/bin/python app.py", "context": {"stage": "dev", "stages": {"dev": {...}, "prod": {...}}}}

Every size, duration and count carries its unit in the field name. Cross-field rules (for example,
the iterator-age alarm must fire before records age out of the event source mapping) are checked
here, so a bad stage fails at `cdk synth` with a readable message instead of at deploy time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_CDK_JSON: Final = REPO_ROOT / "cdk.json"
DEFAULT_STAGE: Final = "dev"

# CloudWatch Logs accepts only these retention periods (days); anything else fails at deploy.
LOG_RETENTION_DAYS_ALLOWED: Final = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")


class StageConfigError(ValueError):
    """A stage is missing from cdk.json or its settings are invalid."""


class _Frozen(BaseModel):
    """Base for every config section: immutable, and unknown keys are an error (typos fail fast)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CapacityMode(StrEnum):
    ON_DEMAND = "on_demand"
    PROVISIONED = "provisioned"


class RemovalPolicyName(StrEnum):
    """What happens to stateful resources when a stack is deleted (mapped to CDK's RemovalPolicy)."""

    DESTROY = "destroy"
    RETAIN = "retain"


class StartingPosition(StrEnum):
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"


class StreamConfig(_Frozen):
    """Kinesis data streams (readings and calibrated readings share the sizing)."""

    capacity_mode: CapacityMode = CapacityMode.ON_DEMAND
    # Ignored in on-demand mode; one shard takes 1 MB/s or 1,000 records/s.
    shard_count: int = Field(default=1, ge=1, le=500)
    # Kinesis keeps records 24 h to 365 days; the raw zone is the long-term copy.
    retention_hours: int = Field(default=24, ge=24, le=8760)


class FirehoseConfig(_Frozen):
    """Raw landing buffering: Firehose flushes when either limit is reached."""

    buffer_interval_seconds: int = Field(default=300, ge=0, le=900)
    buffer_size_mb: int = Field(default=64, ge=1, le=128)


class EventSourceConfig(_Frozen):
    """Kinesis -> Lambda event source mapping. Defaults are safe: retries and record age are bounded."""

    batch_size: int = Field(default=100, ge=1, le=10_000)
    max_batching_window_seconds: int = Field(default=1, ge=0, le=300)
    parallelization_factor: int = Field(default=1, ge=1, le=10)
    # Bounded so one poison record cannot block its shard for the whole retention period.
    max_retry_attempts: int = Field(default=3, ge=0, le=10_000)
    max_record_age_seconds: int = Field(default=3600, ge=60, le=604_800)
    bisect_batch_on_error: bool = True
    starting_position: StartingPosition = StartingPosition.TRIM_HORIZON


class LambdaConfig(_Frozen):
    """Sizing of the hot-path functions (arm64)."""

    memory_mb: int = Field(default=512, ge=128, le=10_240)
    timeout_seconds: int = Field(default=60, ge=1, le=900)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")


class WindowConfig(_Frozen):
    """Event-time windows of the aggregate Lambda: [start, start + length), aligned to the epoch."""

    tumbling_seconds: int = Field(default=300, ge=60, le=86_400)
    sliding_seconds: int = Field(default=900, ge=60, le=86_400)
    slide_step_seconds: int = Field(default=300, ge=60, le=86_400)
    allowed_lateness_seconds: int = Field(default=600, ge=0, le=86_400)
    # DynamoDB TTL on window state and idempotency records.
    state_ttl_seconds: int = Field(default=172_800, ge=3600, le=2_592_000)

    @model_validator(mode="after")
    def _slide_divides_window(self) -> Self:
        if self.sliding_seconds % self.slide_step_seconds:
            raise ValueError("windows.sliding_seconds must be a multiple of windows.slide_step_seconds")
        if self.state_ttl_seconds <= self.sliding_seconds + self.allowed_lateness_seconds:
            raise ValueError("windows.state_ttl_seconds must outlive a window plus its allowed lateness")
        return self


class AlarmConfig(_Frozen):
    """Thresholds of the CloudWatch alarms that notify the ops topic."""

    period_seconds: int = Field(default=300, ge=60, le=86_400)
    evaluation_periods: int = Field(default=1, ge=1, le=100)
    iterator_age_seconds: int = Field(default=600, ge=1)
    lambda_errors: int = Field(default=1, ge=1)
    lambda_throttles: int = Field(default=1, ge=1)
    dlq_messages: int = Field(default=1, ge=1)
    firehose_freshness_seconds: int = Field(default=900, ge=60)


class AthenaConfig(_Frozen):
    """Athena workgroup limits. Athena bills at least 10 MB per query, so smaller cutoffs are refused."""

    bytes_scanned_cutoff_mb: int = Field(default=10_240, ge=10)
    results_retention_days: int = Field(default=30, ge=1, le=3650)

    @property
    def bytes_scanned_cutoff_bytes(self) -> int:
        return self.bytes_scanned_cutoff_mb * 1024 * 1024


class LakeConfig(_Frozen):
    """Bucket lifecycle: raw objects move to cheaper classes; old object versions expire."""

    raw_infrequent_access_after_days: int = Field(default=30, ge=30)
    raw_glacier_after_days: int = Field(default=90, ge=31)
    noncurrent_version_expiry_days: int = Field(default=30, ge=1)
    access_logs_retention_days: int = Field(default=365, ge=1)

    @model_validator(mode="after")
    def _glacier_after_ia(self) -> Self:
        if self.raw_glacier_after_days <= self.raw_infrequent_access_after_days:
            raise ValueError("lake.raw_glacier_after_days must come after raw_infrequent_access_after_days")
        return self


class GlueConfig(_Frozen):
    """Glue 5 PySpark jobs and the scheduled workflow that runs them in order."""

    worker_type: str = Field(default="G.1X", pattern=r"^(G\.1X|G\.2X|G\.4X|G\.8X)$")
    number_of_workers: int = Field(default=2, ge=2, le=299)
    timeout_minutes: int = Field(default=60, ge=1, le=2880)
    max_retries: int = Field(default=0, ge=0, le=10)
    # EventBridge/Glue cron (6 fields, UTC). The workflow runs raw_to_curated -> rollups -> compaction.
    schedule_cron: str = "cron(15 * * * ? *)"


class ResourceNames(_Frozen):
    """Physical names shared by the deployed stacks and the local runtime."""

    prefix: str
    stage: str

    def _name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    @property
    def readings_stream(self) -> str:
        return self._name("readings")

    @property
    def calibrated_stream(self) -> str:
        return self._name("calibrated")

    @property
    def raw_delivery_stream(self) -> str:
        return self._name("raw-landing")

    @property
    def state_table(self) -> str:
        return self._name("state")

    @property
    def alerts_topic(self) -> str:
        return self._name("alerts")

    @property
    def ops_topic(self) -> str:
        return self._name("ops")

    @property
    def model_pointer_parameter(self) -> str:
        return f"/{self.prefix.split('-')[0]}/{self.stage}/models/current"

    @property
    def glue_database(self) -> str:
        # Glue/Athena database names: lower case and underscores only.
        return self.prefix.replace("-", "_")

    @property
    def athena_workgroup(self) -> str:
        return self._name("analytics")

    def function(self, handler: str) -> str:
        """Lambda function name of a hot-path handler (calibrate, aggregate, classify)."""
        return self._name(handler)

    def glue_job(self, job: str) -> str:
        """Glue job name of a script in glue_jobs/ (raw_to_curated, rollups, compaction)."""
        return self._name(job.replace("_", "-"))

    @property
    def glue_workflow(self) -> str:
        return self._name("batch")

    def bucket(self, purpose: str, *, account: str, region: str) -> str:
        """Globally unique bucket name: `<prefix>-<purpose>-<account>-<region>` (lake, models, ...).

        Deterministic names let every stack address a bucket (and scope IAM to its prefixes)
        without cross-stack exports; account and region may be CloudFormation pseudo-parameters.
        """
        return f"{self.prefix}-{purpose}-{account}-{region}"


class StageConfig(_Frozen):
    """Everything that differs between stages. Built by `load_stage_config`; never mutated."""

    stage: str
    project: str = "airlake"
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    removal_policy: RemovalPolicyName = RemovalPolicyName.DESTROY
    log_retention_days: int = 30
    # Sets a tag on every resource; cost reports group by it.
    cost_center: str = "airlake"
    stream: StreamConfig = StreamConfig()
    firehose: FirehoseConfig = FirehoseConfig()
    event_source: EventSourceConfig = EventSourceConfig()
    lambdas: LambdaConfig = LambdaConfig()
    windows: WindowConfig = WindowConfig()
    alarms: AlarmConfig = AlarmConfig()
    athena: AthenaConfig = AthenaConfig()
    lake: LakeConfig = LakeConfig()
    glue: GlueConfig = GlueConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        if not _STAGE_NAME.match(self.stage):
            raise ValueError("stage must be 2-12 lower-case letters or digits, starting with a letter")
        if self.log_retention_days not in LOG_RETENTION_DAYS_ALLOWED:
            allowed = sorted(LOG_RETENTION_DAYS_ALLOWED)
            raise ValueError(f"log_retention_days={self.log_retention_days} is not one of {allowed}")
        if self.alarms.iterator_age_seconds >= self.event_source.max_record_age_seconds:
            raise ValueError(
                "alarms.iterator_age_seconds must be below event_source.max_record_age_seconds, "
                "otherwise records expire to the on-failure queue before anyone is told"
            )
        if self.event_source.max_record_age_seconds > self.stream.retention_hours * 3600:
            raise ValueError("event_source.max_record_age_seconds exceeds the stream retention")
        return self

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(prefix=f"{self.project}-{self.stage}", stage=self.stage)

    @property
    def retain_data(self) -> bool:
        return self.removal_policy is RemovalPolicyName.RETAIN


def stage_config_from_context(stage: str | None, stages: Mapping[str, Any]) -> StageConfig:
    """Validate one stage from a `stages` mapping (cdk.json `context.stages`)."""
    name = stage or DEFAULT_STAGE
    if name not in stages:
        raise StageConfigError(f"stage {name!r} is not defined in cdk.json context.stages {sorted(stages)}")
    raw = stages[name]
    if not isinstance(raw, Mapping):
        raise StageConfigError(f"cdk.json context.stages.{name} must be an object")
    try:
        return StageConfig.model_validate({**raw, "stage": name})
    except ValidationError as exc:
        raise StageConfigError(f"invalid settings for stage {name!r}:\n{exc}") from exc


def load_stage_config(stage: str | None = None, cdk_json: Path = DEFAULT_CDK_JSON) -> StageConfig:
    """Read `cdk.json` and return the validated settings of `stage` (default: context.stage, then dev)."""
    document = json.loads(cdk_json.read_text(encoding="utf-8"))
    context = document.get("context", {})
    stages = context.get("stages")
    if not isinstance(stages, Mapping):
        raise StageConfigError(f"{cdk_json} has no context.stages object")
    return stage_config_from_context(stage or context.get("stage"), stages)
