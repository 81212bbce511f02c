"""Event-time windows per device and channel: the pure logic behind the aggregate Lambda.

Lambda's own tumbling windows use arrival time and cap state at 900 s (DESIGN.md §3), so the
windows here are ours. All times are UTC epoch milliseconds; windows are aligned to the Unix
epoch, so every device and every run agrees on the boundaries.

Definitions (the defaults; `WindowConfig` changes them):

* A **pane** is a 5-minute tumbling slot `[start, start + 5 min)`: inclusive start, exclusive end.
  A reading stamped exactly 00:05:00.000 belongs to `[00:05, 00:10)`, not `[00:00, 00:05)`.
* Every window is a run of whole panes, so they are computed from pane summaries
  (count, sum, min, max are mergeable) instead of updating twelve overlapping windows per reading:

      event time (UTC) ->   00:00   00:05   00:10   ...   00:55   01:00   01:05
      panes                 |  p0   |  p1   |  p2   | ... |  p11  |  p12  |
      tumbling_5m           [ p0  )[ p1  )[ p2  )                 [ p12 )
      tumbling_1h           [ p0 ............................ p11 )
      sliding_1h_5m         [ p0 ............................ p11 )
                                   [ p1 ............................ p12 )

* **Watermark** of a device = max event time seen for it - allowed lateness (2 min). It only
  moves forward and advances once per batch (after the batch is applied), never with wall-clock.
* A pane **closes** when the watermark reaches its end. When the pane ending at `E` closes, each
  window whose step divides `E` and ends at `E` is emitted once (if it holds any reading).
* A reading whose pane is already closed is **late**: it changes nothing here, is counted and
  routed to `hot/late/` for batch recomputation (the raw lake holds it anyway).
* **Idempotency**: each pane keeps the keys `(ts, seq)` it accepted (late ones too), so a redelivered
  reading is recognised as a duplicate while its pane is retained (one longest window after closing).
  A closed window is never emitted twice: `closed_until` only moves forward and is stored with the
  panes in one conditional write.
* **Completeness** = readings with the channel / expected readings, capped at 1, where expected =
  window length // the device's reporting interval (at least 1). The interval comes from the device
  registry (`report_interval_s` in devices.json, stamped on each calibrated record by the calibrate
  stage) and is remembered in the device's state; a device the registry does not know is assumed
  to report every `WindowConfig.nominal_step_ms` (60 s). Rounding down (and at least one) makes a
  steadily reporting device complete whatever the alignment: a 5-minute window of a device that
  reports every 15 minutes expects 1 reading, an hour expects 4.
* An emitted window is one record: device, window name, `[start_ms, end_ms)`, expected samples, and
  per channel `{count, mean, min, max, completeness}`.
* **EMA**: a time-aware exponential moving average per channel, `alpha = 1 - exp(-dt / tau)`,
  tau = 15 min; only in-order readings (later than the last one applied) update it, which also
  makes it immune to redelivery.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain, compress
from operator import add, attrgetter, itemgetter
from typing import Any, Final, TypeVar

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A window of `length_ms` emitted every `step_ms` (tumbling when they are equal)."""

    name: str
    length_ms: int
    step_ms: int


DEFAULT_SPECS: Final = (
    WindowSpec("tumbling_5m", 5 * MINUTE_MS, 5 * MINUTE_MS),
    WindowSpec("tumbling_1h", HOUR_MS, HOUR_MS),
    WindowSpec("sliding_1h_5m", HOUR_MS, 5 * MINUTE_MS),
)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    pane_ms: int = 5 * MINUTE_MS
    specs: tuple[WindowSpec, ...] = DEFAULT_SPECS
    allowed_lateness_ms: int = 2 * MINUTE_MS
    nominal_step_ms: int = MINUTE_MS
    ema_tau_ms: int = 15 * MINUTE_MS

    def __post_init__(self) -> None:
        for spec in self.specs:
            if spec.length_ms % self.pane_ms or spec.step_ms % self.pane_ms or spec.step_ms <= 0:
                raise ValueError(f"window {spec.name}: length and step must be multiples of the pane")

    @property
    def max_length_ms(self) -> int:
        return max(spec.length_ms for spec in self.specs)


