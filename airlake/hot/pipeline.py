"""The three hot-path stages as plain objects: Kinesis records in, an outcome out.

Each stage processes a whole batch at once (state I/O is batched per device), then reports which
Kinesis sequence numbers failed. The Lambda handlers turn that set into the `batchItemFailures`
response (airlake.hot.lambda_support); the local runtime and the tests call `process` directly. Failure policy:

* Bad input is never a failure: it is quarantined (`hot/quarantine/`) with its reason and counted,
  so a poison record cannot block its shard.
* Only infrastructure errors fail records: a calibrated record the stream refused after retries,
  a lake write that failed, a state write whose condition failed, an SNS publish that failed after
  retries. Those records' devices keep their old state, so the redelivery starts clean.
* Everything is idempotent under redelivery (Lambda redelivers every record after the lowest
  failed sequence number): see airlake.windows and airlake.classification.
"""

from __future__ import annotations

import base64
import functools
import statistics
import time
from binascii import a2b_base64
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, Final, NamedTuple

import orjson

from airlake.alerts import build_alert, message_attributes
from airlake.calibration import REPORT_INTERVAL_FIELD, Calibrator, ModelProvider, interval_ms
from airlake.classification import (
    AIR_QUALITY_RULES,
    DeviceClassState,
    EventRule,
    FaultConfig,
    Transition,
    check_drift,
    check_dropouts,
    classify_readings,
    peer_index,
)
from airlake.contract import Quarantined, Reading, decode
from airlake.contract.decoder import decode_document, decode_record
from airlake.contract.decoder import iso_from_ms as _iso_from_ms
from airlake.hot.outputs import Lake, Notifier, RecordStream, write_jsonl, write_lines
from airlake.hot.state import Key, StateStore, Stored, Write
from airlake.windows import (
    ApplyResult,
    BatchFold,
    DeviceWindows,
    RecordEncoder,
    WindowConfig,
    accept_documents,
    close_documents,
)

STATE_TTL_S: Final = 7 * 24 * 3600
# Window bounds repeat across devices and channels: format each instant once.
iso_from_ms = functools.lru_cache(maxsize=8192)(_iso_from_ms)
ROSTER_FORGET_MS: Final = STATE_TTL_S * 1000
PUBLISHED_MEMORY: Final = 64  # transition ids remembered per device
DEFAULT_WINDOWS: Final = WindowConfig()
DEFAULT_FAULTS: Final = FaultConfig()


class KinesisRecord(NamedTuple):
    """One record of a Lambda event (immutable)."""

    sequence_number: str
    data: bytes
    arrival_ms: int
    partition_key: str
    event_id: str  # "<shard id>:<sequence number>"

    @property
    def shard_id(self) -> str:
        """The record's shard (from its event id; only quarantine documents need it)."""
        shard, colon, _sequence = self.event_id.partition(":")
        return shard if colon else "shard"


_new_tuple = tuple.__new__  # a NamedTuple built from its fields in one C call (its __new__ is Python)


def parse_records(event: Mapping[str, Any]) -> list[KinesisRecord]:
    """The Kinesis records of a Lambda event, data base64-decoded, arrival time in ms."""
    out = []
    for record in event.get("Records", []):
        kinesis = record["kinesis"]
        out.append(
            _new_tuple(
                KinesisRecord,
                (
                    kinesis["sequenceNumber"],
                    a2b_base64(kinesis["data"]),  # what base64.b64decode calls, minus its wrapper
                    int(float(kinesis["approximateArrivalTimestamp"]) * 1000),
                    kinesis.get("partitionKey", ""),
                    str(record.get("eventID", "")),
                ),
            )
        )
    return out


@dataclass(slots=True)
class Outcome:
    failed: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)  # by reason
    model_version: str | None = None


