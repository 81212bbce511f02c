"""Classify Lambda: calibrated stream -> air-quality events and device faults -> SNS alerts.

Importing this module needs no environment; settings are read on the first invocation, unless the
local runtime or a test injected a stage with `set_stage(...)`.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from airlake.calibration import ModelProvider
from airlake.hot.lambda_support import client_factory, environ, run_batch
from airlake.hot.models import S3ModelSource
from airlake.hot.outputs import S3Lake, SnsNotifier
from airlake.hot.pipeline import ClassifyStage
from airlake.hot.settings import ClassifySettings
from airlake.hot.state import DynamoDBStateStore

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Airlake"))
tracer = Tracer()
_stage: ClassifyStage | None = None


def build_stage(settings: ClassifySettings) -> ClassifyStage:
    """The AWS-backed stage: DynamoDB state, S3 lake, SNS topic, models (classifier, devices) from S3."""
    source = S3ModelSource(
        settings.models_bucket, settings.model_pointer_parameter, client_factory("s3"), client_factory("ssm")
    )
    return ClassifyStage(
        DynamoDBStateStore(settings.state_table_name, client_factory("dynamodb")),
        S3Lake(settings.lake_bucket, client_factory("s3")),
        SnsNotifier(settings.alerts_topic_arn, client_factory("sns")),
        ModelProvider(source),
    )


def set_stage(stage: ClassifyStage | None) -> None:
    global _stage
    _stage = stage


def _get_stage() -> ClassifyStage:
    if _stage is None:
        set_stage(build_stage(ClassifySettings.from_env(environ())))
    assert _stage is not None
    return _stage


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_batch(event, context, _get_stage().process, logger=logger, metrics=metrics)
