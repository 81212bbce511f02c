"""The reading contract as a pydantic model, and the JSON Schema published for device makers.

The decoder (airlake.contract.decoder) enforces the same rules with plain checks because it runs
on every record of the hot path; tests prove both accept and reject the same documents. Run
`python -m airlake.contract.model` to regenerate `schemas/reading.v1.json` (a test fails when
the file and this model disagree).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airlake.contract.limits import (
    CHANNEL_RANGES,
    FLEET_EPOCH,
    FLEET_EPOCH_MS,
    MAX_CHANNELS,
    MAX_DEVICE_ID_LENGTH,
    MAX_SEQ,
    MAX_TEXT_LENGTH,
    SCHEMA_VERSION,
    UNKNOWN_CHANNEL_LIMIT,
)

SCHEMA_PATH: Final = Path(__file__).resolve().parents[2] / "schemas" / f"reading.v{SCHEMA_VERSION}.json"
SCHEMA_ID: Final = f"https://schemas.airlake.dev/reading.v{SCHEMA_VERSION}.json"


class ReadingV1(BaseModel):
    """One reading: what a device puts in one Kinesis record (or one element of a JSON array)."""

    model_config = ConfigDict(strict=True, extra="allow", title="Airlake reading, schema version 1")

    device_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_DEVICE_ID_LENGTH,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Stable device identifier; also the Kinesis partition key.",
        ),
    ]
    ts: Annotated[
        datetime | int,
        Field(
            description=(
                "Event time: ISO-8601 with a UTC offset (e.g. 2026-09-01T08:00:00Z), or epoch milliseconds. "
                f"Not before {FLEET_EPOCH.date()}, at most 5 minutes after arrival."
            )
        ),
    ]
    seq: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_SEQ,
            description="Producer-set counter, increasing per device. With device_id and ts it "
            "forms the idempotency key.",
        ),
    ]
    firmware: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTH, description="Firmware version.")] = None
    model: Annotated[str | None, Field(max_length=MAX_TEXT_LENGTH, description="Hardware model.")] = None
    channels: Annotated[
        dict[str, float],
        Field(
            min_length=1,
            max_length=MAX_CHANNELS,
            description="Channel name -> value. Open map: unknown channels are kept. Known channels have "
            "physical ranges (see properties).",
        ),
    ]

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("ts must be an ISO-8601 string with offset or integer epoch milliseconds")
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("ts needs a UTC offset")
            return parsed
        if value < FLEET_EPOCH_MS:
            raise ValueError("ts before the fleet epoch")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: dict[str, float]) -> dict[str, float]:
        for name, value in channels.items():
            if not math.isfinite(value):
                raise ValueError(f"channel {name} is not finite")
            low, high = CHANNEL_RANGES.get(name, (-UNKNOWN_CHANNEL_LIMIT, UNKNOWN_CHANNEL_LIMIT, ""))[:2]
            if not low <= value <= high:
                raise ValueError(f"channel {name}={value} outside [{low}, {high}]")
        return channels


def json_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12), with the physical range of each known channel."""
    schema = ReadingV1.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["description"] = (
        "One air-quality reading. A Kinesis record holds one reading, or a JSON array of up to 500. "
        "Unknown top-level fields are stored in the raw zone and ignored downstream."
    )
    schema["properties"]["ts"] = {
        "description": schema["properties"]["ts"]["description"],
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "integer", "minimum": FLEET_EPOCH_MS},
        ],
    }
    channels = schema["properties"]["channels"]
    channels["additionalProperties"] = {
        "type": "number",
        "minimum": -UNKNOWN_CHANNEL_LIMIT,
        "maximum": UNKNOWN_CHANNEL_LIMIT,
    }
    channels["properties"] = {
        name: {"type": "number", "minimum": low, "maximum": high, "description": unit}
        for name, (low, high, unit) in sorted(CHANNEL_RANGES.items())
    }
    for name in ("firmware", "model"):
        schema["properties"][name] = {
            "type": ["string", "null"],
            "maxLength": MAX_TEXT_LENGTH,
            "description": schema["properties"][name]["description"],
        }
    return schema


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(render_schema())
    print(f"wrote {SCHEMA_PATH}")
