"""Shared helpers of the hot-path tests: real-shaped Kinesis events and a fake Lambda context."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

EVENTS = Path(__file__).resolve().parent.parent / "events"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # a fixed UTC start; tests use offsets from it
T0_MS = int(T0.timestamp() * 1000)
MIN = 60_000
STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/airlake-dev-readings"


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def reading(device_id: str, offset_ms: int, seq: int, **channels: float) -> dict[str, Any]:
    return {"device_id": device_id, "ts": T0_MS + offset_ms, "seq": seq, "channels": channels}


def kinesis_event(
    payloads: Sequence[bytes | dict[str, Any]],
    *,
    arrival_ms: int | None = None,
    first_seq: int = 1,
    shard: str = "shardId-000000000000",
) -> dict[str, Any]:
    """A Kinesis event exactly as Lambda delivers it (one record per payload)."""
    records = []
    for i, payload in enumerate(payloads):
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        device = payload.get("device_id", "x") if isinstance(payload, dict) else "x"
        arrival = (
            arrival_ms
            if arrival_ms is not None
            else (
                payload["ts"] + 2_000
                if isinstance(payload, dict) and isinstance(payload.get("ts"), int)
                else T0_MS
            )
        )
        sequence = f"4961{first_seq + i:052d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": str(device),
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode("ascii"),
                    "approximateArrivalTimestamp": arrival / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/airlake-dev-hot",
                "awsRegion": "eu-west-1",
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}


def seqnos(event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


@dataclass
class FakeContext:
    function_name: str = "airlake-dev-hot"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:airlake-dev-hot"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    log_group_name: str = "/aws/lambda/airlake-dev-hot"
    log_stream_name: str = "2026/03/10/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()
