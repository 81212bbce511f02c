"""Aggregate Lambda: calibrated stream -> event-time windows -> closed windows in the lake.

Importing this module needs no environment; settings are read on the first invocation, unless the
local runtime or a test injected a stage with `set_stage(...)`.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from airlake.hot.lambda_support import client_factory, environ, run_batch
from airlake.hot.outputs import S3Lake
from airlake.hot.pipeline import AggregateStage
from airlake.hot.settings import AggregateSettings
from airlake.hot.state import DynamoDBStateStore

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Airlake"))
tracer = Tracer()
_stage: AggregateStage | None = None


def build_stage(settings: AggregateSettings) -> AggregateStage:
    """The AWS-backed stage: DynamoDB state, S3 lake."""
    return AggregateStage(
        DynamoDBStateStore(settings.state_table_name, client_factory("dynamodb")),
        S3Lake(settings.lake_bucket, client_factory("s3")),
    )


def set_stage(stage: AggregateStage | None) -> None:
    global _stage
    _stage = stage


def _get_stage() -> AggregateStage:
    if _stage is None:
        set_stage(build_stage(AggregateSettings.from_env(environ())))
    assert _stage is not None
    return _stage


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_batch(event, context, _get_stage().process, logger=logger, metrics=metrics)
