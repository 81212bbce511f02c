"""Fleet simulator: readings, ground-truth labels and deliberately broken records.

`records()` is the stream a producer sends: each item is the Kinesis record's bytes, its
partition key and what the platform should do with it (accept, quarantine with a reason, or
remove as a duplicate). The manifest of a run counts each, so conservation can be checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson

from airlake.contract.reasons import Reason
from airlake.simulate.fleet import EVENT_TYPES, FAULT_TYPES, Fleet, FleetConfig, Label

__all__ = ["EVENT_TYPES", "FAULT_TYPES", "Fleet", "FleetConfig", "Label", "SimRecord", "Simulation"]

ACCEPT: Final = "accept"
DUPLICATE: Final = "duplicate"


@dataclass(frozen=True, slots=True)
class SimRecord:
    data: bytes
    partition_key: str
    expected: str  # ACCEPT, DUPLICATE, or a Reason value
    readings: int = 1  # readings in the record (a JSON array when > 1)


def _truncated(r: dict[str, Any]) -> bytes:
    body = orjson.dumps(r)
    return body[: len(body) // 2]


def _latin1(r: dict[str, Any]) -> bytes:
    return orjson.dumps({**r, "firmware": "1.4.2-é"}).replace("é".encode(), b"\xe9")


def _nan(r: dict[str, Any]) -> bytes:
    return orjson.dumps(r).replace(b'"pm25":', b'"pm25":NaN,"_was":', 1)


def _negative(r: dict[str, Any]) -> bytes:
    return orjson.dumps({**r, "channels": {**r["channels"], "co2": -12.0}})


def _string_number(r: dict[str, Any]) -> bytes:
    channels = dict(r["channels"])
    channels["temperature"] = str(channels.get("temperature", 21.5))
    return orjson.dumps({**r, "channels": channels})


def _missing_device(r: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in r.items() if k != "device_id"})


def _future(r: dict[str, Any]) -> bytes:
    return orjson.dumps({**r, "ts": "2099-01-01T00:00:00Z"})


def _clock_reset(r: dict[str, Any]) -> bytes:
    return orjson.dumps({**r, "ts": 1000 + int(r["seq"])})


def _empty(_: dict[str, Any]) -> bytes:
    return b""


def _oversized(r: dict[str, Any]) -> bytes:
    return orjson.dumps({**r, "debug": "x" * 20_000})


# Broken records a real fleet sends, each with the reason the decoder must give.
MALFORMED: Final[tuple[tuple[Reason, Callable[[dict[str, Any]], bytes]], ...]] = (
    (Reason.INVALID_JSON, _truncated),
    (Reason.NOT_UTF8, _latin1),
    (Reason.NON_FINITE, _nan),
    (Reason.OUT_OF_RANGE, _negative),
    (Reason.WRONG_TYPE, _string_number),
    (Reason.MISSING_FIELD, _missing_device),
    (Reason.TS_IN_FUTURE, _future),
    (Reason.TS_TOO_OLD, _clock_reset),
    (Reason.EMPTY, _empty),
    (Reason.TOO_LARGE, _oversized),
)


class Simulation:
    """A fleet plus the record-level noise of a real deployment (garbage and resends)."""

    def __init__(
        self,
        config: FleetConfig,
        *,
        malformed_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        upload_every: int = 1,
    ) -> None:
        if not 0 <= malformed_rate < 1 or not 0 <= duplicate_rate < 1:
            raise ValueError("malformed_rate and duplicate_rate must be in [0, 1)")
        if not 1 <= upload_every <= 500:
            raise ValueError("upload_every must be 1..500 (readings per JSON-array record)")
        self.upload_every = upload_every
        self.record_count = 0
        self.config = config
        self.fleet = Fleet(config)
        self.malformed_rate = malformed_rate
        self.duplicate_rate = duplicate_rate
        self.counts: Counter[str] = Counter()

    def records(self) -> Iterator[SimRecord]:
        """The Kinesis records, in sending order. With `upload_every` > 1 a device buffers that
        many readings and uploads them as one JSON-array record (what battery-powered monitors do
        to save radio time); garbage is always a record of its own."""
        rng = np.random.default_rng([self.config.seed, 104729])
        pending_resends: list[SimRecord] = []
        buffers: dict[str, list[dict[str, Any]]] = {}
        for reading in self.fleet.readings():
            key = reading["device_id"]
            if self.malformed_rate and rng.random() < self.malformed_rate:
                reason, make = MALFORMED[int(rng.integers(len(MALFORMED)))]
                self.counts[reason.value] += 1
                self.record_count += 1
                yield SimRecord(make(reading), key, reason.value)
                continue
            buffer = buffers.setdefault(key, [])
            buffer.append(reading)
            if len(buffer) < self.upload_every:
                continue
            yield self._upload(key, buffer, rng, pending_resends)
            buffers[key] = []
            # A device resends after a missing acknowledgement: a little later, same bytes.
            if len(pending_resends) >= 8:
                yield from self._resend(pending_resends)
        for key, buffer in buffers.items():
            if buffer:
                yield self._upload(key, buffer, rng, pending_resends)
        yield from self._resend(pending_resends)

    def _upload(
        self, key: str, readings: list[dict[str, Any]], rng: np.random.Generator, resends: list[SimRecord]
    ) -> SimRecord:
        data = orjson.dumps(readings[0] if self.upload_every == 1 else readings)
        record = SimRecord(data, key, ACCEPT, len(readings))
        self.counts[ACCEPT] += len(readings)
        self.record_count += 1
        if self.duplicate_rate and rng.random() < self.duplicate_rate:
            resends.append(SimRecord(data, key, DUPLICATE, len(readings)))
        return record

    def _resend(self, resends: list[SimRecord]) -> Iterator[SimRecord]:
        for resend in resends:
            self.counts[DUPLICATE] += resend.readings
            self.record_count += 1
            yield resend
        resends.clear()

    def manifest(self) -> dict[str, Any]:
        """Counts of what was produced (valid after `records()` is exhausted).

        `records` are Kinesis records; `elements` the readings and garbage they carry:
        `elements = readings + duplicates + sum(malformed)`, the figure conservation is about.
        """
        labels = self.fleet.labels
        return {
            "config": {
                "devices": self.config.devices,
                "days": self.config.days,
                "step_s": self.config.step_s,
                "start": self.config.start.isoformat(),
                "seed": self.config.seed,
                "malformed_rate": self.malformed_rate,
                "duplicate_rate": self.duplicate_rate,
                "upload_every": self.upload_every,
            },
            "records": self.record_count,
            "elements": sum(self.counts.values()),
            "readings": self.counts[ACCEPT],
            "duplicates": self.counts[DUPLICATE],
            "malformed": {k: v for k, v in sorted(self.counts.items()) if k not in (ACCEPT, DUPLICATE)},
            "labels": dict(Counter(f"{lb.kind}:{lb.type}" for lb in labels)),
        }

    def devices(self) -> list[dict[str, Any]]:
        return [device.manifest(self.config) for device in self.fleet.devices]
