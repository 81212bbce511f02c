"""Classification: air-quality events and device faults, as alert transitions. Pure logic.

Every detector turns readings (in event-time order) into two numbers per step: the *enter* level
(the highest severity band whose raise threshold is met, -1 for none) and the *hold* level (the
highest band whose lower clear threshold is still met). One episode machine per device and event
type turns those into alert transitions, with a minimum duration and hysteresis:

    idle --enter>=0--> pending --held for min_duration--> OPEN  (emits "raised")
    OPEN --level changes (escalate on enter, de-escalate below the band's exit)--> "updated"
    OPEN --hold<0--> clearing --hold<0 for clear_duration--> idle (emits "cleared")
                     clearing --hold>=0--> OPEN (no alert: it never cleared)

Guideline levels (air-quality events; values are the raise thresholds, clear thresholds sit ~10 %
lower so a value hovering at a threshold does not flap):

* CO2 (ppm): warning 1000, critical 2000. German UBA / Ad-hoc-AG "Gesundheitliche Bewertung von
  Kohlendioxid in der Innenraumluft" (Bundesgesundheitsblatt 2008): < 1000 harmless, 1000-2000
  conspicuous, > 2000 unacceptable; 1000 ppm is also the classic ASHRAE 62.1 comfort reference.
* PM2.5 (ug/m3): info 15 (WHO Global Air Quality Guidelines 2021, 24-h AQG level), warning 35.5 and
  critical 55.5 (US EPA AQI breakpoints, 2024 revision: "Unhealthy for Sensitive Groups" and
  "Unhealthy" begin there).
* TVOC (ppb, isobutylene equivalent, 1 mg/m3 = 436 ppb at 25 C): warning 436 (1 mg/m3) and
  critical 1307 (3 mg/m3), German UBA TVOC levels 3 and 4 (Bundesgesundheitsblatt 2007: above
  1 mg/m3 hygienically conspicuous, above 3 mg/m3 acceptable only temporarily).
* CO (mg/m3): warning 10 and critical 35: WHO Guidelines for Indoor Air Quality: Selected
  Pollutants (2010), 8-h and 1-h guideline values.
* NO2 (ug/m3): warning 200 (WHO 2021 AQG 1-h level), critical 400 (EU alert threshold,
  Directive 2008/50/EC Annex XII).

Device faults: stuck/flatline (a channel repeats the same value for 30 min), spikes (one reading
jumps away from both neighbours and comes back: judged when the next reading arrives),
out-of-range (physically possible but implausible for the fleet, e.g. saturation), dropouts (no
data for longer than 5 reporting intervals, judged against the newest event time on the shard), and
drift (a calibrated value's moving average diverging from the median of its site's peers).

Fault timings follow the device's reporting interval. Devices report every 1-15 min, so a fixed wall
duration is wrong for most of them (at a 15-min step a 5-min dropout limit raises on every reading
and a 30-min flatline never sees 10 readings). Each timing is therefore the longer of its wall
duration (designed at a 60-s step, the values below) and a number of intervals (`FaultConfig`'s
`*_steps`): at 60 s nothing changes, at 900 s it becomes

    fault            at 60 s                          at 900 s (15 min)
    dropout          silent > 5 min                   silent > 75 min (5 intervals)
    flatline         same value >= 30 min, >= 10 rdg  same value >= 90 min (6 intervals), >= 6 rdg
    out of range     raise after 2 min, clear 5 min   raise after 30 min (2), clear after 75 min (5)
    spike            clear after 10 min quiet         clear after 30 min quiet (2 intervals)
    drift            tau, raise, clear 30 min         tau, raise, clear 90 min (6 intervals)
    peers fresh      within 60 min                    within 60 min (4 intervals)

(flatline needs at least span / interval readings, at most 10, so the count never stretches the
span at long intervals and a missed reading or two does not hide a stuck sensor.) The interval is
the device registry's `report_interval_s` (devices.json), stamped on each calibrated record by the
calibrate stage and kept in the device's roster entry (`step_ms`); a device the registry does not
know is assumed to report every `FaultConfig.default_step_ms` (60 s), the old behaviour.

Idempotency: a device's readings are applied only if newer than its high-water `(ts, seq)`, so a
redelivered batch produces no transition at all; out-of-order readings are counted, not classified
(episodes are about sequences, and the windows and cold path still see them).
"""

