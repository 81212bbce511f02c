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
        self, config: FleetConfig, *, malformed_rate: float = 0.0, duplicate_rate: float = 0.0
    ) -> None:
        if not 0 <= malformed_rate < 1 or not 0 <= duplicate_rate < 1:
            raise ValueError("malformed_rate and duplicate_rate must be in [0, 1)")
        self.config = config
        self.fleet = Fleet(config)
        self.malformed_rate = malformed_rate
        self.duplicate_rate = duplicate_rate
        self.counts: Counter[str] = Counter()

    def records(self) -> Iterator[SimRecord]:
        rng = np.random.default_rng([self.config.seed, 104729])
        pending_resends: list[SimRecord] = []
        for reading in self.fleet.readings():
            key = reading["device_id"]
            if self.malformed_rate and rng.random() < self.malformed_rate:
                reason, make = MALFORMED[int(rng.integers(len(MALFORMED)))]
                record = SimRecord(make(reading), key, reason.value)
            else:
                record = SimRecord(orjson.dumps(reading), key, ACCEPT)
                if self.duplicate_rate and rng.random() < self.duplicate_rate:
                    pending_resends.append(SimRecord(record.data, key, DUPLICATE))
            self.counts[record.expected] += 1
            yield record
            # A device resends after a missing acknowledgement: a little later, same bytes.
            if len(pending_resends) >= 8:
                for resend in pending_resends:
                    self.counts[DUPLICATE] += 1
                    yield resend
                pending_resends.clear()
        for resend in pending_resends:
            self.counts[DUPLICATE] += 1
            yield resend

    def manifest(self) -> dict[str, Any]:
        """Counts of what was produced (valid after `records()` is exhausted)."""
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
            },
            "records": sum(self.counts.values()),
            "readings": self.counts[ACCEPT],
            "duplicates": self.counts[DUPLICATE],
            "malformed": {k: v for k, v in sorted(self.counts.items()) if k not in (ACCEPT, DUPLICATE)},
            "labels": dict(Counter(f"{lb.kind}:{lb.type}" for lb in labels)),
        }

    def devices(self) -> list[dict[str, Any]]:
        return [device.manifest(self.config) for device in self.fleet.devices]
