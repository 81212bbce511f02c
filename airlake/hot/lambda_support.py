"""What the three handlers share: building AWS-backed stages, metrics, the partial-batch response.

The stage does the work for the whole batch; Powertools' BatchProcessor then walks the records and
reports those whose sequence number the stage marked failed, so the response has exactly the shape
Lambda expects (`{"batchItemFailures": [{"itemIdentifier": <sequence number>}]}`) and a batch where
every record failed is reported as such instead of raising (the records are redelivered either way,
and raising would hide which ones).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from airlake.hot.pipeline import Outcome, parse_records


class RecordFailedError(RuntimeError):
    """Raised for a record the stage could not finish (an infrastructure error)."""


def client_factory(service: str) -> Callable[[], Any]:
    """A boto3 client created on first use, so AWS_ENDPOINT_URL set after import is honoured."""

    def create() -> Any:
        return boto3.session.Session().client(service)  # type: ignore[call-overload]

    return create


def environ() -> Mapping[str, str]:
    return os.environ


def run_batch(
    event: dict[str, Any],
    context: Any,
    process: Callable[[list[Any]], Outcome],
    *,
    logger: Logger,
    metrics: Metrics,
) -> dict[str, Any]:
    records = event.get("Records") or []
    if records:
        logger.set_correlation_id(str(records[0].get("eventID", "")))
    outcome = process(parse_records(event))
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=outcome.counts["records_in"])
    for name, value in sorted(outcome.counts.items()):
        if name != "records_in" and value:
            metrics.add_metric(
                name="".join(p.title() for p in name.split("_")), unit=MetricUnit.Count, value=value
            )
    for reason, value in sorted(outcome.quarantined.items()):
        metrics.add_metric(name=f"Quarantined_{reason}", unit=MetricUnit.Count, value=value)
    if outcome.model_version is not None:
        metrics.add_metadata(key="model_version", value=outcome.model_version)
    if outcome.failed:
        logger.warning(
            "records failed", extra={"failed": len(outcome.failed), "counts": dict(outcome.counts)}
        )
    else:
        logger.info("batch done", extra={"counts": dict(outcome.counts)})
    failed = outcome.failed

    def record_handler(record: KinesisStreamRecord) -> None:
        if record.kinesis.sequence_number in failed:
            raise RecordFailedError(record.kinesis.sequence_number)

    processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)
    response: dict[str, Any] = dict(process_partial_response(event, record_handler, processor, context))
    return response