@dataclass(slots=True)
class Pane:
    """Summary of one pane: per channel [count, sum, min, max], plus the reading keys seen.

    Readings are summarised lazily: `add` only keeps a reference to the reading's channels, and
    `summary()` folds them into `stats` when the pane is read (closing it, or saving the state),
    with C-level passes per channel instead of four updates per channel and reading. The sums are
    still sequential in reading order (`reduce(add, ...)`, not `sum`, whose float algorithm differs
    across Python versions), so every figure equals adding the readings one at a time.
    """

    start: int
    stats: dict[str, list[float]] = field(default_factory=dict)
    keys: set[tuple[int, int]] = field(default_factory=set)
    pending: list[Mapping[str, float]] = field(default_factory=list)  # channels not yet in stats

    def add(self, channels: Mapping[str, float]) -> None:
        self.pending.append(channels)

    def summary(self) -> dict[str, list[float]]:
        pending = self.pending
        if not pending:
            return self.stats
        stats = self.stats
        for name, values in _columns(pending):
            entry = stats.get(name)
            if entry is None:
                stats[name] = [float(len(values)), reduce(add, values), min(values), max(values)]
            else:
                entry[0] += len(values)
                entry[1] = reduce(add, values, entry[1])
                entry[2] = min(entry[2], *values)
                entry[3] = max(entry[3], *values)
        self.pending = []
        return stats

    def to_doc(self) -> dict[str, Any]:
        return {"start": self.start, "stats": self.summary(), "keys": sorted(self.keys)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Pane:
        keys = {(int(k[0]), int(k[1])) for k in doc["keys"]}
        return cls(int(doc["start"]), {k: list(v) for k, v in doc["stats"].items()}, keys)


@dataclass(slots=True)
class DeviceWindows:
    """Everything the aggregate stage remembers about one device (one state item)."""

    device_id: str
    max_ts: int | None = None
    closed_until: int | None = None  # every pane ending at or before this is closed
    open_panes: dict[int, Pane] = field(default_factory=dict)
    closed_panes: dict[int, Pane] = field(default_factory=dict)
    ema: dict[str, list[float]] = field(default_factory=dict)  # channel -> [value, ts_ms]
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # window name -> last emitted
    step_ms: int | None = None  # the device's reporting interval, when the registry gave one

    def to_doc(self) -> dict[str, Any]:
        return {
            "max_ts": self.max_ts,
            "closed_until": self.closed_until,
            "open": [p.to_doc() for p in self.open_panes.values()],
            "closed": [p.to_doc() for p in self.closed_panes.values()],
            "ema": self.ema,
            "latest": self.latest,
            "step_ms": self.step_ms,
        }

    @classmethod
    def from_doc(cls, device_id: str, doc: Mapping[str, Any] | None) -> DeviceWindows:
        if doc is None:
            return cls(device_id)
        return cls(
            device_id,
            doc["max_ts"],
            doc["closed_until"],
            {p["start"]: Pane.from_doc(p) for p in doc["open"]},
            {p["start"]: Pane.from_doc(p) for p in doc["closed"]},
            {k: list(v) for k, v in doc["ema"].items()},
            dict(doc["latest"]),
            doc.get("step_ms"),  # absent in state written before intervals came from the registry
        )


@dataclass(slots=True)
class ApplyResult:
    accepted: int = 0
    duplicates: int = 0
    late: list[Any] = field(default_factory=list)  # the late readings themselves, to route
    emitted: list[dict[str, Any]] = field(default_factory=list)


def apply_readings(state: DeviceWindows, readings: Iterable[Any], config: WindowConfig) -> ApplyResult:
    """Add one device's readings (any order) to its panes, then close what the watermark passed.

    `readings` are objects with device_id, ts_ms, seq and channels (contract Readings). Mutates
    `state`; returns counts, late readings and the closed-window aggregate records to emit.
    """
    result = ApplyResult()
    ordered = sorted(readings, key=_ORDER)
    if not ordered:
        return result
    pane_ms = config.pane_ms
    if state.closed_until is None:  # a new device: as if its watermark had just reached its first reading
        first = ordered[0].ts_ms - config.allowed_lateness_ms
        state.closed_until = first - first % pane_ms
    closed_until = state.closed_until
    open_panes = state.open_panes
    accepted_ts: list[int] = []
    accepted_channels: list[Mapping[str, float]] = []
    current_start = None  # consecutive readings usually share a pane: look it up once
    keys: set[tuple[int, int]] = set()
    pending: list[Mapping[str, float]] = []
    for reading in ordered:
        ts = reading.ts_ms
        key = (ts, reading.seq)
        start = ts - ts % pane_ms
        if start != current_start:
            if start + pane_ms <= closed_until:
                closed = state.closed_panes.get(start)
                if closed is not None and key in closed.keys:
                    result.duplicates += 1
                    continue
                if closed is not None:
                    closed.keys.add(key)  # so a redelivery of this late reading is a duplicate
                result.late.append(reading)
                continue
            pane = open_panes.get(start)
            if pane is None:
                pane = open_panes[start] = Pane(start)
            current_start, keys, pending = start, pane.keys, pane.pending
        if key in keys:
            result.duplicates += 1
            continue
        keys.add(key)
        channels = reading.channels
        pending.append(channels)
        accepted_ts.append(ts)
        accepted_channels.append(channels)
    if accepted_ts:
        result.accepted = len(accepted_ts)
        _update_ema(state.ema, accepted_ts, accepted_channels, float(config.ema_tau_ms))
        newest = accepted_ts[-1]  # readings are in event-time order
        if state.max_ts is None or newest > state.max_ts:
            state.max_ts = newest
    if state.max_ts is not None:
        result.emitted = _close(state, state.max_ts - config.allowed_lateness_ms, config)
    return result


_ORDER: Final = attrgetter("ts_ms", "seq")
_V = TypeVar("_V")


def _columns(rows: Sequence[Mapping[str, _V]]) -> Iterable[tuple[str, Sequence[_V]]]:
    """(channel, its values in row order) for every channel of `rows` (dicts keyed by channel).

    When every row has the first row's channels (the usual case) the rows are transposed in one
    C-level pass; otherwise each channel is collected from the rows that have it."""
    names = tuple(rows[0])
    if len(rows) == 1:
        return [(name, (value,)) for name, value in rows[0].items()]
    if set(map(len, rows)) == {len(names)}:
        try:
            if len(names) == 1:
                return [(names[0], [row[names[0]] for row in rows])]
            return zip(names, zip(*map(itemgetter(*names), rows), strict=True), strict=True)
        except KeyError:
            pass  # same number of channels, not the same ones
    union = dict.fromkeys(chain.from_iterable(rows))
    return [(name, [row[name] for row in rows if name in row]) for name in union]


def _update_ema(
    ema: dict[str, list[float]], times: Sequence[int], rows: Sequence[Mapping[str, float]], tau: float
) -> None:
    """The time-aware EMA of each channel over the accepted readings (in event-time order); only
    readings later than the channel's last applied one update it.

    Channels present in every reading that start from the same last time (the usual case) share
    one plan: which readings update them and with which alpha, so the per-value work is a single
    multiply-add. Same arithmetic, in the same order, as updating reading by reading."""
    everywhere = len(times)
    plans: dict[tuple[float, int], tuple[list[bool], list[float], float]] = {}
    alphas: dict[float, float] = {}
    for name, values in _columns(rows):
        entry = ema.get(name)
        if len(values) != everywhere:  # missing from some readings: pair it with its own times
            series = [(t, row[name]) for t, row in zip(times, rows, strict=True) if name in row]
            skip = 0
        else:
            series, skip = None, 0
        if entry is None:  # its first reading starts the average
            first_ts, first_value = series[0] if series is not None else (times[0], values[0])
            value, last = float(first_value), float(first_ts)
            skip = 1
        else:
            value, last = entry
        if series is None:
            plan = plans.get((last, skip))
            if plan is None:
                plan = plans[(last, skip)] = _ema_plan(times, last, skip, tau, alphas)
            mask, factors, last = plan
            for alpha, x in zip(factors, compress(values, mask), strict=True):
                value += alpha * (x - value)
        else:
            for ts, x in series[skip:]:
                if ts > last:
                    alpha = _alpha(ts - last, tau, alphas)
                    value += alpha * (x - value)
                    last = ts
        if entry is None:
            ema[name] = [value, float(last)]
        else:
            entry[0], entry[1] = value, float(last)


def _alpha(dt: float, tau: float, cache: dict[float, float]) -> float:
    alpha = cache.get(dt)
    if alpha is None:  # readings usually come at one interval: one exp per batch
        alpha = cache[dt] = 1.0 - math.exp(-dt / tau)
    return alpha


def _ema_plan(
    times: Sequence[int], last: float, skip: int, tau: float, cache: dict[float, float]
) -> tuple[list[bool], list[float], float]:
    """Which of `times` (after the first `skip`) update an average last updated at `last`, the
    alpha of each update, and the time of the last one."""
    mask = [False] * skip
    factors = []
    for ts in times[skip:]:
        if ts > last:
            factors.append(_alpha(ts - last, tau, cache))
            mask.append(True)
            last = ts
        else:
            mask.append(False)
    return mask, factors, last


def _close(state: DeviceWindows, watermark: int, config: WindowConfig) -> list[dict[str, Any]]:
    pane_ms = config.pane_ms
    old = state.closed_until
    assert old is not None
    new = watermark - watermark % pane_ms
    if new <= old:
        return []
    for start in [s for s in state.open_panes if s + pane_ms <= new]:
        pane = state.closed_panes[start] = state.open_panes.pop(start)
        pane.summary()
    max_len = config.max_length_ms
    step_ms = state.step_ms or config.nominal_step_ms
    panes = state.closed_panes
    starts = sorted(s for s, p in panes.items() if p.stats)
    emitted: list[dict[str, Any]] = []
    running: dict[int, _Running] = {}  # window length -> the last merge of its panes, to extend
    end = old + pane_ms
    while end <= new:
        index = bisect_left(starts, end - max_len)
        if index == len(starts):
            break
        if starts[index] >= end:  # nothing in any window ending here: jump to the next data
            end = starts[index] + pane_ms
            continue
        same_span: dict[int, dict[str, dict[str, Any]] | None] = {}  # window length -> its channels
        for spec in config.specs:
            if end % spec.step_ms == 0:
                length = spec.length_ms
                if length not in same_span:  # e.g. the hourly tumbling and sliding windows at :00
                    same_span[length] = _window_channels(
                        end - length, end, panes, pane_ms, step_ms, running.setdefault(length, _Running())
                    )
                channels = same_span[length]
                if channels is not None:
                    record = {
                        "device_id": state.device_id,
                        "window": spec.name,
                        "start_ms": end - length,
                        "end_ms": end,
                        "expected": max(1, length // step_ms),
                        "channels": channels,
                    }
                    emitted.append(record)
                    state.latest[spec.name] = record
        end += pane_ms
    state.closed_until = new
    keep_from = new + pane_ms - max_len
    for start in [s for s in panes if s < keep_from]:
        del panes[start]
    return emitted


_SORTED_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}  # a device's channels, in their order
_SORTED_NAMES_CAP: Final = 4_096  # a fleet sends a handful of channel layouts; bounded against abuse


def _sorted_names(merged: Mapping[str, Any]) -> tuple[str, ...]:
    """sorted(merged), looked up: windows of a device (and of a fleet) have the same channels."""
    layout = tuple(merged)
    names = _SORTED_NAMES.get(layout)
    if names is None:
        names = tuple(sorted(layout))
        if len(_SORTED_NAMES) < _SORTED_NAMES_CAP:
            _SORTED_NAMES[layout] = names
    return names


@dataclass(slots=True)
class _Running:
    """The merge of the last window of one length in a `_close` call: the starts of the panes it
    merged, in order, and the merged stats (its own lists, never a pane's)."""

    starts: list[int] = field(default_factory=list)
    merged: dict[str, list[float]] = field(default_factory=dict)


def _window_channels(
    start: int,
    end: int,
    panes: Mapping[int, Pane],
    pane_ms: int,
    step_ms: int,
    running: _Running | None = None,
) -> dict[str, dict[str, Any]] | None:
    """The channels of the closed window [start, end): per channel count, mean, min, max and
    completeness; None when the window holds no reading.

    Pane summaries merge per channel in pane order (sums sequential, the first minimum and maximum
    kept on ties), so a window's figures do not depend on how its readings were batched. Windows
    of one length closing one after the other (the sliding hour, every 5 minutes) mostly merge
    the previous window's panes plus one: with `running`, a window whose panes start with the
    previous one's takes that merge and adds only its new panes, the same fold in the same order."""
    starts = [s for s in range(start, end, pane_ms) if (pane := panes.get(s)) is not None and pane.stats]
    if not starts:
        return None
    merged: dict[str, list[float]]
    if len(starts) == 1:  # a 5-minute window, or a longer one with data in one pane only
        merged = panes[starts[0]].stats
    else:
        done = 0
        if (
            running is not None
            and 1 < len(running.starts) <= len(starts)
            and starts[: len(running.starts)] == running.starts
        ):
            merged, done = running.merged, len(running.starts)
        if not done:
            merged = {name: list(entry) for name, entry in panes[starts[0]].stats.items()}
            done = 1
        for pane_start in starts[done:]:
            for name, (count, total, low, high) in panes[pane_start].stats.items():
                entry = merged.get(name)
                if entry is None:
                    merged[name] = [count, total, low, high]
                else:
                    entry[0] += count
                    entry[1] += total
                    if low < entry[2]:  # noqa: PLR1730 (comparisons beat min/max calls on this hot loop)
                        entry[2] = low
                    if high > entry[3]:  # noqa: PLR1730
                        entry[3] = high
        if running is not None:
            running.starts, running.merged = starts, merged
    expected = max(1, (end - start) // step_ms)
    out: dict[str, dict[str, Any]] = {}
    last_count = None
    for name in _sorted_names(merged):
        count, total, low, high = merged[name]
        if count != last_count:  # a window's channels usually share their count: its figures once
            last_count, whole, ratio = count, int(count), count / expected
            completeness = ratio if ratio < 1.0 else 1.0  # min(1.0, ratio)
        out[name] = {
            "count": whole,
            "mean": total / count,
            "min": low,
            "max": high,
            "completeness": completeness,
        }
    return out
