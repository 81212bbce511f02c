"""Fault-injection harness: the real hot-path handlers behind the local event source mapping.

    readings stream --ESM--> calibrate handler --KinesisStream--> calibrated stream --ESM--> aggregate
                                                                                    '--ESM--> classify --> notifier

Both streams are `MemoryKinesis`, an in-memory Kinesis that stores what it accepts and serves
GetRecords with real iterator semantics, so the handlers' AWS output code (KinesisStream's
PutRecords retries) and the ESM's checkpointing run unchanged. Faults are injected by wrapping a
handler (raise mid-batch after doing part of the work, outlive the function timeout, fail on a
poison record) or a dependency (a notifier whose publishes fail).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from airlake.calibration import load_calibrator
from airlake.hot.outputs import KinesisStream, MemoryLake, MemoryNotifier
from airlake.hot.pipeline import AggregateStage, CalibrateStage, ClassifyStage
from airlake.hot.state import InMemoryStateStore
from airlake.local.esm import EventSourceMapping, MappingSettings
from lambdas.aggregate import handler as aggregate_handler
from lambdas.calibrate import handler as calibrate_handler
from lambdas.classify import handler as classify_handler

T0_MS = 1_773_144_000_000  # 2026-03-10T12:00:00Z
MIN = 60_000
NO_MODELS = Path("/nonexistent-models")
Handler = Callable[[dict[str, Any], Any], Any]


class MemoryKinesis:
    """One-shard streams that keep what PutRecords accepted; GetRecords honours iterators."""

    def __init__(self) -> None:
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self._seq = 0

    def create(self, name: str) -> None:
        self.streams[name] = []

    def put(self, name: str, key: str, data: bytes, arrival_ms: int) -> str:
        self._seq += 1
        sequence = f"{self._seq:020d}"
        self.streams[name].append(
            {
                "SequenceNumber": sequence,
                "Data": data,
                "PartitionKey": key,
                "ApproximateArrivalTimestamp": datetime.fromtimestamp(arrival_ms / 1000, UTC),
            }
        )
        return sequence

    # -- the boto3 calls the code under test makes ------------------------------------------------
    def put_records(self, StreamName: str, Records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        results = []
        for entry in Records:
            doc = orjson.loads(entry["Data"])
            first = doc[0] if isinstance(doc, list) else doc  # a device's calibrated readings as an array
            arrival = int(first.get("ts", T0_MS)) + 2_000
            results.append(
                {"SequenceNumber": self.put(StreamName, entry["PartitionKey"], entry["Data"], arrival),
                 "ShardId": "shardId-000000000000"}
            )  # fmt: skip
        return {"FailedRecordCount": 0, "Records": results}

    def list_shards(self, StreamName: str) -> dict[str, Any]:
        return {"Shards": [{"ShardId": "shardId-000000000000"}]}

    def get_shard_iterator(
        self, StreamName: str, ShardId: str, ShardIteratorType: str, **kw: Any
    ) -> dict[str, Any]:
        records = self.streams[StreamName]
        if ShardIteratorType == "TRIM_HORIZON":
            start = 0
        else:
            wanted = kw["StartingSequenceNumber"]
            start = next(i for i, r in enumerate(records) if r["SequenceNumber"] == wanted)
            start += 1 if ShardIteratorType == "AFTER_SEQUENCE_NUMBER" else 0
        return {"ShardIterator": f"{StreamName}|{start}"}

    def get_records(self, ShardIterator: str, Limit: int = 10_000) -> dict[str, Any]:
        name, start_text = ShardIterator.split("|")
        start = int(start_text)
        records = self.streams[name][start : start + Limit]
        return {"Records": [dict(r) for r in records], "NextShardIterator": f"{name}|{start + len(records)}"}


def reading(device: str, minute: int, **channels: float) -> dict[str, Any]:
    base = {"co2": 600.0, "pm25": 8.0, "temperature": 21.0, "humidity": 45.0, "mox_co": 1100.0}
    return {
        "device_id": device,
        "ts": T0_MS + minute * MIN,
        "seq": 1000 + minute,
        "channels": {**base, **channels},
    }


def workload(minutes: int = 40) -> list[dict[str, Any]]:
    """Three devices, one reading a minute, interleaved by time as a real stream would carry them.

    dev-a: CO2 warning from minute 5, critical 15-19, clear from 20. dev-b: PM2.5 warning 10-25.
    """
    out = []
    for minute in range(minutes):
        co2 = 1500.0 if 5 <= minute < 15 else 2500.0 if 15 <= minute < 20 else 600.0
        out.append(reading("dev-a", minute, co2=co2))
        out.append(reading("dev-b", minute, pm25=40.0 if 10 <= minute <= 25 else 8.0))
        out.append(reading("dev-c", minute))
    return out


@dataclass
class Run:
    kinesis: MemoryKinesis
    lake: MemoryLake
    notifier: Any
    mappings: dict[str, EventSourceMapping] = field(default_factory=dict)
    on_failure: list[dict[str, Any]] = field(default_factory=list)

    def calibrated_keys(self) -> list[tuple[str, int, int]]:
        payloads = [orjson.loads(r["Data"]) for r in self.kinesis.streams["calibrated"]]
        # a calibrated record holds one reading, or a device's readings of the batch as an array
        docs = [d for p in payloads for d in (p if isinstance(p, list) else [p])]
        return [(d["device_id"], d["ts"], d["seq"]) for d in docs]

    def aggregates(self) -> list[bytes]:
        """Every closed window emitted, as canonical JSON (sorted: the set and its multiplicity)."""
        return sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in self.lake.docs("aggregates"))

    def published(self) -> list[str]:
        """Transition ids in the order the subscriber received them."""
        return [orjson.loads(message)["transition_id"] for message, _attrs in self.notifier.messages]


def settings(**changes: Any) -> MappingSettings:
    base: dict[str, Any] = {"batch_size": 10, "max_retry_attempts": 3, "max_record_age_s": 10**9}
    return MappingSettings(**{**base, **changes})


def run_pipeline(
    payloads: Sequence[dict[str, Any] | bytes],
    *,
    wrap_calibrate: Callable[[Handler], Handler] | None = None,
    wrap_classify: Callable[[Handler], Handler] | None = None,
    notifier: Any = None,
    mapping: MappingSettings | None = None,
) -> Run:
    """Put the payloads on the readings stream and drain calibrate, then aggregate and classify."""
    kinesis = MemoryKinesis()
    kinesis.create("readings")
    kinesis.create("calibrated")
    for payload in payloads:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        arrival = payload["ts"] + 2_000 if isinstance(payload, dict) else T0_MS
        key = payload["device_id"] if isinstance(payload, dict) else "unknown"
        kinesis.put("readings", key, data, arrival)
    run = Run(kinesis, MemoryLake(), notifier if notifier is not None else MemoryNotifier())
    clock = lambda: T0_MS / 1000 + 3_600  # noqa: E731 - a fixed "now" for TTLs and record age
    calibrate_handler.set_stage(
        CalibrateStage(load_calibrator(NO_MODELS), KinesisStream("calibrated", lambda: kinesis), run.lake)
    )
    aggregate_handler.set_stage(AggregateStage(InMemoryStateStore(), run.lake, clock=clock))
    classify_handler.set_stage(ClassifyStage(InMemoryStateStore(), run.lake, run.notifier, clock=clock))
    try:
        wiring: list[tuple[str, str, Handler]] = [
            ("calibrate", "readings", (wrap_calibrate or _same)(calibrate_handler.handler)),
            ("aggregate", "calibrated", aggregate_handler.handler),
            ("classify", "calibrated", (wrap_classify or _same)(classify_handler.handler)),
        ]
        for function, stream, handler in wiring:
            esm = EventSourceMapping(
                kinesis,
                stream,
                f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}",
                handler,
                function,
                mapping or settings(),
                on_failure=run.on_failure.append,
                clock=clock,
            )
            esm.drain()
            run.mappings[function] = esm
    finally:
        for module in (calibrate_handler, aggregate_handler, classify_handler):
            module.set_stage(None)
    return run


def _same(handler: Handler) -> Handler:
    return handler


def data_of(event: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]


def subset(event: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    return {"Records": event["Records"][start:stop]}


def crash_midway(times: int) -> Callable[[Handler], Handler]:
    """The function processes the first half of the batch (its outputs are written), then crashes;
    `times` invocations of batches with more than one record crash this way."""
    left = [times]

    def wrap(handler: Handler) -> Handler:
        def run(event: dict[str, Any], context: Any) -> Any:
            records = event["Records"]
            if left[0] > 0 and len(records) > 1:
                left[0] -= 1
                handler(subset(event, 0, len(records) // 2), context)
                raise RuntimeError("simulated crash mid-batch")
            return handler(event, context)

        return run

    return wrap


def outlive_timeout(times: int, sleep_s: float) -> Callable[[Handler], Handler]:
    """The function does all its work, then runs past the timeout (Lambda discards its result)."""
    left = [times]

    def wrap(handler: Handler) -> Handler:
        def run(event: dict[str, Any], context: Any) -> Any:
            response = handler(event, context)
            if left[0] > 0:
                left[0] -= 1
                time.sleep(sleep_s)
            return response

        return run

    return wrap


def poison(marker: bytes) -> Callable[[Handler], Handler]:
    """The function hits a bug on one record: any batch holding it raises before doing anything."""

    def wrap(handler: Handler) -> Handler:
        def run(event: dict[str, Any], context: Any) -> Any:
            if any(marker in data for data in data_of(event)):
                raise ValueError("simulated bug on a poison record")
            return handler(event, context)

        return run

    return wrap


@dataclass
class FlakyNotifier(MemoryNotifier):
    """An SNS topic whose n-th publish calls (1-based) fail; the subscriber sees accepted ones."""

    fail_calls: set[int] = field(default_factory=set)
    calls: int = 0

    def publish(self, message: str, attributes: Any) -> None:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise ConnectionError("simulated SNS publish failure")
        super().publish(message, attributes)