def _quarantine_doc(q: Quarantined, record: KinesisRecord, stage: str) -> tuple[int, dict[str, Any]]:
    try:
        raw_text: str | None = q.raw.decode("utf-8")
        raw_b64: str | None = None
    except UnicodeDecodeError:
        raw_text, raw_b64 = None, base64.b64encode(q.raw).decode("ascii")
    return record.arrival_ms, {
        "stage": stage,
        "reason": str(q.reason),
        "detail": q.detail,
        "device_id": q.device_id,
        "index": q.index,
        "raw_text": raw_text,
        "raw_b64": raw_b64,
        "sequence_number": record.sequence_number,
        "shard_id": record.shard_id,
        "arrival": iso_from_ms(record.arrival_ms),
    }


@dataclass(slots=True)
class _Decoded:
    by_device: dict[str, list[Reading]] = field(default_factory=lambda: defaultdict(list))
    seqnos: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # device -> record seqnos
    quarantine: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    quarantine_seqnos: set[str] = field(default_factory=set)
    intervals: dict[str, int] = field(default_factory=dict)  # device -> reporting interval (ms)


# Calibrated readings per calibrated-stream record: a device's readings of one batch go together,
# which cuts PutRecords/GetRecords traffic by that factor (records stay far below 1 MiB: ~0.5 KB each).
CALIBRATED_PER_RECORD: Final = 100
_NUMBER_TYPES: Final = frozenset((float, int))  # exact types: a bool is not a channel value
_FLOAT_ONLY: Final = {float}


