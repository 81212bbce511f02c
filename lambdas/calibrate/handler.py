"""Calibrate Lambda: readings stream -> calibrated stream. Thin: all logic is in airlake.hot.

Importing this module needs no environment; settings are read on the first invocation, unless the
local runtime or a test injected a stage with `set_stage(build_stage(...))`.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from airlake.calibration import Calibrator, ModelProvider
from airlake.hot.lambda_support import client_factory, environ, run_batch
from airlake.hot.models import S3ModelSource
from airlake.hot.outputs import KinesisStream, S3Lake
from airlake.hot.pipeline import CalibrateStage
from airlake.hot.settings import CalibrateSettings

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Airlake"))
tracer = Tracer()
_stage: CalibrateStage | None = None


def build_stage(settings: CalibrateSettings) -> CalibrateStage:
    """The AWS-backed stage: models from S3 via the SSM pointer, Kinesis out, S3 lake."""
    source = S3ModelSource(
        settings.models_bucket, settings.model_pointer_parameter, client_factory("s3"), client_factory("ssm")
    )
    return CalibrateStage(
        Calibrator(ModelProvider(source)),
        KinesisStream(settings.calibrated_stream_name, client_factory("kinesis")),
        S3Lake(settings.lake_bucket, client_factory("s3")),
    )


def set_stage(stage: CalibrateStage | None) -> None:
    global _stage
    _stage = stage


def _get_stage() -> CalibrateStage:
    if _stage is None:
        set_stage(build_stage(CalibrateSettings.from_env(environ())))
    assert _stage is not None
    return _stage


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_batch(event, context, _get_stage().process, logger=logger, metrics=metrics)
