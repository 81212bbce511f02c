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
  per channel count, mean, min, max and completeness, laid out as parallel arrays in sorted channel
  order (`channels`, `counts`, `means`, `mins`, `maxes`, `completeness`): one JSON line per window
  that costs a key per figure, not a key per channel and figure. `window_channels(record)` gives
  the per-channel view; analysts get one row per window and channel from the `aggregate_channels`
  view (athena/views/aggregate_channels.sql).
* **EMA**: a time-aware exponential moving average per channel, `alpha = 1 - exp(-dt / tau)`,
  tau = 15 min; only in-order readings (later than the last one applied) update it, which also
  makes it immune to redelivery.

`apply_readings` is the reference path (contract Readings in, record dicts out). The aggregate
stage takes `apply_documents` (the calibrated stream's documents in, windows as columns out) and
`RecordEncoder` (columns to JSON lines): the same figures and the same bytes, with per-channel work
done for all channels at once (generated straight-line kernels where Python 3.11's builtins cost
more than the arithmetic). tests/hot/test_fast_paths.py holds each fast path to its definition.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain, compress, repeat
from operator import add, attrgetter, itemgetter, lt, sub, truediv
from typing import Any, Final, TypeVar

import orjson

from airlake.contract.decoder import iso_from_ms

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


# A pane's or a window's figures by channel, channels sorted: (names, counts, sums, mins, maxes),
# each a sequence in the order of `names`. Windows merge and emit in this form (`_merge_columns`),
# and the state stores panes in it (`Pane.to_doc`).
Columns = tuple[tuple[str, ...], Sequence[float], Sequence[float], Sequence[float], Sequence[float]]


@dataclass(slots=True)
class Pane:
    """Summary of one pane: per channel [count, sum, min, max], plus the reading keys seen.

    A batch whose readings share one channel layout (the usual case) folds into its panes as it
    is applied, all channels at once (`_fold_table`). Other readings are summarised lazily: `add`
    only keeps a reference to the reading's channels, and `summary()` folds them into `stats` when
    the pane is read (closing it, or saving the state). The sums are still sequential in reading
    order (`reduce(add, ...)` or `v0 + v1 + ...`, not `sum`, whose float algorithm differs across
    Python versions), so every figure equals adding the readings one at a time. A stats entry is
    replaced, never changed in place.

    A pane may hold its figures as `columns` only (a pane `BatchFold` folded, or one loaded from
    the state): windows and the state read the columns, and `summary()` builds `stats` from them
    only when something needs the per-channel form (more readings for the pane).
    """

    start: int
    stats: dict[str, list[float]] = field(default_factory=dict)
    keys: set[tuple[int, int]] = field(default_factory=set)
    pending: list[Mapping[str, float]] = field(default_factory=list)  # channels not yet in stats
    columns: Columns | None = None  # `stats` by sorted channel, once a window needed them
    ordered_keys: list[tuple[int, int]] | None = None  # sorted(keys), while known (None: sort to write)

    def add(self, channels: Mapping[str, float]) -> None:
        self.pending.append(channels)

    @property
    def held(self) -> bool:
        """Whether any reading is in the pane (in its stats, its columns or pending)."""
        return bool(self.stats) or self.columns is not None or bool(self.pending)

    def summary(self) -> dict[str, list[float]]:
        stats = self.stats
        if not stats and self.columns is not None:
            names, counts, sums, lows, highs = self.columns
            figures = zip(names, counts, sums, lows, highs, strict=True)
            stats = self.stats = {name: entry for name, *entry in figures}  # each entry a new list
        pending = self.pending
        if pending:
            _fold(stats, pending)
            self.pending = []
            self.columns = None
        return stats

    def to_doc(self) -> dict[str, Any]:
        """The pane as the state stores it: its Columns, one array per figure, and its keys."""
        names, counts, sums, lows, highs = _pane_columns(self) if self.held else ((), (), (), (), ())
        return {
            "start": self.start,
            "channels": names,
            "counts": counts,
            "sums": sums,
            "mins": lows,
            "maxes": highs,
            "keys": self.ordered_keys if self.ordered_keys is not None else sorted(self.keys),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Pane:
        listed = [(int(k[0]), int(k[1])) for k in doc["keys"]]
        keys = set(listed)
        # as to_doc writes them (sorted, unique), or sorted again when written
        ordered = listed if all(map(lt, listed, listed[1:])) else None
        if "stats" in doc:  # written before panes were stored as columns: channel -> [count, sum, min, max]
            stats = {k: list(v) for k, v in doc["stats"].items()}
            return cls(int(doc["start"]), stats, keys, ordered_keys=ordered)
        names = tuple(doc["channels"])
        if not names:
            return cls(int(doc["start"]), {}, keys, ordered_keys=ordered)
        columns = (names, doc["counts"], doc["sums"], doc["mins"], doc["maxes"])
        return cls(int(doc["start"]), {}, keys, columns=columns, ordered_keys=ordered)


# Rows of readings as tuples: (channel names, one tuple of values per reading, in that order).
Table = tuple[tuple[str, ...], list[tuple[float, ...]]]


def _table(rows: Sequence[Mapping[str, float]]) -> Table | None:
    """`rows` (channel dicts) as a Table when every row has the first row's channels (the usual
    case) and there are at least two (one C-level pass); None otherwise."""
    names = tuple(rows[0])
    width = len(names)
    if width < 2 or set(map(len, rows)) != {width}:
        return None
    try:
        return names, list(map(itemgetter(*names), rows))
    except KeyError:  # same number of channels, not the same ones
        return None


def _fold(stats: dict[str, list[float]], rows: Sequence[Mapping[str, float]]) -> None:
    """Add `rows` (channel dicts, in reading order) to `stats`: per channel the count, the sum
    continued sequentially, the first minimum and the first maximum.

    When every row has the same channels (the usual case), all channels fold together
    (`_fold_table`); otherwise each channel folds on its own. Both give the plain definition
    (`_fold_plain`), exactly."""
    table = _table(rows)
    if table is None or not _fold_table(stats, table[0], table[1]):
        _fold_plain(stats, rows)


def _fold_table(
    stats: dict[str, list[float]],
    names: tuple[str, ...],
    table: Sequence[tuple[float, ...]],
    pane: Pane | None = None,
) -> bool:
    """`_fold` of rows given as tuples in the order of `names`: one C-level transposition, then
    `reduce`, `min` and `max` mapped over the columns. False (nothing done) when `stats` already
    has channels and not all of `names`. When `stats` was empty and `pane` is given, also sets the
    pane's Columns (what `_pane_columns` would compute from the stats)."""
    if stats:
        try:
            old = itemgetter(*names)(stats)
        except KeyError:
            return False
        columns = list(zip(*table, strict=True))
        old_counts, old_sums, old_lows, old_highs = zip(*old, strict=True)
        stats.update(
            zip(
                names,
                map(
                    list,
                    zip(
                        map(add, old_counts, repeat(len(table))),
                        map(reduce, repeat(add), columns, old_sums),
                        map(min, zip(old_lows, *table, strict=True)),  # min(entry, *values)
                        map(max, zip(old_highs, *table, strict=True)),
                        strict=True,
                    ),
                ),
                strict=True,
            )
        )
        return True
    count = float(len(table))
    kernel = _fold_kernel(len(table), len(names))
    sums: Sequence[float]
    lows: Sequence[float]
    highs: Sequence[float]
    if kernel is not None:
        entries, sums, lows, highs = kernel(table, count)
        stats.update(zip(names, entries, strict=True))
    else:
        columns = list(zip(*table, strict=True))
        sums = list(map(reduce, repeat(add), columns))
        lows, highs = list(map(min, columns)), list(map(max, columns))
        stats.update(zip(names, map(list, zip(repeat(count), sums, lows, highs, strict=False)), strict=True))
    if pane is not None:
        ordered, order = _sorted_layout(names)
        pane.columns = (ordered, (count,) * len(names), order(sums), order(lows), order(highs))
    return True


# Generated straight-line code for the two inner loops of the window arithmetic: folding a pane's
# readings and merging a pane into a window, for every channel at once. The same operations in the
# same order as the builtins they replace (`v0 + v1 + v2` is `reduce(add, ...)`; `x = v if v < x
# else x` keeps the first minimum, as `min` does), without a call per channel and figure (in
# Python 3.11, `min(values)` alone costs more than the whole fold of a channel here).
_KERNELS: dict[tuple[str, int, int], Callable[..., Any]] = {}
_KERNELS_CAP: Final = 256
_FOLD_MAX_ROWS: Final = 16  # more readings in a pane: the builtins (per channel, no per-value cost)
_KERNEL_MAX_VALUES: Final = 1_024


def _compiled(key: tuple[str, int, int], source: Callable[[], str]) -> Callable[..., Any] | None:
    """The kernel under `key`, compiled from `source()` the first time; None once the cache is
    full (a fleet has a handful of layouts; this bounds what a stream of odd ones can cost)."""
    kernel = _KERNELS.get(key)
    if kernel is None:
        if len(_KERNELS) >= _KERNELS_CAP:
            return None
        namespace: dict[str, Any] = {}
        exec(compile(source(), f"<{key[0]} kernel {key[1]}x{key[2]}>", "exec"), namespace)  # our own source
        kernel = _KERNELS[key] = namespace["kernel"]
    return kernel


def _fold_kernel(rows: int, width: int) -> Callable[[Sequence[tuple[float, ...]], float], Any] | None:
    """`kernel(table, count)` for `rows` rows of `width` values: (stats entries [count, sum, min,
    max] per channel, sums, minimums, maximums), as `_fold_table` computes them; None when the
    pane is too big for straight-line code (or too many kernels exist)."""
    if rows > _FOLD_MAX_ROWS or rows * width > _KERNEL_MAX_VALUES:
        return None
    return _compiled(("fold", rows, width), lambda: _fold_source(rows, width))


def _fold_source(rows: int, width: int) -> str:
    channels = range(width)
    lines = ["def kernel(table, count):"]
    lines.append(
        "    "
        + ", ".join("(" + ", ".join(f"v{r}_{c}" for c in channels) + ",)" for r in range(rows))
        + ", = table"
    )
    for c in channels:
        lines.append(f"    s{c} = " + " + ".join(f"v{r}_{c}" for r in range(rows)))
        lines.append(f"    lo{c} = hi{c} = v0_{c}")
        for r in range(1, rows):
            lines.append(f"    if v{r}_{c} < lo{c}: lo{c} = v{r}_{c}")
            lines.append(f"    if v{r}_{c} > hi{c}: hi{c} = v{r}_{c}")
    entries = ", ".join(f"[count, s{c}, lo{c}, hi{c}]" for c in channels)
    figures = ["(" + ", ".join(f"{f}{c}" for c in channels) + ",)" for f in ("s", "lo", "hi")]
    lines.append(f"    return [{entries}], {', '.join(figures)}")
    return "\n".join(lines) + "\n"


def _merge_kernel(width: int) -> Callable[[Columns, Columns], Columns] | None:
    """`kernel(window, pane)`: the window's Columns with the pane's (same channels) merged in, as
    `_merge_columns` merges them; None when too wide for straight-line code."""
    kernel = _KERNELS.get(("merge", 1, width))  # compiled already (the usual case): no closure to build
    if kernel is not None:
        return kernel
    if width > _KERNEL_MAX_VALUES // 4:
        return None
    return _compiled(("merge", 1, width), lambda: _merge_source(width))


def _merge_source(width: int) -> str:
    channels = range(width)

    def unpack(side: str) -> str:
        return ", ".join(
            "(" + ", ".join(f"{side}{f}{c}" for c in channels) + ",)" for f in ("c", "s", "lo", "hi")
        )

    counts = ", ".join(f"ac{c} + bc{c}" for c in channels)
    sums = ", ".join(f"as{c} + bs{c}" for c in channels)
    lows = ", ".join(f"blo{c} if blo{c} < alo{c} else alo{c}" for c in channels)
    highs = ", ".join(f"bhi{c} if bhi{c} > ahi{c} else ahi{c}" for c in channels)
    return (
        "def kernel(window, pane):\n"
        f"    names, {unpack('a')} = window\n"
        f"    _names, {unpack('b')} = pane\n"
        f"    return (names, ({counts},), ({sums},), ({lows},), ({highs},))\n"
    )


_LAYOUTS: dict[tuple[str, ...], tuple[tuple[str, ...], Callable[[Sequence[float]], tuple[float, ...]]]] = {}


def _sorted_layout(
    names: tuple[str, ...],
) -> tuple[tuple[str, ...], Callable[[Sequence[float]], tuple[float, ...]]]:
    """The channels of a layout (two or more) sorted, and a function putting values given in
    layout order in that order. Cached like `_sorted_names` (bounded by the same cap)."""
    found = _LAYOUTS.get(names)
    if found is None:
        ordered = _sorted_names(dict.fromkeys(names))
        found = (ordered, tuple if ordered == names else itemgetter(*map(names.index, ordered)))
        if len(_LAYOUTS) < _SORTED_NAMES_CAP:
            _LAYOUTS[names] = found
    return found


def _fold_plain(stats: dict[str, list[float]], rows: Sequence[Mapping[str, float]]) -> None:
    """`_fold` by its definition, a channel at a time (also its path for mixed channel layouts)."""
    for name, values in _columns(rows):
        entry = stats.get(name)
        if entry is None:
            stats[name] = [float(len(values)), reduce(add, values), min(values), max(values)]
        else:
            stats[name] = [
                entry[0] + len(values),
                reduce(add, values, entry[1]),
                min(entry[2], *values),
                max(entry[3], *values),
            ]


def _pane_columns(pane: Pane) -> Columns:
    """The pane's stats by sorted channel (the pane must hold some); computed once per pane."""
    columns = pane.columns
    if columns is None:
        stats = pane.summary()
        names = _sorted_names(stats)
        counts, sums, lows, highs = zip(*map(stats.__getitem__, names), strict=True)
        columns = pane.columns = (names, counts, sums, lows, highs)
    return columns


@dataclass(slots=True)
class DeviceWindows:
    """Everything the aggregate stage remembers about one device (one state item)."""

    device_id: str
    max_ts: int | None = None
    closed_until: int | None = None  # every pane ending at or before this is closed
    open_panes: dict[int, Pane] = field(default_factory=dict)
    closed_panes: dict[int, Pane] = field(default_factory=dict)
    ema: dict[str, list[float]] = field(default_factory=dict)  # channel -> [value, ts_ms]
    # window name -> last emitted record (or, from RecordEncoder, an orjson.Fragment of its JSON)
    latest: dict[str, Any] = field(default_factory=dict)
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
    emitted: list[dict[str, Any]] = field(default_factory=list)  # apply_readings: the records
    windows: list[ClosedWindow] = field(default_factory=list)  # apply_documents: the windows
    ready: bool = False  # accept_documents: the device has readings, so windows may close


# A closed window as `apply_documents` gives it: (window name, start_ms, end_ms, expected,
# its channels' figures). `RecordEncoder` turns it into the aggregate record.
ClosedWindow = tuple[str, int, int, int, Columns]


def apply_readings(state: DeviceWindows, readings: Iterable[Any], config: WindowConfig) -> ApplyResult:
    """Add one device's readings (any order) to its panes, then close what the watermark passed.

    `readings` are objects with device_id, ts_ms, seq and channels (contract Readings). Mutates
    `state`; returns counts, late readings and the closed-window aggregate records to emit.
    """
    result = ApplyResult()
    if _accept(state, readings, config, result):
        step_ms = state.step_ms or config.nominal_step_ms
        for spec, end, channels in _close(state, config, _window_channels):
            length = spec.length_ms
            record = {
                "device_id": state.device_id,
                "window": spec.name,
                "start_ms": end - length,
                "end_ms": end,
                "expected": max(1, length // step_ms),
                **columnar(channels),
            }
            result.emitted.append(record)
            state.latest[spec.name] = record
    return result


def apply_documents(
    state: DeviceWindows, docs: Iterable[Mapping[str, Any]], config: WindowConfig
) -> ApplyResult:
    """`apply_readings` for readings as wire documents (dicts with `ts`, `seq` and `channels`, as
    the calibrated stream carries them; late ones come back as they were given), with the closed
    windows as `ClosedWindow`s in `result.windows` (in the order `apply_readings` emits their
    records) instead of records, and `state.latest` left to the caller: `RecordEncoder.encode`
    writes the records and sets it, as `apply_readings` would have.

    The aggregate stage's path: no object per reading, no dict per window and channel, and windows
    merge channel columns at once (`_merge_columns`). Same figures, exactly."""
    result = accept_documents(state, docs, config)
    close_documents(state, config, result)
    return result


def accept_documents(
    state: DeviceWindows,
    docs: Iterable[Mapping[str, Any]],
    config: WindowConfig,
    batch: BatchFold | None = None,
) -> ApplyResult:
    """The first half of `apply_documents`: the readings added to the device's panes and averages
    (with `batch`, as `_accept` defers them: every value must be a float, and `batch.run()` must
    come before `close_documents`)."""
    result = ApplyResult()
    result.ready = _accept(state, docs, config, result, _DOCUMENT_FIELDS, batch)
    return result


def close_documents(state: DeviceWindows, config: WindowConfig, result: ApplyResult) -> None:
    """The second half of `apply_documents`: the windows the watermark closed, in `result`."""
    if result.ready:
        step_ms = state.step_ms or config.nominal_step_ms
        result.windows = [
            (spec.name, end - spec.length_ms, end, max(1, spec.length_ms // step_ms), columns)
            for spec, end, columns in _close(state, config, _window_columns)
        ]


@dataclass(frozen=True, slots=True)
class _Fields:
    """How to read a reading's time, sequence number and channels (each a C-level getter)."""

    order: Callable[[Any], tuple[int, int]]  # (ts, seq)
    ts: Callable[[Any], int]
    seq: Callable[[Any], int]
    channels: Callable[[Any], Mapping[str, float]]


_READING_FIELDS: Final = _Fields(
    attrgetter("ts_ms", "seq"), attrgetter("ts_ms"), attrgetter("seq"), attrgetter("channels")
)
_DOCUMENT_FIELDS: Final = _Fields(
    itemgetter("ts", "seq"), itemgetter("ts"), itemgetter("seq"), itemgetter("channels")
)


def _accept(
    state: DeviceWindows,
    readings: Iterable[Any],
    config: WindowConfig,
    result: ApplyResult,
    fields: _Fields = _READING_FIELDS,
    batch: BatchFold | None = None,
) -> bool:
    """Add the readings to their panes (counting duplicates, collecting late ones) and to the
    averages, and advance `max_ts`. False when there were no readings (nothing to close). With
    `batch` (all the readings' values floats), the folds of panes that held nothing and the
    averages' updates may be left to `batch.run()`, which must run before the panes are read."""
    ordered = sorted(readings, key=fields.order)
    if not ordered:
        return False
    pane_ms = config.pane_ms
    if state.closed_until is None:  # a new device: as if its watermark had just reached its first reading
        first = fields.ts(ordered[0]) - config.allowed_lateness_ms
        state.closed_until = first - first % pane_ms
    closed_until = state.closed_until
    open_panes = state.open_panes
    assigned = _assign_all(ordered, open_panes, closed_until, pane_ms, fields)
    if assigned is not None:
        accepted_ts, accepted_channels, runs = assigned
    else:
        accepted_ts, accepted_channels, runs = [], [], []
        _assign_each(
            ordered, state, closed_until, pane_ms, result, accepted_ts, accepted_channels, runs, fields
        )
    if accepted_ts:
        count = result.accepted = len(accepted_ts)
        # The readings of one layout (the usual case) become one table, which folds into the panes
        # now and feeds the averages; otherwise panes fold their readings lazily (Pane.summary).
        table = _table(accepted_channels)
        deferred: list[tuple[Pane, int, int]] | None = None if batch is None or table is None else []
        for index, (pane, begin) in enumerate(runs):
            end = runs[index + 1][1] if index + 1 < len(runs) else count
            if begin == end:
                continue
            if deferred is not None and not pane.held:
                deferred.append((pane, begin, end))
                continue
            pane.summary()  # readings added earlier come first (and stats of a pane kept as columns)
            pane.columns = None
            if table is None or not _fold_table(pane.stats, table[0], table[1][begin:end], pane):
                pane.pending.extend(accepted_channels[begin:end])
        tau = float(config.ema_tau_ms)
        if batch is not None and deferred is not None and table is not None:
            batch.defer(state.ema, accepted_ts, accepted_channels, table, deferred, tau)
        else:
            _update_ema(state.ema, accepted_ts, accepted_channels, tau, table)
        newest = accepted_ts[-1]  # readings are in event-time order
        if state.max_ts is None or newest > state.max_ts:
            state.max_ts = newest
    return state.max_ts is not None


def _assign_each(
    ordered: Sequence[Any],
    state: DeviceWindows,
    closed_until: int,
    pane_ms: int,
    result: ApplyResult,
    accepted_ts: list[int],
    accepted_channels: list[Mapping[str, float]],
    runs: list[tuple[Pane, int]],
    fields: _Fields,
) -> None:
    """Readings (in order) to their panes one by one: duplicates counted, late ones collected,
    accepted ones (times, channels) appended, with (pane, index of its first accepted reading)
    for each pane in turn."""
    open_panes = state.open_panes
    current_start = None  # consecutive readings usually share a pane: look it up once
    keys: set[tuple[int, int]] = set()
    for reading in ordered:
        key = fields.order(reading)
        ts = key[0]
        start = ts - ts % pane_ms
        if start != current_start:
            if start + pane_ms <= closed_until:
                closed = state.closed_panes.get(start)
                if closed is not None and key in closed.keys:
                    result.duplicates += 1
                    continue
                if closed is not None:
                    closed.keys.add(key)  # so a redelivery of this late reading is a duplicate
                    closed.ordered_keys = None
                result.late.append(reading)
                continue
            pane = open_panes.get(start)
            if pane is None:
                pane = open_panes[start] = Pane(start)
            current_start, keys = start, pane.keys
            pane.ordered_keys = None  # keys may be added below
            runs.append((pane, len(accepted_ts)))
        if key in keys:
            result.duplicates += 1
            continue
        keys.add(key)
        accepted_ts.append(ts)
        accepted_channels.append(fields.channels(reading))


def _assign_all(
    ordered: Sequence[Any], open_panes: dict[int, Pane], closed_until: int, pane_ms: int, fields: _Fields
) -> tuple[list[int], list[Mapping[str, float]], list[tuple[Pane, int]]] | None:
    """`_assign_each` for the usual batch, a pane at a time: no reading late, none a duplicate
    (in the batch or of one its open pane holds). Returns what `_assign_each` would have appended,
    or None (and changes nothing) when the batch is not like that."""
    times = list(map(fields.ts, ordered))
    first = times[0]
    if first - first % pane_ms + pane_ms <= closed_until:
        return None  # late readings
    keys = list(zip(times, map(fields.seq, ordered), strict=True))
    if len(set(keys)) != len(keys):
        return None  # duplicates within the batch
    spans: list[tuple[int, int, int]] = []  # (pane start, first index, end index)
    count = len(times)
    index = 0
    while index < count:
        ts = times[index]
        start = ts - ts % pane_ms
        end = bisect_left(times, start + pane_ms, index)
        pane = open_panes.get(start)
        if pane is not None and not pane.keys.isdisjoint(keys[index:end]):
            return None  # redelivered readings
        spans.append((start, index, end))
        index = end
    runs: list[tuple[Pane, int]] = []
    for start, index, end in spans:
        pane = open_panes.get(start)
        if pane is None:
            chunk = keys[index:end]  # sorted and unique: the readings are in order, none a duplicate
            pane = open_panes[start] = Pane(start, {}, set(chunk), ordered_keys=chunk)
        else:
            pane.keys.update(keys[index:end])
            pane.ordered_keys = None
        runs.append((pane, index))
    return times, list(map(fields.channels, ordered)), runs


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
    ema: dict[str, list[float]],
    times: Sequence[int],
    rows: Sequence[Mapping[str, float]],
    tau: float,
    table: Table | None = None,
) -> None:
    """The time-aware EMA of each channel over the accepted readings (in event-time order); only
    readings later than the channel's last applied one update it.

    Channels present in every reading that start from the same last time (the usual case) share
    one plan: which readings update them and with which alpha, so the per-value work is a single
    multiply-add. When all channels share it, one generated kernel runs it for all of them at once
    (`_ema_kernel`; `table` is `_table(rows)` when the caller has it). Same arithmetic, in the same
    order, as updating reading by reading."""
    if table is None:
        table = _table(rows)
    if table is not None and _update_ema_together(ema, times, table, tau):
        return
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


_EMA_KERNELS: dict[
    int, Callable[[Sequence[float], Sequence[float], Iterable[Sequence[float]]], tuple[float, ...]]
] = {}
_EMA_KERNEL_MAX_CHANNELS: Final = 64  # wider layouts take the channel-by-channel path


def _ema_kernel(
    width: int,
) -> Callable[[Sequence[float], Sequence[float], Iterable[Sequence[float]]], tuple[float, ...]]:
    """A function updating `width` averages together: `kernel(values, alphas, rows)` runs
    `v_i += alpha * (x_i - v_i)` for each (alpha, row) in turn and returns the new values.

    Generated once per width as straight-line code: the same multiply-adds as the loop in
    `_update_ema`, without its per-value loop overhead."""
    kernel = _EMA_KERNELS.get(width)
    if kernel is None:
        values = ", ".join(f"v{i}" for i in range(width))
        inputs = ", ".join(f"x{i}" for i in range(width))
        source = (
            "def kernel(values, alphas, rows):\n"
            f"    {values}, = values\n"
            f"    for alpha, ({inputs},) in zip(alphas, rows):\n"
            + "".join(f"        v{i} += alpha * (x{i} - v{i})\n" for i in range(width))
            + f"    return ({values},)\n"
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<ema kernel {width}>", "exec"), namespace)  # our own source
        kernel = _EMA_KERNELS[width] = namespace["kernel"]
    return kernel


def _update_ema_together(ema: dict[str, list[float]], times: Sequence[int], table: Table, tau: float) -> bool:
    """`_update_ema` for the usual case, all channels in one pass: the readings as one table, and
    its channels all new or all last updated at the same time. False (nothing done) otherwise."""
    names, rows = table
    width = len(names)
    if width > _EMA_KERNEL_MAX_CHANNELS:
        return False
    found = list(map(ema.get, names))
    entries: list[list[float]] = [entry for entry in found if entry is not None]
    if not entries:
        values, last, skip = tuple(map(float, rows[0])), float(times[0]), 1
    elif len(entries) < width:
        return False
    else:
        last = entries[0][1]
        if any(entry[1] != last for entry in entries):
            return False
        values, skip = tuple(entry[0] for entry in entries), 0
    mask, factors, last = _ema_plan(times, last, skip, tau, {})
    updated = _ema_kernel(width)(values, factors, compress(rows, mask))
    last = float(last)
    if skip:
        ema.update(zip(names, map(list, zip(updated, repeat(last), strict=False)), strict=True))
    else:
        for entry, value in zip(entries, updated, strict=True):
            entry[0], entry[1] = value, last
    return True


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
    later = times[skip:]
    if later and later[0] > last and all(map(lt, later, later[1:])):  # each one later: all update
        gaps = list(map(sub, later, [last, *later[:-1]]))
        for gap in set(gaps).difference(cache):
            _alpha(gap, tau, cache)
        return [False] * skip + [True] * len(later), list(map(cache.__getitem__, gaps)), later[-1]
    mask = [False] * skip
    factors = []
    for ts in later:
        if ts > last:
            factors.append(_alpha(ts - last, tau, cache))
            mask.append(True)
            last = ts
        else:
            mask.append(False)
    return mask, factors, last


# Folding many devices' readings at once: the aggregate stage's batches hold thousands of readings
# of a few channel layouts, and the per-value work of `_fold_table` and `_update_ema_together` (a
# few float operations a value, about 45 % of the stage in pure Python) becomes a handful of array
# operations per layout. numpy is imported on the first batch that uses it, never at module import.
ARRAY_MIN_READINGS: Final = 256  # fewer readings of a layout in a batch: the generated kernels
# One step of the array loops (a few numpy calls on a prefix of the panes or devices) costs about
# what folding this many values in Python does: arrays only when there are more values per step
# (one device's 10,000 readings in a batch would be 10,000 steps of one row: the kernels do it).
_STEP_VALUES: Final = 64


def _arrays_pay(steps: int, rows: int, width: int) -> bool:
    """Whether `steps` array steps over `rows` rows of `width` values beat the Python kernels."""
    return steps * _STEP_VALUES <= rows * width


@dataclass(slots=True)
class _DeferredDevice:
    """One device's part of a `BatchFold` group: its readings' rows (from `offset` in the group's
    table), its fresh panes as (pane, first row, end row) within its rows, and its averages' plan."""

    offset: int
    rows: Sequence[tuple[float, ...]]
    panes: list[tuple[Pane, int, int]]
    ema: dict[str, list[float]]
    ema_plan: _EmaPlan | None  # None: the averages were updated at once


@dataclass(frozen=True, slots=True)
class _EmaPlan:
    """`_update_ema_together`'s work for one device: the start values (None: the first row's,
    which starts new averages), the rows that update them with their alphas, and the time of the
    last update."""

    start: tuple[float, ...] | None
    updates: list[int]
    alphas: list[float]
    last: float

    @property
    def new(self) -> bool:
        return self.start is None


@dataclass(slots=True)
class _LayoutGroup:
    rows: list[tuple[float, ...]] = field(default_factory=list)
    devices: list[_DeferredDevice] = field(default_factory=list)


class BatchFold:
    """Pane folds and average updates of many devices, deferred by `_accept` and done together.

    A device takes part when all its readings of the batch have one channel layout and every
    value is a float (`float_only`, which the stage's decoder knows). Its panes that held nothing
    before the batch (fresh panes) and its averages (when all its channels are new, or were last
    updated together) are deferred; anything else folds at once as before. `run()` then computes
    each layout's deferred work over one float64 table of its readings:

    * pane sums, minimums and maximums: the panes sorted by length, each step k adding the k-th
      row of every pane at least k + 1 long (`s += x`), so every sum is sequential in reading
      order, as `v0 + v1 + ...`; minimum and maximum do not depend on the order, except between
      0.0 and -0.0, which compare equal: a table holding -0.0 folds its panes with the kernels;
    * averages: the devices sorted by their number of updates, each step k applying every
      device's k-th update (`v += alpha * (x - v)`, the same three roundings as the kernel).

    IEEE-754 rounds each of these operations as Python does, so every figure is the same float
    as `_fold_table` and `_update_ema_together` compute (tests/hot/test_fast_paths.py)."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, ...], _LayoutGroup] = {}
        self._alphas: dict[float, float] = {}

    def defer(
        self,
        ema: dict[str, list[float]],
        times: Sequence[int],
        channels: Sequence[Mapping[str, float]],
        table: Table,
        panes: list[tuple[Pane, int, int]],
        tau: float,
    ) -> None:
        """Take one device's accepted readings (in event-time order: their times, channels and
        `table`) and its fresh panes; update its averages at once when they cannot be deferred."""
        names, rows = table
        group = self._groups.get(names)
        if group is None:
            group = self._groups[names] = _LayoutGroup()
        plan = self._ema_plan(ema, times, names, rows, tau)
        if plan is None:
            _update_ema(ema, times, channels, tau, table)
        group.devices.append(_DeferredDevice(len(group.rows), rows, panes, ema, plan))
        group.rows.extend(rows)

    def _ema_plan(
        self,
        ema: dict[str, list[float]],
        times: Sequence[int],
        names: tuple[str, ...],
        rows: Sequence[tuple[float, ...]],
        tau: float,
    ) -> _EmaPlan | None:
        """`_update_ema_together`'s plan for the device, or None when it would not take it."""
        if len(names) > _EMA_KERNEL_MAX_CHANNELS:
            return None
        entries = [entry for entry in map(ema.get, names) if entry is not None]
        if not entries:
            start, last, skip = None, float(times[0]), 1
        elif len(entries) < len(names) or any(entry[1] != entries[0][1] for entry in entries):
            return None
        else:
            start, last, skip = tuple(entry[0] for entry in entries), entries[0][1], 0
        mask, factors, last = _ema_plan(times, last, skip, tau, self._alphas)
        return _EmaPlan(start, list(compress(range(len(rows)), mask)), factors, float(last))

    def run(self) -> None:
        """Compute everything deferred; afterwards every pane and average is as `_accept` would
        have left it."""
        groups, self._groups = self._groups, {}
        for names, group in groups.items():
            if len(group.rows) < ARRAY_MIN_READINGS:
                _run_plain(names, group)
            else:
                _run_arrays(names, group)


def _run_plain(names: tuple[str, ...], group: _LayoutGroup) -> None:
    """A group too small for arrays: the kernels, device by device."""
    _fold_plainly(names, group)
    for device in group.devices:
        if device.ema_plan is not None:
            _ema_plainly(names, device, device.ema_plan)


def _fold_plainly(names: tuple[str, ...], group: _LayoutGroup) -> None:
    """The group's deferred panes folded by `_fold_table` (the kernels), as `_accept` would have."""
    for device in group.devices:
        for pane, begin, end in device.panes:
            _fold_table(pane.stats, names, device.rows[begin:end], pane)


def _ema_plainly(names: tuple[str, ...], device: _DeferredDevice, plan: _EmaPlan) -> None:
    """One device's deferred averages updated by the EMA kernel, as `_update_ema_together` would."""
    values = tuple(map(float, device.rows[0])) if plan.start is None else plan.start
    updated = _ema_kernel(len(names))(values, plan.alphas, map(device.rows.__getitem__, plan.updates))
    _store_ema(device.ema, names, updated, plan.last, plan.new)


def _store_ema(
    ema: dict[str, list[float]], names: tuple[str, ...], values: Sequence[float], last: float, new: bool
) -> None:
    """The averages after the batch, stored as `_update_ema_together` stores them."""
    if new:
        ema.update(zip(names, map(list, zip(values, repeat(last), strict=False)), strict=True))
    else:
        for name, value in zip(names, values, strict=True):
            entry = ema[name]
            entry[0], entry[1] = value, last


def _run_arrays(names: tuple[str, ...], group: _LayoutGroup) -> None:
    np = _numpy()
    width = len(names)
    table = np.fromiter(chain.from_iterable(group.rows), np.float64, len(group.rows) * width).reshape(
        -1, width
    )
    panes = [
        (pane, device.offset + begin, end - begin)
        for device in group.devices
        for pane, begin, end in device.panes
    ]
    if panes:
        longest = max(length for _pane, _first, length in panes)
        rows = sum(length for _pane, _first, length in panes)
        negative_zero = bool(np.any(np.signbit(table) & (table == 0.0)))
        if negative_zero or not _arrays_pay(longest, rows, width):
            _fold_plainly(names, group)
        else:
            _fold_arrays(np, names, table, panes)
    planned = [(device, device.ema_plan) for device in group.devices if device.ema_plan is not None]
    if planned:
        steps = max(len(plan.updates) for _device, plan in planned)
        if _arrays_pay(steps, sum(len(plan.updates) for _device, plan in planned), width):
            _ema_arrays(np, names, table, planned)
        else:
            for device, plan in planned:
                _ema_plainly(names, device, plan)


def _fold_arrays(np: Any, names: tuple[str, ...], table: Any, panes: list[tuple[Pane, int, int]]) -> None:
    """Count, sum, minimum and maximum of every pane's rows, stored as `_fold_table` stores them
    for a pane that held nothing."""
    panes.sort(key=lambda item: -item[2])  # longest first: step k works on a prefix
    firsts = np.array([first for _pane, first, _length in panes], dtype=np.intp)
    lengths = [length for _pane, _first, length in panes]
    sums = table[firsts]  # fancy indexing copies
    lows = sums.copy()
    highs = sums.copy()
    descending = np.array(lengths, dtype=np.intp)
    for k in range(1, lengths[0]):
        n = int(np.count_nonzero(descending > k))
        rows = table[firsts[:n] + k]
        sums[:n] += rows
        np.minimum(lows[:n], rows, out=lows[:n])
        np.maximum(highs[:n], rows, out=highs[:n])
    ordered, _order = _sorted_layout(names)
    by_name = names.index
    permutation = [by_name(name) for name in ordered]  # to the sorted order of Columns
    width = len(names)
    for (pane, _first, length), total, low, high in zip(
        panes,
        sums[:, permutation].tolist(),
        lows[:, permutation].tolist(),
        highs[:, permutation].tolist(),
        strict=True,
    ):
        count = float(length)
        pane.columns = (ordered, (count,) * width, total, low, high)  # stats only if needed later


def _ema_arrays(
    np: Any, names: tuple[str, ...], table: Any, planned: list[tuple[_DeferredDevice, _EmaPlan]]
) -> None:
    """Every deferred device's averages, their k-th updates applied together at step k."""
    planned.sort(key=lambda item: -len(item[1].updates))  # most updates first: step k works on a prefix
    values = np.array(
        [table[device.offset] if plan.start is None else plan.start for device, plan in planned],
        dtype=np.float64,
    )
    counts = [len(plan.updates) for _device, plan in planned]
    steps = counts[0]
    if steps:
        rows = np.zeros((len(planned), steps), dtype=np.intp)
        alphas = np.zeros((len(planned), steps), dtype=np.float64)
        for i, (device, plan) in enumerate(planned):
            k = counts[i]
            if not k:
                break
            rows[i, :k] = [device.offset + u for u in plan.updates]
            alphas[i, :k] = plan.alphas
        descending = np.array(counts, dtype=np.intp)
        for k in range(steps):
            n = int(np.count_nonzero(descending > k))
            step = table[rows[:n, k]]
            step -= values[:n]  # x - v
            step *= alphas[:n, k, None]  # alpha * (x - v)
            values[:n] += step  # v + alpha * (x - v)
    for (device, plan), updated in zip(planned, values.tolist(), strict=True):
        _store_ema(device.ema, names, updated, plan.last, plan.new)


def _numpy() -> Any:
    import numpy as np  # here, not at module import: only a batch of ARRAY_MIN_READINGS readings pays it

    return np


_W = TypeVar("_W")


def _close(
    state: DeviceWindows,
    config: WindowConfig,
    window_of: Callable[..., _W | None],
) -> list[tuple[WindowSpec, int, _W]]:
    """Close the panes the watermark (`max_ts` - allowed lateness) passed; return each window
    that closes with them and holds a reading, in emission order: (spec, end_ms, its figures by
    `window_of(start, end, panes, pane_ms, step_ms, running, starts=<sorted starts of the closed
    panes holding readings>)`)."""
    assert state.max_ts is not None
    watermark = state.max_ts - config.allowed_lateness_ms
    pane_ms = config.pane_ms
    old = state.closed_until
    assert old is not None
    new = watermark - watermark % pane_ms
    if new <= old:
        return []
    for start in [s for s in state.open_panes if s + pane_ms <= new]:
        pane = state.closed_panes[start] = state.open_panes.pop(start)
        if pane.pending:
            pane.summary()
    max_len = config.max_length_ms
    step_ms = state.step_ms or config.nominal_step_ms
    panes = state.closed_panes
    starts = sorted(s for s, p in panes.items() if p.stats or p.columns is not None or p.pending)  # p.held
    closed: list[tuple[WindowSpec, int, _W]] = []
    running: dict[int, _Running] = {}  # window length -> the last merge of its panes, to extend
    end = old + pane_ms
    while end <= new:
        index = bisect_left(starts, end - max_len)
        if index == len(starts):
            break
        if starts[index] >= end:  # nothing in any window ending here: jump to the next data
            end = starts[index] + pane_ms
            continue
        same_span: dict[int, _W | None] = {}  # window length -> its figures
        for spec in config.specs:
            if end % spec.step_ms == 0:
                length = spec.length_ms
                if length not in same_span:  # e.g. the hourly tumbling and sliding windows at :00
                    merge = running.get(length)
                    if merge is None:
                        merge = running[length] = _Running()
                    same_span[length] = window_of(
                        end - length, end, panes, pane_ms, step_ms, merge, starts=starts
                    )
                figures = same_span[length]
                if figures is not None:
                    closed.append((spec, end, figures))
        end += pane_ms
    state.closed_until = new
    keep_from = new + pane_ms - max_len
    for start in [s for s in panes if s < keep_from]:
        del panes[start]
    return closed


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
    merged, in order, and the merged figures (`_window_channels`: its own lists, never a pane's;
    `_window_columns`: Columns)."""

    starts: list[int] = field(default_factory=list)
    merged: Any = None


def _window_channels(
    start: int,
    end: int,
    panes: Mapping[int, Pane],
    pane_ms: int,
    step_ms: int,
    running: _Running | None = None,
    *,
    starts: list[int] | None = None,  # the plain definition finds its panes itself
) -> dict[str, dict[str, Any]] | None:
    """The channels of the closed window [start, end): per channel count, mean, min, max and
    completeness; None when the window holds no reading.

    Pane summaries merge per channel in pane order (sums sequential, the first minimum and maximum
    kept on ties), so a window's figures do not depend on how its readings were batched. Windows
    of one length closing one after the other (the sliding hour, every 5 minutes) mostly merge
    the previous window's panes plus one: with `running`, a window whose panes start with the
    previous one's takes that merge and adds only its new panes, the same fold in the same order."""
    starts = [s for s in range(start, end, pane_ms) if (pane := panes.get(s)) is not None and pane.held]
    if not starts:
        return None
    merged: dict[str, list[float]]
    if len(starts) == 1:  # a 5-minute window, or a longer one with data in one pane only
        merged = panes[starts[0]].summary()
    else:
        done = 0
        if (
            running is not None
            and 1 < len(running.starts) <= len(starts)
            and starts[: len(running.starts)] == running.starts
        ):
            merged, done = running.merged, len(running.starts)
        if not done:
            merged = {name: list(entry) for name, entry in panes[starts[0]].summary().items()}
            done = 1
        for pane_start in starts[done:]:
            for name, (count, total, low, high) in panes[pane_start].summary().items():
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


FIGURES: Final = ("count", "mean", "min", "max", "completeness")  # a channel's figures in a window
_ARRAYS: Final = ("counts", "means", "mins", "maxes", "completeness")  # their arrays in a record


def columnar(channels: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """A window's per-channel figures (`_window_channels`) as the record's parallel arrays:
    `channels` (the names, in the given order, which is sorted) and one array per figure."""
    names = list(channels)
    out: dict[str, list[Any]] = {"channels": names}
    for figure, array in zip(FIGURES, _ARRAYS, strict=True):
        out[array] = [channels[name][figure] for name in names]
    return out


def window_channels(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-channel view of an aggregate record: channel -> {count, mean, min, max,
    completeness}, as the `aggregate_channels` view gives them one row each."""
    arrays = [record[array] for array in _ARRAYS]
    return {
        name: dict(zip(FIGURES, figures, strict=True))
        for name, *figures in zip(record["channels"], *arrays, strict=True)
    }


def _window_columns(
    start: int,
    end: int,
    panes: Mapping[int, Pane],
    pane_ms: int,
    step_ms: int,
    running: _Running | None = None,
    *,
    starts: list[int] | None = None,
) -> Columns | None:
    """`_window_channels` as Columns, before the per-channel figures: counts, sums, minimums and
    maximums of the closed window [start, end), channels sorted; None when it holds no reading.

    Merges the same pane summaries in the same order (and extends the previous window's merge the
    same way), each pane added to all channels at once when the channels are the same. `starts`,
    when given, are the sorted starts of the panes holding readings (as `_close` has them)."""
    if starts is None:
        held = [s for s in range(start, end, pane_ms) if (pane := panes.get(s)) is not None and pane.held]
    else:
        held = starts[bisect_left(starts, start) : bisect_left(starts, end)]
    if not held:
        return None
    if len(held) == 1:
        return _pane_columns(panes[held[0]])
    merged: Columns
    done = 0
    if (
        running is not None
        and 1 < len(running.starts) <= len(held)
        and held[: len(running.starts)] == running.starts
    ):
        merged, done = running.merged, len(running.starts)
    if not done:
        merged, done = _pane_columns(panes[held[0]]), 1
    for pane_start in held[done:]:
        merged = _merge_columns(merged, _pane_columns(panes[pane_start]))
    if running is not None:
        running.starts, running.merged = held, merged
    return merged


def _merge_columns(merged: Columns, pane: Columns) -> Columns:
    """A window's figures with one more pane: counts and sums added (the pane's after the window's),
    the first minimum and maximum kept on ties, as `_window_channels` merges."""
    names = merged[0]
    if pane[0] is names or pane[0] == names:
        kernel = _merge_kernel(len(names))
        if kernel is not None:
            return kernel(merged, pane)
        return (
            names,
            tuple(map(add, merged[1], pane[1])),
            tuple(map(add, merged[2], pane[2])),
            tuple(map(min, merged[3], pane[3])),  # min(a, b) is a unless b < a
            tuple(map(max, merged[4], pane[4])),
        )
    by_name = {name: [count, total, low, high] for name, count, total, low, high in zip(*merged, strict=True)}
    for name, count, total, low, high in zip(*pane, strict=True):
        entry = by_name.get(name)
        if entry is None:
            by_name[name] = [count, total, low, high]
        else:
            entry[0] += count
            entry[1] += total
            if low < entry[2]:  # noqa: PLR1730
                entry[2] = low
            if high > entry[3]:  # noqa: PLR1730
                entry[3] = high
    names = _sorted_names(by_name)
    counts, sums, lows, highs = zip(*map(by_name.__getitem__, names), strict=True)
    return (names, counts, sums, lows, highs)


class RecordEncoder:
    """Closed windows (`apply_documents`) -> aggregate records as JSON lines: the record
    `apply_readings` emits, with the stage's `start` and `end` (ISO-8601) appended:

        {"device_id", "window", "start_ms", "end_ms", "expected", "channels": [<names, sorted>],
         "counts", "means", "mins", "maxes", "completeness": [<one per channel>], "start", "end"}

    Per channel: count as an integer, mean = sum / count, min, max, completeness = count /
    expected capped at 1. The arrays come from the window's Columns with one C-level pass each
    (no dict per channel). Instants are formatted once per encoder (one per stage, kept across
    batches; bounded)."""

    def __init__(self) -> None:
        self._instants: dict[int, str] = {}  # epoch ms -> ISO-8601

    def encode(
        self, device_id: str, windows: Sequence[ClosedWindow], latest: MutableMapping[str, Any]
    ) -> list[tuple[int, bytes]]:
        """The records of the windows as JSON lines, in order: (start_ms of the first, its lines)
        for each run of windows starting on one UTC day, the lines of a run joined by newlines
        (`write_lines` files them under that day); sets `latest[window name]` to the last record
        of each name, as `apply_readings` does."""
        records: list[dict[str, Any]] = []
        last: dict[str, dict[str, Any]] = {}  # window name -> its last record, in order of first emission
        instants, instant = self._instants, self._instant
        for name, start, end, expected, (names, counts, sums, lows, highs) in windows:
            width = len(names)
            count = counts[0]
            if counts.count(count) == width:  # a window's channels usually share their count
                ratio = count / expected
                whole = [int(count)] * width
                completeness = [ratio if ratio < 1.0 else 1.0] * width  # min(1.0, ratio)
            else:
                whole = list(map(int, counts))
                completeness = [ratio if (ratio := c / expected) < 1.0 else 1.0 for c in counts]
            record = {
                "device_id": device_id,
                "window": name,
                "start_ms": start,
                "end_ms": end,
                "expected": expected,
                "channels": names,
                "counts": whole,
                "means": list(map(truediv, sums, counts)),
                "mins": lows,
                "maxes": highs,
                "completeness": completeness,
                "start": instants.get(start) or instant(start),
                "end": instants.get(end) or instant(end),
            }
            records.append(record)
            last[name] = record
        latest.update(last)
        return json_lines(records)

    def _instant(self, ms: int) -> str:
        text = self._instants.get(ms)
        if text is None:
            if len(self._instants) >= _INSTANTS_CAP:
                self._instants.clear()  # window bounds move on with time: start afresh
            text = self._instants[ms] = iso_from_ms(ms)
        return text


_INSTANTS_CAP: Final = 8_192
_DAY_MS: Final = 86_400_000
_SAFE_STRINGS: dict[tuple[str, ...], bool] = {}  # channel layouts and window names without "}"


def _may_hold_separator(record: Mapping[str, Any]) -> bool:
    """Whether a string of an aggregate record may hold `},{`: its device id, window name or a
    channel name has a "}" (the instants are ISO-8601). Layouts are checked once (bounded)."""
    names = record["channels"]
    safe = _SAFE_STRINGS.get(names)
    if safe is None:
        safe = not any("}" in name for name in names)
        if len(_SAFE_STRINGS) < _SORTED_NAMES_CAP:
            _SAFE_STRINGS[tuple(names)] = safe
    return not safe or "}" in record["device_id"] or "}" in record["window"]


def json_lines(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, bytes]]:
    """Aggregate records (in order) as JSON lines, `orjson.dumps` of each: (start_ms of the first,
    the lines joined by newlines) for each run of records starting on one UTC day.

    A run is serialized in one orjson call, and the separators between its records become
    newlines: a call costs about 3 us beyond the record itself, as much as writing the whole
    record. The separator `},{` cannot occur inside a record (flat objects of strings, numbers
    and arrays of them) except in a string; a run where a string could hold it is written a
    record at a time (`_may_hold_separator`)."""
    out: list[tuple[int, bytes]] = []
    dumps = orjson.dumps
    first = 0
    while first < len(records):
        day = records[first]["start_ms"] // _DAY_MS
        after = first + 1
        while after < len(records) and records[after]["start_ms"] // _DAY_MS == day:
            after += 1
        run = records[first:after]
        if any(_may_hold_separator(record) for record in run):
            lines = b"\n".join(map(dumps, run))
        else:
            lines = dumps(run)[1:-1].replace(b"},{", b"}\n{")
        out.append((records[first]["start_ms"], lines))
        first = after
    return out