def decode_calibrated(data: bytes, received_ms: int) -> tuple[list[Reading | Quarantined], int | None]:
    """Decode a record of the calibrated stream, which only the calibrate stage writes; also return
    the device's reporting interval in ms the calibrate stage stamped on it (None when absent).

    Its readings already passed the contract there, so a record with the expected shape (string
    device_id, integer ts and seq, numeric channels) is taken as is; anything else goes through the
    full contract decoder, so a foreign or corrupted record is still quarantined, never crashes
    the batch.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return decode(data, received_ms=received_ms), None
    docs = obj if type(obj) is list else [obj]
    readings: list[Reading | Quarantined] = []
    for doc in docs:
        reading = _calibrated_reading(doc)
        if reading is None:
            return decode(data, received_ms=received_ms), None
        readings.append(reading)
    if not readings:
        return decode(data, received_ms=received_ms), None
    return readings, interval_ms(docs[0].get(REPORT_INTERVAL_FIELD))


def _calibrated_reading(doc: Any) -> Reading | None:
    """The reading of one calibrated document of the expected shape, else None."""
    if type(doc) is not dict:
        return None
    device_id, ts, seq, channels = doc.get("device_id"), doc.get("ts"), doc.get("seq"), doc.get("channels")
    if (
        type(device_id) is str
        and type(ts) is int
        and type(seq) is int
        and type(channels) is dict
        and channels
        and _NUMBER_TYPES.issuperset(map(type, channels.values()))
    ):
        return Reading(device_id, ts, seq, channels, doc.get("firmware"), doc.get("model"))
    return None


def _decode_all(
    records: Sequence[KinesisRecord], outcome: Outcome, stage: str, *, calibrated: bool = False
) -> _Decoded:
    decoded = _Decoded()
    intervals, by_device, seqnos = decoded.intervals, decoded.by_device, decoded.seqnos
    for record in records:
        if calibrated:
            items, interval = decode_calibrated(record.data, record.arrival_ms)
            if interval is not None:
                first = items[0]
                if type(first) is Reading:
                    intervals[first.device_id] = interval
        else:
            result = decode_record(record.data, record.arrival_ms)
            if isinstance(result, Reading):  # one valid reading: the usual raw record
                by_device[result.device_id].append(result)
                seqnos[result.device_id].add(record.sequence_number)
                continue
            items = result
        device = None  # a record's readings are usually one device's: look its lists up once
        for item in items:
            if type(item) is Reading:
                if item.device_id != device:
                    device = item.device_id
                    device_readings = by_device[device]
                    seqnos[device].add(record.sequence_number)
                device_readings.append(item)
            else:
                assert isinstance(item, Quarantined)
                outcome.quarantined[str(item.reason)] += 1
                decoded.quarantine.append(_quarantine_doc(item, record, stage))
                decoded.quarantine_seqnos.add(record.sequence_number)
    outcome.counts["records_in"] += len(records)
    outcome.counts["quarantined"] += len(decoded.quarantine)
    return decoded


def _decode_documents(records: Sequence[KinesisRecord], outcome: Outcome) -> _DecodedDocuments:
    """`_decode_all(records, outcome, "calibrate")` with each reading as its wire document
    (`Reading.to_dict()`, or the record's own parsed object when it is exactly that:
    `decode_document`): the same readings, record numbers, quarantine and counts."""
    decoded = _DecodedDocuments()
    by_device, seqnos = decoded.by_device, decoded.seqnos
    for record in records:
        result = decode_document(record.data, record.arrival_ms)
        if type(result) is dict:  # one valid reading in its wire form: the usual raw record
            by_device[result["device_id"]].append(result)
            seqnos[result["device_id"]].add(record.sequence_number)
            continue
        device = None  # a record's readings are usually one device's: look its lists up once
        for item in [result] if isinstance(result, Reading) else result:
            if type(item) is Reading:
                if item.device_id != device:
                    device = item.device_id
                    device_docs = by_device[device]
                    seqnos[device].add(record.sequence_number)
                device_docs.append(item.to_dict())
            else:
                assert isinstance(item, Quarantined)
                outcome.quarantined[str(item.reason)] += 1
                decoded.quarantine.append(_quarantine_doc(item, record, "calibrate"))
                decoded.quarantine_seqnos.add(record.sequence_number)
    outcome.counts["records_in"] += len(records)
    outcome.counts["quarantined"] += len(decoded.quarantine)
    return decoded


def _write_quarantine(lake: Lake, decoded: _Decoded | _DecodedDocuments, outcome: Outcome) -> None:
    if not decoded.quarantine:
        return
    try:
        write_jsonl(lake, "quarantine", decoded.quarantine)
    except Exception:
        outcome.failed |= decoded.quarantine_seqnos  # retried; the quarantine object key is stable


class CalibrateStage:
    """readings stream -> decode -> calibrate -> calibrated stream (+ quarantine to the lake).

    A calibrated record is the reading (device_id, ts, seq, firmware, model) whose `channels` hold
    the device's raw channels plus the calibrated `co`, `nox`, `no2`, with `calibrated` naming the
    calibrated ones, `model_version` the registry version that produced them and, for a device the
    registry (devices.json) knows, its `report_interval_s`: the aggregate and classify stages have
    no registry of their own (their functions get no models bucket), so the interval they scale
    completeness and fault timings by travels with the reading.
    """

    def __init__(self, calibrator: Calibrator, stream: RecordStream, lake: Lake) -> None:
        self.calibrator = calibrator
        self.stream = stream
        self.lake = lake

    def process(self, records: Sequence[KinesisRecord]) -> Outcome:
        outcome = Outcome()
        decoded = _decode_documents(records, outcome)
        out: list[tuple[str, bytes]] = []
        calibrated_names: dict[tuple[str, ...], list[str]] = {}  # shared lists: the docs are only serialized
        version = None
        if decoded.by_device:
            batch = {
                device_id: [(doc["channels"], doc["ts"]) for doc in docs]
                for device_id, docs in decoded.by_device.items()
            }
            calibrated_batch, version = self.calibrator.calibrate_batch(batch)
        for device_id, docs in decoded.by_device.items():
            interval = self.calibrator.report_interval_s(device_id)
            if interval is None:
                outcome.counts["default_interval_devices"] += 1
            # Each document is this batch's own (parsed from its record, or made from its Reading,
            # and dropped after the batch): it becomes the calibrated reading in place.
            for doc, calibrated in zip(docs, calibrated_batch[device_id], strict=True):
                names = tuple(calibrated)  # the calibrated targets, sorted: the same few every time
                sorted_names = calibrated_names.get(names)
                if sorted_names is None:
                    sorted_names = calibrated_names[names] = sorted(calibrated)
                doc["channels"].update(calibrated)
                doc["calibrated"] = sorted_names
                doc["model_version"] = version
                if interval is not None:
                    doc[REPORT_INTERVAL_FIELD] = interval
            outcome.counts["readings"] += len(docs)
            # A device's readings of one batch travel together: one record per CALIBRATED_PER_RECORD
            # (a JSON array, as the contract allows), a single reading as a plain object.
            for start in range(0, len(docs), CALIBRATED_PER_RECORD):
                chunk = docs[start : start + CALIBRATED_PER_RECORD]
                out.append((device_id, orjson.dumps(chunk[0] if len(chunk) == 1 else chunk)))
        outcome.model_version = version
        _write_quarantine(self.lake, decoded, outcome)
        if out:
            try:
                failed = self.stream.put_records(out)
            except Exception:  # the stream is unreachable even after retries: every reading is retried
                failed = list(range(len(out)))
            if failed:
                failed_devices = {out[i][0] for i in failed}
                for device_id in failed_devices:
                    outcome.failed |= decoded.seqnos[device_id]
                outcome.counts["put_failed"] += len(failed)
        return outcome


class AggregateStage:
    """calibrated stream -> event-time windows per device -> closed windows to the lake."""

    def __init__(
        self,
        store: StateStore,
        lake: Lake,
        config: WindowConfig = DEFAULT_WINDOWS,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lake = lake
        self.config = config
        self.clock = clock
        self.encoder = RecordEncoder()

    def process(self, records: Sequence[KinesisRecord]) -> Outcome:
        outcome = Outcome()
        decoded = _decode_aggregate(records, outcome)
        _write_quarantine(self.lake, decoded, outcome)
        devices = sorted(decoded.by_device)
        if not devices:
            return outcome
        keys = {d: (f"agg#{d}", "windows") for d in devices}
        stored = self.store.get_many(list(keys.values()))
        writes: list[Write] = []
        emitted: list[tuple[int, bytes]] = []  # (start_ms, aggregate record as a JSON line)
        late: list[tuple[int, dict[str, Any]]] = []
        devices_with_output: set[str] = set()
        unwritable = False  # a record orjson cannot write (an integer sum beyond 64 bits)
        encode = self.encoder.encode
        expires = int(self.clock()) + STATE_TTL_S
        # Two passes: every device's readings into its panes (the usual ones' folds and averages
        # deferred to one BatchFold, computed together), then every device's closed windows.
        batch = BatchFold()
        accepted: list[tuple[str, Stored | None, DeviceWindows, ApplyResult]] = []
        for device_id in devices:
            current = stored.get(keys[device_id])
            state = DeviceWindows.from_doc(device_id, None if current is None else current.doc)
            interval = decoded.intervals.get(device_id)
            if interval is not None:
                state.step_ms = interval
            elif state.step_ms is None:
                outcome.counts["default_interval_devices"] += 1
            floats = device_id not in decoded.not_float_only
            result = accept_documents(
                state, decoded.by_device[device_id], self.config, batch if floats else None
            )
            accepted.append((device_id, current, state, result))
        batch.run()
        for device_id, current, state, result in accepted:
            close_documents(state, self.config, result)
            outcome.counts["accepted"] += result.accepted
            outcome.counts["duplicates"] += result.duplicates
            outcome.counts["late"] += len(result.late)
            outcome.counts["aggregates"] += len(result.windows)
            if result.windows and not unwritable:
                try:  # also sets state.latest to the records
                    emitted += encode(device_id, result.windows, state.latest)
                except TypeError:  # what the lake write below would have failed on: the same outcome
                    unwritable = True
            if result.late:
                closed_until = iso_from_ms(state.closed_until or 0)
                late += [(doc["ts"], _late_doc(doc, closed_until)) for doc in result.late]
            if result.windows or result.late:
                devices_with_output.add(device_id)
            if result.accepted or result.late or result.windows:
                pk, sk = keys[device_id]
                writes.append(
                    Write(pk, sk, state.to_doc(), None if current is None else current.version, expires)
                )
        try:  # output first, state second: a crash in between re-emits the same (stable) objects
            if unwritable:
                raise TypeError("an aggregate record has a number orjson cannot write")
            if emitted:
                write_lines(self.lake, "aggregates", emitted)
            if late:
                write_jsonl(self.lake, "late", late)
        except Exception:
            for device_id in devices_with_output:
                outcome.failed |= decoded.seqnos[device_id]
            writes = [w for w in writes if w.pk[4:] not in devices_with_output]
        for pk, _sk in self.store.put_many(writes):
            outcome.failed |= decoded.seqnos[pk[4:]]
            outcome.counts["state_conflicts"] += 1
        return outcome


_CALIBRATED_FIELDS: Final = itemgetter("device_id", "ts", "seq", "channels")


@dataclass(slots=True)
class _DecodedDocuments:
    """`_Decoded` for the aggregate stage: each device's readings as wire documents (dicts with
    device_id, ts, seq, channels, and firmware and model when not null), not Reading objects."""

    by_device: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    seqnos: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # device -> record seqnos
    quarantine: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    quarantine_seqnos: set[str] = field(default_factory=set)
    intervals: dict[str, int] = field(default_factory=dict)  # device -> reporting interval (ms)
    not_float_only: set[str] = field(default_factory=set)  # devices with a channel value not a float


def _decode_aggregate(records: Sequence[KinesisRecord], outcome: Outcome) -> _DecodedDocuments:
    """`_decode_all(records, outcome, "aggregate", calibrated=True)`, each reading as its document
    (`Reading.to_dict()` for a record only the contract decoder could read): the same readings,
    record numbers, intervals, quarantine and counts. A record's documents are checked and
    grouped together (`_calibrated_documents`)."""
    decoded = _DecodedDocuments()
    intervals, by_device, seqnos = decoded.intervals, decoded.by_device, decoded.seqnos
    for record in records:
        found = _calibrated_documents(record.data)
        if found is not None:
            docs, device_ids, interval, float_only = found
            device = device_ids[0]
            if interval is not None:
                intervals[device] = interval
            if device_ids.count(device) == len(device_ids):  # one device's readings (the usual case)
                by_device[device].extend(docs)
                seqnos[device].add(record.sequence_number)
                if not float_only:
                    decoded.not_float_only.add(device)
                continue
            items: Sequence[Any] = docs
        else:
            items, interval = decode_calibrated(record.data, record.arrival_ms)
            if interval is not None:
                first = items[0]
                if type(first) is Reading:
                    intervals[first.device_id] = interval
        current = None  # a record's readings are usually one device's: look its lists up once
        for item in items:
            if type(item) is Quarantined:
                outcome.quarantined[str(item.reason)] += 1
                decoded.quarantine.append(_quarantine_doc(item, record, "aggregate"))
                decoded.quarantine_seqnos.add(record.sequence_number)
                continue
            doc = item.to_dict() if type(item) is Reading else item
            if doc["device_id"] != current:
                current = doc["device_id"]
                device_docs = by_device[current]
                seqnos[current].add(record.sequence_number)
                decoded.not_float_only.add(current)  # types not known here: no array folds for it
            device_docs.append(doc)
    outcome.counts["records_in"] += len(records)
    outcome.counts["quarantined"] += len(decoded.quarantine)
    return decoded


def _calibrated_documents(
    data: bytes,
) -> tuple[list[dict[str, Any]], tuple[str, ...], int | None, bool] | None:
    """The documents of a calibrated-stream record when `decode_calibrated` takes every one of them
    as is (`_calibrated_reading`: string device_id, integer ts and seq, non-empty channels of
    numbers), checked a field at a time across all documents (C-level passes); with their device
    ids, the reporting interval, and whether every channel value is a float (what the windows'
    array folds take). None for anything else (`decode_calibrated` says what)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    docs = obj if type(obj) is list else [obj]
    if not docs or set(map(type, docs)) != {dict}:
        return None
    try:
        device_ids, times, seqs, channels = zip(*map(_CALIBRATED_FIELDS, docs), strict=True)
    except KeyError:  # a field missing
        return None
    if (
        set(map(type, device_ids)) == {str}
        and set(map(type, times)) == {int}
        and set(map(type, seqs)) == {int}
        and set(map(type, channels)) == {dict}
        and all(channels)
        and _NUMBER_TYPES.issuperset(types := set(map(type, chain.from_iterable(map(dict.values, channels)))))
    ):
        return docs, device_ids, interval_ms(docs[0].get(REPORT_INTERVAL_FIELD)), types == _FLOAT_ONLY
    return None