from __future__ import annotations

import functools
import hashlib
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, itemgetter, le
from typing import Any, Final

SEVERITIES: Final = ("info", "warning", "critical")
MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class Band:
    severity: str
    enter: float  # raise (or escalate) at value >= enter
    exit: float  # stay at this level while value >= exit


@dataclass(frozen=True, slots=True)
class EventRule:
    event_type: str
    channel: str
    bands: tuple[Band, ...]  # ascending
    min_duration_ms: int = 5 * MINUTE_MS
    clear_duration_ms: int = 5 * MINUTE_MS


AIR_QUALITY_RULES: Final = (
    EventRule("co2_high", "co2", (Band("warning", 1000, 900), Band("critical", 2000, 1800))),
    EventRule(
        "pm25_high", "pm25", (Band("info", 15, 12), Band("warning", 35.5, 30), Band("critical", 55.5, 50))
    ),
    EventRule("voc_high", "voc", (Band("warning", 436, 390), Band("critical", 1307, 1180))),
    EventRule("co_high", "co", (Band("warning", 10, 8.5), Band("critical", 35, 30))),
    EventRule("no2_high", "no2", (Band("warning", 200, 180), Band("critical", 400, 360))),
)

# Implausible-but-possible values: (low, high) outside of which a reading is suspect. Saturation of
# a 16-bit converter, NDIR sensors pinned at their 10,000 ppm top, relative humidity stuck at 0/100.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "co2": (300.0, 9_999.0),
    "pm25": (0.0, 999.0),
    "voc": (0.0, 59_999.0),
    "temperature": (-20.0, 60.0),
    "humidity": (0.5, 99.5),
    "mox_co": (1.0, 65_534.0),
    "mox_nmhc": (1.0, 65_534.0),
    "mox_nox": (1.0, 65_534.0),
    "mox_no2": (1.0, 65_534.0),
    "mox_o3": (1.0, 65_534.0),
}
# Minimum jump (in the channel's unit) that counts as a spike when it also comes straight back.
SPIKE_JUMP: Final[dict[str, float]] = {
    "co2": 500.0, "pm25": 100.0, "voc": 1000.0, "temperature": 5.0, "humidity": 20.0,
    "co": 5.0, "nox": 300.0, "no2": 150.0,
}  # fmt: skip
FLATLINE_CHANNELS: Final = ("co2", "pm25", "voc", "temperature", "humidity", "mox_co", "mox_nox", "mox_no2")
_FLATLINE_SET: Final = frozenset(FLATLINE_CHANNELS)
# Drift: (absolute tolerance, relative tolerance of the peer median), on the 30-min moving average.
DRIFT_TOLERANCE: Final[dict[str, tuple[float, float]]] = {
    "co": (1.0, 0.5), "nox": (100.0, 0.5), "no2": (40.0, 0.5), "co2": (200.0, 0.3),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Fault timings: wall-clock minimums (`*_ms`) and the same in reporting intervals (`*_steps`);
    `for_step` gives the effective values for one device's interval (module docstring)."""

    flatline_ms: int = 30 * MINUTE_MS
    flatline_min_readings: int = 10
    out_of_range_min_ms: int = 2 * MINUTE_MS
    out_of_range_clear_ms: int = 5 * MINUTE_MS
    spike_clear_ms: int = 10 * MINUTE_MS
    dropout_after_ms: int = 5 * MINUTE_MS
    drift_tau_ms: int = 30 * MINUTE_MS
    drift_min_ms: int = 30 * MINUTE_MS
    drift_clear_ms: int = 30 * MINUTE_MS
    drift_min_peers: int = 2
    peer_fresh_ms: int = 60 * MINUTE_MS
    default_step_ms: int = MINUTE_MS  # devices the registry gives no interval for
    flatline_steps: int = 6
    out_of_range_min_steps: int = 2
    out_of_range_clear_steps: int = 5
    spike_clear_steps: int = 2
    dropout_after_steps: int = 5
    drift_tau_steps: int = 6
    drift_min_steps: int = 6
    drift_clear_steps: int = 6
    peer_fresh_steps: int = 4

    def for_step(self, step_ms: int | None) -> FaultTimes:
        """The effective timings for a device reporting every `step_ms` (None: the default)."""
        return _fault_times(self, step_ms or self.default_step_ms)


@dataclass(frozen=True, slots=True)
class FaultTimes:
    """FaultConfig resolved for one reporting interval: max(wall duration, steps x interval)."""

    step_ms: int
    flatline_ms: int
    flatline_min_readings: int
    out_of_range_min_ms: int
    out_of_range_clear_ms: int
    spike_clear_ms: int
    dropout_after_ms: int
    drift_tau_ms: int
    drift_min_ms: int
    drift_clear_ms: int
    peer_fresh_ms: int


@functools.lru_cache(maxsize=64)  # a fleet has a handful of distinct intervals
def _fault_times(cfg: FaultConfig, step: int) -> FaultTimes:
    flatline_ms = max(cfg.flatline_ms, cfg.flatline_steps * step)
    return FaultTimes(
        step,
        flatline_ms,
        max(2, min(cfg.flatline_min_readings, flatline_ms // step)),
        max(cfg.out_of_range_min_ms, cfg.out_of_range_min_steps * step),
        max(cfg.out_of_range_clear_ms, cfg.out_of_range_clear_steps * step),
        max(cfg.spike_clear_ms, cfg.spike_clear_steps * step),
        max(cfg.dropout_after_ms, cfg.dropout_after_steps * step),
        max(cfg.drift_tau_ms, cfg.drift_tau_steps * step),
        max(cfg.drift_min_ms, cfg.drift_min_steps * step),
        max(cfg.drift_clear_ms, cfg.drift_clear_steps * step),
        max(cfg.peer_fresh_ms, cfg.peer_fresh_steps * step),
    )


@dataclass(frozen=True, slots=True)
class Transition:
    """One alert lifecycle step for one device and event type."""

    device_id: str
    event_type: str
    category: str  # air_quality | device_fault
    status: str  # raised | updated | cleared
    severity: str
    episode_start_ms: int
    at_ms: int
    channel: str | None
    value: float | None
    peak: float | None
    threshold: float | None
    detail: str

    @property
    def alert_id(self) -> str:
        return alert_id(self.device_id, self.event_type, self.episode_start_ms)

    @property
    def transition_id(self) -> str:
        return f"{self.alert_id}-{self.status}-{self.at_ms}"


def alert_id(device_id: str, event_type: str, episode_start_ms: int) -> str:
    """Deterministic: the same episode always has the same id, so a redelivered raise is recognised."""
    return hashlib.sha256(f"{device_id}|{event_type}|{episode_start_ms}".encode()).hexdigest()[:24]


def advance(
    ep: dict[str, Any] | None, ts: int, enter: int, hold: int, min_ms: int, clear_ms: int
) -> tuple[dict[str, Any] | None, str | None]:
    """One step of the episode machine (module docstring). Returns the new episode and a status.

    On "cleared" the returned episode is the one that just closed (the caller drops it)."""
    if ep is None:
        if enter < 0:
            return None, None
        ep = {"phase": "pending", "since": ts, "rank": enter}
    if ep["phase"] == "pending":
        if enter < 0:
            return None, None
        ep["rank"] = enter
        if ts - ep["since"] >= min_ms:
            ep["phase"] = "open"
            return ep, "raised"
        return ep, None
    level = max(enter, min(ep["rank"], hold))
    if level < 0:
        if ep["phase"] == "open":
            ep["phase"] = "clearing"
            ep["clear_since"] = ts
        if ts - ep["clear_since"] >= clear_ms:
            return ep, "cleared"
        return ep, None
    ep["phase"] = "open"
    if level != ep["rank"]:
        ep["rank"] = level
        return ep, "updated"
    return ep, None


def band_levels(bands: Sequence[Band], value: float) -> tuple[int, int]:
    enter = hold = -1
    for index, band in enumerate(bands):
        if value >= band.enter:
            enter = index
        if value >= band.exit:
            hold = index
    return enter, hold


@dataclass(slots=True)
class DeviceClassState:
    """What classify remembers per device (one state item)."""

    hw: tuple[int, int] | None = None  # newest (ts, seq) applied
    episodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    flat: dict[str, list[float]] = field(default_factory=dict)  # channel -> [value, since_ts, n]
    spike: dict[str, list[float]] = field(default_factory=dict)  # channel -> [previous, last]
    published: list[str] = field(default_factory=list)  # recent transition ids, newest last

    def to_doc(self) -> dict[str, Any]:
        return {
            "hw": self.hw,
            "ep": self.episodes,
            "flat": self.flat,
            "spike": self.spike,
            "pub": self.published,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> DeviceClassState:
        if doc is None:
            return cls()
        hw = doc["hw"]
        return cls(
            None if hw is None else (hw[0], hw[1]),
            dict(doc["ep"]),
            dict(doc["flat"]),
            dict(doc["spike"]),
            list(doc["pub"]),
        )


@dataclass(slots=True)
class ClassifyResult:
    transitions: list[Transition] = field(default_factory=list)
    applied: int = 0
    skipped: int = 0  # duplicates and out-of-order readings


@dataclass(frozen=True, slots=True)
class _Emitter:
    device_id: str
    out: list[Transition]

    def emit(
        self,
        ep: dict[str, Any],
        status: str,
        event_type: str,
        category: str,
        severity: str,
        at: int,
        channel: str | None,
        value: float | None,
        threshold: float | None,
        detail: str,
    ) -> None:
        self.out.append(
            Transition(
                self.device_id,
                event_type,
                category,
                status,
                severity,
                int(ep["since"]),
                at,
                channel,
                value,
                ep.get("peak"),
                threshold,
                detail,
            )
        )


def classify_readings(
    state: DeviceClassState,
    roster_entry: dict[str, Any],
    device_id: str,
    readings: Sequence[Any],
    *,
    rules: Sequence[EventRule] = AIR_QUALITY_RULES,
    faults: FaultConfig = FaultConfig(),
) -> ClassifyResult:
    """Apply one device's readings (objects with ts_ms, seq, channels) to its state, in event-time
    order; mutates `state` and `roster_entry` (last time, drift averages, dropout episode). Fault
    timings follow the entry's reporting interval `step_ms` (the caller sets it from the registry)."""
    times = faults.for_step(roster_entry.get("step_ms"))
    result = ClassifyResult()
    emitter = _Emitter(device_id, result.transitions)
    episodes = state.episodes
    # What the per-reading checks read, looked up once: each rule's channel, lowest exit, event type.
    checks = [(rule.channel, rule.bands[0].exit, rule.event_type, rule) for rule in rules]
    applied = []
    hw = state.hw
    for reading in sorted(readings, key=_ORDER):
        key = (reading.ts_ms, reading.seq)
        if hw is not None and key <= hw:
            result.skipped += 1
            continue
        hw = key
        applied.append(reading)
    state.hw = hw
    result.applied = len(applied)
    if not applied:
        return result
    # The fault detectors' tracks depend on the channel values alone, so they run channel by
    # channel over all the applied readings first; the episodes then advance reading by reading.
    detected = _detect_faults(state, applied, times)
    averages: dict[str, list[float]] | None = None
    for index, reading in enumerate(applied):
        ts = reading.ts_ms
        channels: Mapping[str, float] = reading.channels
        last = roster_entry.get("last")
        gap = last is not None and ts - last > times.dropout_after_ms
        if gap or roster_entry.get("dropout") is not None:
            _dropout_gap(roster_entry, emitter, ts, times)  # (it does nothing otherwise)
        roster_entry["last"] = ts
        for channel, lowest_exit, event_type, rule in checks:
            value = channels.get(channel)
            if value is None or (value < lowest_exit and event_type not in episodes):
                continue  # below every band with no episode open: nothing can happen
            enter, hold = band_levels(rule.bands, value)
            ep, status = advance(
                episodes.get(rule.event_type), ts, enter, hold, rule.min_duration_ms, rule.clear_duration_ms
            )
            if ep is not None:
                ep["peak"] = max(ep.get("peak", value), value)
            _store(episodes, rule.event_type, ep, status)
            if status is not None and ep is not None:
                band = rule.bands[ep["rank"]]
                emitter.emit(
                    ep,
                    status,
                    rule.event_type,
                    "air_quality",
                    band.severity,
                    ts,
                    rule.channel,
                    value,
                    band.enter,
                    f"{rule.channel}={value:g}",
                )
        if detected is None:
            _faults(state, emitter, ts, channels, times)
        else:
            _fault_steps(state, emitter, ts, channels, times, *detected[index])
        if averages is None:  # the drift averages' dict, made where the first applied reading made it
            averages = roster_entry.setdefault("ema", {})
    # The drift channels' moving averages, channel by channel: nothing above reads them.
    assert averages is not None  # (made at the first applied reading)
    _drift_averages(averages, applied, times)
    return result


_ORDER: Final = attrgetter("ts_ms", "seq")  # event-time order: (ts, seq)


def _store(
    episodes: dict[str, dict[str, Any]], name: str, ep: dict[str, Any] | None, status: str | None
) -> None:
    if ep is None or status == "cleared":
        episodes.pop(name, None)
    else:
        episodes[name] = ep


def _fault_step(
    state: DeviceClassState,
    emitter: _Emitter,
    name: str,
    ts: int,
    active: str | None,
    min_ms: int,
    clear_ms: int,
    severity: str,
    value: float | None,
    detail: str,
) -> None:
    if active is None and name not in state.episodes:
        return  # idle and nothing wrong: the common case, nothing to advance
    level = 0 if active is not None else -1
    ep, status = advance(state.episodes.get(name), ts, level, level, min_ms, clear_ms)
    if ep is not None and active is not None:
        ep["channel"] = active
    _store(state.episodes, name, ep, status)
    if status is not None and ep is not None:
        emitter.emit(ep, status, name, "device_fault", severity, ts, ep.get("channel"), value, None, detail)


# Channel layout -> the fault checks of each of its channels, in channel order:
# (name, plausible bounds or None, tracked for flatlines, spike jump or None); channels no detector
# reads are left out. A fleet sends a handful of layouts; bounded against abuse.
_FaultPlan = tuple[tuple[str, tuple[float, float] | None, bool, float | None], ...]
_FAULT_PLANS: dict[tuple[str, ...], _FaultPlan] = {}
_FAULT_PLANS_CAP: Final = 4_096


def _fault_plan(layout: tuple[str, ...]) -> _FaultPlan:
    plan = tuple(
        (name, PLAUSIBLE.get(name), name in _FLATLINE_SET, SPIKE_JUMP.get(name))
        for name in layout
        if name in PLAUSIBLE or name in _FLATLINE_SET or name in SPIKE_JUMP
    )
    if len(_FAULT_PLANS) < _FAULT_PLANS_CAP:
        _FAULT_PLANS[layout] = plan
    return plan


def _faults(
    state: DeviceClassState, emitter: _Emitter, ts: int, channels: Mapping[str, float], cfg: FaultTimes
) -> None:
    # One pass over the reading's channels feeds the three detectors: out of range (outside the
    # plausible range), flatline (the same value for flatline_ms and at least flatline_min_readings
    # readings), spike (the previous reading jumped away from both neighbours, which agree).
    bad: str | None = None
    bad_value: float | None = None
    flat: str | None = None
    spiked: str | None = None
    spike_value: float | None = None
    flat_tracks, spike_tracks = state.flat, state.spike
    layout = tuple(channels)
    plan = _FAULT_PLANS.get(layout)
    if plan is None:
        plan = _fault_plan(layout)
    for name, bounds, flatline, jump in plan:
        value = channels[name]
        if bounds is not None and bad is None and not bounds[0] <= value <= bounds[1]:
            bad, bad_value = name, value
        if flatline:
            track = flat_tracks.get(name)
            if track is None:
                flat_tracks[name] = [value, ts, 1]
            elif track[0] != value:
                track[0], track[1], track[2] = value, ts, 1  # a new run starts (in place: no new list)
            else:
                track[2] += 1
                if (
                    flat is None
                    and ts - track[1] >= cfg.flatline_ms
                    and track[2] >= cfg.flatline_min_readings
                ):
                    flat = name
        if jump is not None:
            pair = spike_tracks.get(name)
            if pair is None:
                spike_tracks[name] = [value, value]
                continue
            before, middle = pair
            if spiked is None:  # abs() spelled out (the same comparisons, without a call each)
                rise, back = middle - before, middle - value
                if (
                    (rise > jump or -rise > jump)
                    and (back > jump or -back > jump)
                    and abs(value - before) <= jump / 2
                ):
                    spiked, spike_value = name, middle
            pair[0], pair[1] = middle, value
    _fault_steps(state, emitter, ts, channels, cfg, bad, bad_value, flat, spiked, spike_value)


_Detected = tuple[str | None, float | None, str | None, str | None, float | None]


def _detect_faults(
    state: DeviceClassState, readings: Sequence[Any], cfg: FaultTimes
) -> list[_Detected] | None:
    """What `_faults` finds at each of `readings` (applied, in order): the first out-of-range
    channel and its value, the first flatlined channel, the first spiked one and its spike, "first"
    in the readings' channel order; updates the flatline and spike tracks as `_faults` does.

    The detectors run channel by channel, each track in local variables through all the readings
    (a run of per-channel loops instead of a dict lookup per channel and reading), which needs
    every reading to list the same channels in the same order: None otherwise (the caller then
    runs `_faults` reading by reading)."""
    layout = tuple(readings[0].channels)
    if any(tuple(r.channels) != layout for r in readings):
        return None
    plan = _FAULT_PLANS.get(layout)
    if plan is None:
        plan = _fault_plan(layout)
    n = len(readings)
    bad: list[str | None] = [None] * n
    bad_value: list[float | None] = [None] * n
    flat: list[str | None] = [None] * n
    spiked: list[str | None] = [None] * n
    spike_value: list[float | None] = [None] * n
    if plan:
        times = [r.ts_ms for r in readings]
        rows = [r.channels for r in readings]
        names = [step[0] for step in plan]
        columns: Iterable[Sequence[float]] = [[row[names[0]] for row in rows]]
        if len(names) > 1:
            columns = zip(*map(itemgetter(*names), rows), strict=True)
        for (name, bounds, flatline, jump), column in zip(plan, columns, strict=True):
            if bounds is not None:
                low, high = bounds
                if not (all(map(le, repeat(low), column)) and all(map(le, column, repeat(high)))):
                    for i, value in enumerate(column):
                        if not low <= value <= high and bad[i] is None:
                            bad[i], bad_value[i] = name, value
            if flatline:
                track = state.flat.get(name)
                start = 0
                if track is None:
                    track = state.flat[name] = [column[0], times[0], 1]
                    start = 1
                held, since, count = track
                flatline_ms, min_readings = cfg.flatline_ms, cfg.flatline_min_readings
                for i in range(start, n):
                    value = column[i]
                    if held != value:
                        held, since, count = value, times[i], 1
                    else:
                        count += 1
                        if flat[i] is None and times[i] - since >= flatline_ms and count >= min_readings:
                            flat[i] = name
                track[0], track[1], track[2] = held, since, count
            if jump is not None:
                pair = state.spike.get(name)
                start = 0
                if pair is None:
                    pair = state.spike[name] = [column[0], column[0]]
                    start = 1
                before, middle = pair
                half = jump / 2
                for i in range(start, n):
                    value = column[i]
                    if spiked[i] is None:
                        rise, back = middle - before, middle - value
                        if (
                            (rise > jump or -rise > jump)
                            and (back > jump or -back > jump)
                            and abs(value - before) <= half
                        ):
                            spiked[i], spike_value[i] = name, middle
                    before, middle = middle, value
                pair[0], pair[1] = before, middle
    return list(zip(bad, bad_value, flat, spiked, spike_value, strict=True))


def _fault_steps(
    state: DeviceClassState,
    emitter: _Emitter,
    ts: int,
    channels: Mapping[str, float],
    cfg: FaultTimes,
    bad: str | None,
    bad_value: float | None,
    flat: str | None,
    spiked: str | None,
    spike_value: float | None,
) -> None:
    """Advance the three fault episodes on what the detectors found at one reading."""
    episodes = state.episodes  # each step below does nothing while idle with nothing wrong: skip it
    found = bad is not None or flat is not None or spiked is not None
    if not found and not (
        "fault_out_of_range" in episodes or "fault_flatline" in episodes or "fault_spike" in episodes
    ):
        return
    _fault_step(
        state,
        emitter,
        "fault_out_of_range",
        ts,
        bad,
        cfg.out_of_range_min_ms,
        cfg.out_of_range_clear_ms,
        "warning",
        bad_value,
        f"{bad}={bad_value}" if bad else "back in range",
    )
    _fault_step(
        state,
        emitter,
        "fault_flatline",
        ts,
        flat,
        0,
        0,
        "warning",
        channels.get(flat) if flat else None,
        f"{flat} stuck" if flat else "values change again",
    )
    _fault_step(
        state,
        emitter,
        "fault_spike",
        ts,
        spiked,
        0,
        cfg.spike_clear_ms,
        "info",
        spike_value,
        f"{spiked} spiked to {spike_value}" if spiked else "no spike since",
    )


def _drift_averages(averages: dict[str, list[float]], readings: Sequence[Any], cfg: FaultTimes) -> None:
    """Update a roster entry's moving averages (its `ema`) of the drift channels over `readings`
    (in order), channel by channel; the same arithmetic as reading by reading: a channel's first
    value starts its average, a later reading moves it by `alpha = 1 - exp(-dt / tau)` (computed
    once per distinct dt: readings usually come at one interval)."""
    new = [name for name in DRIFT_TOLERANCE if name not in averages]
    for reading in readings if new else ():  # averages start in reading order (their order as keys)
        for name in new:
            if name not in averages and (value := reading.channels.get(name)) is not None:
                averages[name] = [value, reading.ts_ms]  # (its own reading then moves it no further)
        if all(name in averages for name in new):
            break
    alphas: dict[int, float] = {}
    tau = cfg.drift_tau_ms
    for name in DRIFT_TOLERANCE:
        track = averages.get(name)
        if track is None:
            continue
        mean, last = track
        for reading in readings:
            value = reading.channels.get(name)
            if value is None:
                continue
            ts = reading.ts_ms
            if ts > last:
                dt = ts - last
                alpha = alphas.get(dt)
                if alpha is None:
                    alpha = alphas[dt] = 1.0 - math.exp(-dt / tau)
                mean += alpha * (value - mean)
                last = ts
        track[0], track[1] = mean, last


def _dropout_gap(entry: dict[str, Any], emitter: _Emitter, ts: int, cfg: FaultTimes) -> None:
    """A reading after a gap: raise (if the shard check has not already) and clear the dropout."""
    last = entry.get("last")
    ep = entry.get("dropout")
    if ep is None and last is not None and ts - last > cfg.dropout_after_ms:
        ep, status = advance(None, last + cfg.dropout_after_ms, 0, 0, 0, 0)
        if ep is not None and status is not None:
            emitter.emit(
                ep,
                status,
                "fault_dropout",
                "device_fault",
                "warning",
                int(ep["since"]),
                None,
                None,
                None,
                f"no data since {last}",
            )
    if ep is not None:
        ep, status = advance(ep, ts, -1, -1, 0, 0)
        if status is not None and ep is not None:
            emitter.emit(
                ep, status, "fault_dropout", "device_fault", "warning", ts, None, None, None, "data resumed"
            )
        entry["dropout"] = None


def check_dropouts(
    roster: dict[str, dict[str, Any]], now_ms: int, cfg: FaultConfig = FaultConfig()
) -> list[Transition]:
    """Raise a dropout for each device silent for longer than allowed (by its own reporting
    interval), judged against `now_ms`, the newest event time seen on the shard (never wall-clock)."""
    out: list[Transition] = []
    for device_id, entry in sorted(roster.items()):
        last = entry.get("last")
        if entry.get("dropout") is not None or last is None:
            continue
        after = cfg.for_step(entry.get("step_ms")).dropout_after_ms
        if now_ms - last > after:
            ep, status = advance(None, last + after, 0, 0, 0, 0)
            entry["dropout"] = ep
            if ep is not None and status is not None:
                _Emitter(device_id, out).emit(
                    ep,
                    status,
                    "fault_dropout",
                    "device_fault",
                    "warning",
                    int(ep["since"]),
                    None,
                    None,
                    None,
                    f"no data since {last}",
                )
    return out


class PeerIndex(dict[tuple[str, str], list[tuple[str, float, float]]]):
    """(site, channel) -> [(device, moving average, its time)], built once per batch; and, built
    on first use, each group's averages ranked, for the medians of `check_drift`."""

    __slots__ = ("_ranks",)

    def __init__(self) -> None:
        super().__init__()
        self._ranks: dict[tuple[str, str], _Ranks | None] = {}

    def ranks(self, key: tuple[str, str]) -> _Ranks | None:
        """The group's averages, their order by value (stable: ties in group order), each device's
        place in that order, and the group's oldest time; None for a group holding a NaN (a NaN
        has no place in an order)."""
        if key not in self._ranks:
            group = self.get(key, [])
            values = [value for _device, value, _ts in group]
            ranks = None
            if group and all(value == value for value in values):  # noqa: PLR0124 (NaN test)
                order = sorted(range(len(group)), key=values.__getitem__)
                places = {group[i][0]: place for place, i in enumerate(order)}
                ranks = _Ranks(values, order, places, min(ts for _device, _value, ts in group))
            self._ranks[key] = ranks
        return self._ranks[key]


@dataclass(frozen=True, slots=True)
class _Ranks:
    values: list[float]
    order: list[int]  # indexes into values, by value
    places: dict[str, int]  # device -> its place in order
    oldest: float


def _median_without(ranks: _Ranks, place: int | None) -> float:
    """statistics.median of the group's averages but the one at `place` in the order (if any):
    the same middle element(s) of the same sorted list, so the same float."""
    order, values = ranks.order, ranks.values
    n = len(order) - (place is not None)

    def nth(k: int) -> float:
        return values[order[k if place is None or k < place else k + 1]]

    if n % 2 == 1:
        return nth(n // 2)
    i = n // 2
    return (nth(i - 1) + nth(i)) / 2


def peer_index(roster: Mapping[str, dict[str, Any]]) -> PeerIndex:
    """(site, channel) -> [(device, moving average, its time)], built once per batch."""
    index = PeerIndex()
    for device_id, entry in roster.items():
        site = entry.get("site", "unknown")
        for name, (value, ts) in entry.get("ema", {}).items():
            index.setdefault((site, name), []).append((device_id, value, ts))
    return index


def check_drift(
    state: DeviceClassState,
    roster: Mapping[str, dict[str, Any]],
    device_id: str,
    cfg: FaultConfig = FaultConfig(),
    index: Mapping[tuple[str, str], list[tuple[str, float, float]]] | None = None,
) -> list[Transition]:
    """Compare the device's moving averages with the median of its site's fresh peers (`index`:
    `peer_index(roster)`, shared by the batch's devices; built here when not given)."""
    if index is None:
        index = peer_index(roster)
    out: list[Transition] = []
    entry = roster[device_id]
    ts = entry.get("last")
    if ts is None:
        return out
    times = cfg.for_step(entry.get("step_ms"))
    site = entry.get("site", "unknown")
    worst: tuple[str, float, float] | None = None
    holding = False
    for name, (abs_tol, rel_tol) in DRIFT_TOLERANCE.items():
        own = entry.get("ema", {}).get(name)
        if own is None:
            continue
        fresh_from = ts - times.peer_fresh_ms
        ranks = index.ranks((site, name)) if isinstance(index, PeerIndex) else None
        if ranks is not None and ranks.oldest >= fresh_from:  # every peer is fresh (the usual case):
            place = ranks.places.get(device_id)  # the median of the ranked group without this device
            if len(ranks.order) - (place is not None) < cfg.drift_min_peers:
                continue
            median = _median_without(ranks, place)
        else:
            peers = [
                v for other, v, t in index.get((site, name), ()) if other != device_id and t >= fresh_from
            ]
            if len(peers) < cfg.drift_min_peers:
                continue
            median = statistics.median(peers)
        tolerance = max(abs_tol, rel_tol * abs(median))
        deviation = abs(own[0] - median)
        if deviation > tolerance and worst is None:
            worst = (name, own[0], median)
        if deviation > tolerance / 2:
            holding = True
    enter = 0 if worst is not None else -1
    ep, status = advance(
        state.episodes.get("fault_drift"),
        ts,
        enter,
        0 if holding else -1,
        times.drift_min_ms,
        times.drift_clear_ms,
    )
    if ep is not None and worst is not None:
        ep["channel"] = worst[0]
    _store(state.episodes, "fault_drift", ep, status)
    if status is not None and ep is not None:
        detail = (
            f"{worst[0]} average {worst[1]:.3g} vs peer median {worst[2]:.3g}" if worst else "back with peers"
        )
        _Emitter(device_id, out).emit(
            ep,
            status,
            "fault_drift",
            "device_fault",
            "warning",
            ts,
            ep.get("channel"),
            worst[1] if worst else None,
            None,
            detail,
        )
    return out
