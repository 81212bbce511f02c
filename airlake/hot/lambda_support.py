"""What the three handlers share: building AWS-backed stages, metrics, the partial-batch response.

The stage does the work for the whole batch and returns the sequence numbers of the records it
could not finish; the response names exactly those, in record order, in the shape Lambda expects
(`{"batchItemFailures": [{"itemIdentifier": <sequence number>}]}`). A batch where every record
failed is reported as such instead of raising (the records are redelivered either way, and raising
would hide which ones). The response is built here rather than by Powertools' BatchProcessor: that
utility exists to run a handler per record and catch its exceptions, while our stages work on the
whole batch, so walking 10,000 records through it only to re-read the failed set cost more than the
aggregate stage's own per-record work (benchmarks/bench_handlers.py).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from airlake.hot.pipeline import Outcome, parse_records


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
    # The cyclic GC is paused for the batch: a 10,000-record batch allocates hundreds of thousands of
    # short-lived dicts and lists (none in reference cycles: reference counting frees them), and the
    # collections they trigger cost 10-20 % of the aggregate stage (benchmarks/bench_handlers.py).
    # Anything cyclic made meanwhile is collected once it is back on.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        outcome = process(parse_records(event))
    finally:
        if was_enabled:
            gc.enable()
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
    return partial_batch_response(records, outcome.failed)


def partial_batch_response(records: list[dict[str, Any]], failed: set[str]) -> dict[str, Any]:
    """`ReportBatchItemFailures`: the failed records' sequence numbers, in record order."""
    if not failed:
        return {"batchItemFailures": []}
    return {
        "batchItemFailures": [
            {"itemIdentifier": sequence}
            for record in records
            if (sequence := record["kinesis"]["sequenceNumber"]) in failed
        ]
    }