def _late_doc(doc: Mapping[str, Any], closed_until: str) -> dict[str, Any]:
    """What the late zone gets for a too-late reading: `Reading.to_dict()` of it (firmware and
    model only when not null), the reason, and the time the device's windows are closed until."""
    out = {"device_id": doc["device_id"], "ts": doc["ts"], "seq": doc["seq"], "channels": doc["channels"]}
    firmware, model = doc.get("firmware"), doc.get("model")
    if firmware is not None:
        out["firmware"] = firmware
    if model is not None:
        out["model"] = model
    out["reason"] = "too_late"
    out["closed_until"] = closed_until
    return out


def latest_aggregates(store: StateStore, device_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The "latest per device" view: the last closed window of each kind, and the channels' EMAs."""
    keys = [(f"agg#{d}", "windows") for d in device_ids]
    out: dict[str, dict[str, Any]] = {}
    for (pk, _sk), item in store.get_many(keys).items():
        out[pk[4:]] = {"windows": item.doc["latest"], "ema": {k: v[0] for k, v in item.doc["ema"].items()}}
    return out


class ClassifyStage:
    """calibrated stream -> events and faults -> alerts on SNS and in the lake."""

    def __init__(
        self,
        store: StateStore,
        lake: Lake,
        notifier: Notifier,
        models: ModelProvider | None = None,
        *,
        rules: Sequence[EventRule] = AIR_QUALITY_RULES,
        faults: FaultConfig = DEFAULT_FAULTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lake = lake
        self.notifier = notifier
        self.models = models
        self.rules = rules
        self.faults = faults
        self.clock = clock
        self._label_states: dict[str, object] = {}

    def process(self, records: Sequence[KinesisRecord]) -> Outcome:
        outcome = Outcome()
        decoded = _decode_all(records, outcome, "classify", calibrated=True)
        _write_quarantine(self.lake, decoded, outcome)
        if not decoded.by_device:
            return outcome
        models = self.models.models if self.models is not None else None
        outcome.model_version = models.version if models is not None else None
        info = models.device_info if models is not None else {}
        shard = records[0].shard_id
        roster_key: Key = (f"cls#shard#{shard}", "roster")
        device_keys = {d: (f"cls#{d}", "state") for d in decoded.by_device}
        stored = self.store.get_many([roster_key, *device_keys.values()])
        roster_item = stored.get(roster_key)
        roster: dict[str, dict[str, Any]] = dict(roster_item.doc["devices"]) if roster_item else {}
        original = orjson.dumps(roster)
        states: dict[str, tuple[DeviceClassState, Stored | None]] = {}
        pending: dict[str, list[Transition]] = {}
        features: dict[str, dict[int, list[float | None]]] = {}
        latest_per_device: list[int] = []
        for device_id, readings in sorted(decoded.by_device.items()):
            item = stored.get(device_keys[device_id])
            state = DeviceClassState.from_doc(None if item is None else item.doc)
            entry = roster.setdefault(device_id, {})
            entry["site"] = str(info.get(device_id, {}).get("site", "unknown"))
            # The interval stamped by calibrate, else this stage's own registry, else the last known.
            interval = decoded.intervals.get(device_id) or interval_ms(
                info.get(device_id, {}).get(REPORT_INTERVAL_FIELD)
            )
            if interval is not None:
                entry["step_ms"] = interval
            elif entry.get("step_ms") is None:
                outcome.counts["default_interval_devices"] += 1
            result = classify_readings(
                state, entry, device_id, readings, rules=self.rules, faults=self.faults
            )
            outcome.counts["applied"] += result.applied
            outcome.counts["duplicates"] += result.skipped
            states[device_id] = (state, item)
            pending[device_id] = result.transitions
            latest_per_device.append(max(r.ts_ms for r in readings))
            if models is not None and models.classifier is not None:
                labelled = {  # the readings whose alerts get a label (see alert_of)
                    t.at_ms
                    for t in result.transitions
                    if t.category == "air_quality" and t.status != "cleared"
                }
                features[device_id] = self._features(models.classifier, device_id, readings, labelled)
        index = peer_index(roster)
        for device_id in states:
            pending[device_id].extend(
                check_drift(states[device_id][0], roster, device_id, self.faults, index)
            )
        # The shard's clock for dropouts: the median of the devices' newest event times in this batch,
        # so one device whose clock runs ahead (up to the contract's 5-min skew) cannot declare all
        # others silent.
        newest = statistics.median_low(latest_per_device)
        roster_transitions = check_dropouts(roster, newest, self.faults)

        failed_devices: set[str] = set()
        roster_failed = False

        def alert_of(t: Transition) -> dict[str, Any]:
            label = None
            vector = features.get(t.device_id, {}).get(t.at_ms)
            if (
                t.category == "air_quality"
                and t.status != "cleared"
                and vector is not None
                and models is not None
            ):
                label = str(models.classifier.predict_features(vector)) if models.classifier else None
            site = str(info.get(t.device_id, {}).get("site", "unknown"))
            return build_alert(t, site=site, label=label, model_version=outcome.model_version)

        alerts = {d: [alert_of(t) for t in ts] for d, ts in pending.items()}
        roster_alerts = [alert_of(t) for t in roster_transitions]
        every = [(a["at_ms"], a) for group in alerts.values() for a in group] + [
            (a["at_ms"], a) for a in roster_alerts
        ]
        if every:
            try:
                write_jsonl(self.lake, "alerts", every)
            except Exception:
                failed_devices |= {d for d, group in alerts.items() if group}
                roster_failed = bool(roster_alerts)
        roster_published: list[str] = list(roster_item.doc.get("pub", [])) if roster_item else []
        groups: list[tuple[str | None, Sequence[dict[str, Any]], list[str]]] = [
            (device_id, group, states[device_id][0].published)
            for device_id, group in alerts.items()
            if device_id not in failed_devices
        ]
        if not roster_failed:
            groups.append((None, roster_alerts, roster_published))  # None: the shard's roster
        accepted_before = {d: list(state.published) for d, (state, _item) in states.items()}
        roster_accepted_before = list(roster_published)
        publish_failed = self._publish(groups, outcome)
        for key in publish_failed:
            if key is None:
                roster_failed = True
            else:
                failed_devices.add(key)

        expires = int(self.clock()) + STATE_TTL_S
        writes: list[Write] = []
        for device_id, (state, item) in states.items():
            pk, sk = device_keys[device_id]
            version = None if item is None else item.version
            if device_id in publish_failed and state.published != accepted_before[device_id]:
                # The readings are retried from the state as it was, but the transitions SNS already
                # accepted are recorded now: the redelivery recomputes them (same ids) and skips them.
                kept = DeviceClassState.from_doc(None if item is None else item.doc)
                kept.published = state.published
                writes.append(Write(pk, sk, kept.to_doc(), version, expires))
            elif device_id not in failed_devices:
                writes.append(Write(pk, sk, state.to_doc(), version, expires))
        if failed_devices:  # their roster entries go back to what they were, so the redelivery starts clean
            before = orjson.loads(original)
            for device_id in failed_devices:
                if device_id in before:
                    roster[device_id] = before[device_id]
                else:
                    roster.pop(device_id, None)
        for device_id in [d for d, e in roster.items() if e.get("last", newest) < newest - ROSTER_FORGET_MS]:
            del roster[device_id]  # silent for a week: decommissioned or moved shard; keep the item small
        roster_doc = None
        # As for a device: after a failed publish, the roster as it was, with what SNS accepted.
        if None in publish_failed and roster_published != roster_accepted_before:
            roster_doc = {"devices": orjson.loads(original), "pub": roster_published[-PUBLISHED_MEMORY:]}
        elif not roster_failed:
            roster_doc = {"devices": roster, "pub": roster_published[-PUBLISHED_MEMORY:]}
        if roster_doc is not None:
            version = None if roster_item is None else roster_item.version
            writes.append(Write(roster_key[0], roster_key[1], roster_doc, version, expires))
        conflicts = self.store.put_many(writes)
        for pk, _sk in conflicts:
            if pk == roster_key[0]:
                roster_failed = True
            else:
                failed_devices.add(pk[4:])
            outcome.counts["state_conflicts"] += 1
        if roster_failed:
            failed_devices |= set(decoded.by_device)
        for device_id in failed_devices:
            outcome.failed |= decoded.seqnos.get(device_id, set())
        return outcome

    def _publish(
        self, groups: Sequence[tuple[str | None, Sequence[dict[str, Any]], list[str]]], outcome: Outcome
    ) -> set[str | None]:
        """Publish every transition not yet recorded, all groups in batched calls; record each one
        SNS accepted in its group's `published` list. Returns the groups with a failed publish
        (their readings are retried; what was accepted is already recorded)."""
        entries: list[tuple[int, dict[str, Any]]] = []
        for index, (_key, group, published) in enumerate(groups):
            for alert in group:
                if alert["transition_id"] in published:
                    outcome.counts["alerts_already_published"] += 1
                else:
                    entries.append((index, alert))
        if not entries:
            return set()
        accepted = self.notifier.publish_batch(
            [(orjson.dumps(alert).decode(), message_attributes(alert)) for _, alert in entries]
        )
        failed: set[str | None] = set()
        for (index, alert), ok in zip(entries, accepted, strict=True):
            key, _group, published = groups[index]
            if not ok:
                outcome.counts["publish_failed"] += 1
                failed.add(key)
                continue
            published.append(alert["transition_id"])
            del published[:-PUBLISHED_MEMORY]
            outcome.counts[f"alerts_{alert['status']}"] += 1
        return failed

    def _features(
        self, model: Any, device_id: str, readings: Sequence[Reading], times: Set[int]
    ) -> dict[int, list[float | None]]:
        """Feature vectors of the event-type model at the reading times `times`, for labelling
        transitions.

        Temporal features use this container's per-device state, fed every reading in event-time
        order (it is rebuilt from scratch after a cold start: a label right after one sees a short
        history); the readings at other times only advance it (`observe`), which leaves it exactly
        as computing their features would, without computing them."""
        state = None
        if model.temporal:
            state = self._label_states.get(device_id)
            if state is None:
                state = self._label_states[device_id] = model.new_state()
        elif not times:
            return {}
        out: dict[int, list[float | None]] = {}
        for r in sorted(readings, key=lambda r: (r.ts_ms, r.seq)):
            if r.ts_ms in times:  # (a later reading at the same time replaces the vector, as before)
                out[r.ts_ms] = model.features(r.channels, ts_ms=r.ts_ms, state=state)
            elif state is not None:
                model.observe(r.channels, ts_ms=r.ts_ms, state=state)
        return out
