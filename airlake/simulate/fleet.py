"""A fleet of simulated indoor air-quality monitors, built from the vendored UCI year.

How a reading is made (all deterministic from the seed):

* Devices are grouped into sites (`devices_per_site`). Every site replays its own slice of the
  UCI year (hourly, 2004-03-10 .. 2005-04-04) from a random offset, shifted onto the simulated
  calendar that starts at `start`. Devices of one site share that environment, so peers agree.
* The hourly source is resampled to `step_s` by linear interpolation between the hourly means
  (interpolation adds no information: sub-hourly variation is only the noise below). Gaps of up
  to 3 hours are interpolated; longer gaps (hours when the UCI device itself was offline) are
  hours when our device sends nothing, labelled as `dropout` with source `source_gap`.
* Each device has its own gain and offset on the raw metal-oxide channels, a slow linear drift,
  small offsets on temperature/humidity, AR(1) sensor noise, and a constant clock offset.
* Indoor channels the UCI data lacks are modelled: `co2` from a per-site occupancy schedule,
  `pm25` from an outdoor proxy (the NOx reference), `voc` from off-gassing that grows with the
  temperature of the previous hour.
* Every fifth device (by default) is co-located with a reference analyser and also sends
  `ref_co`, `ref_nox`, `ref_no2`, `ref_c6h6` (the UCI ground truth) when those exist.
* Injected device faults (stuck, flatline, spike, dropout, saturation, drift) and indoor events
  (cooking, smoke, cleaning, occupancy) change the readings and are written as ground truth.
* Firmware 1.4.2 -> 1.5.0 is rolled out in a staggered window; some upgrades fail and revert.
  1.4.x stamps `ts` as ISO-8601 UTC, 1.5.x as epoch milliseconds (both are in the contract).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from airlake.contract.decoder import iso_from_ms

if TYPE_CHECKING:
    import pandas as pd

MS_PER_S: Final = 1000
DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
FIRMWARE_OLD: Final = "1.4.2"
FIRMWARE_NEW: Final = "1.5.0"
DEVICE_MODEL: Final = "AQM-3"
MOX_CHANNELS: Final = ("mox_co", "mox_nmhc", "mox_nox", "mox_no2", "mox_o3")
REF_CHANNELS: Final = ("ref_co", "ref_nox", "ref_no2", "ref_c6h6")
CHANNEL_DECIMALS: Final = {"abs_humidity": 4, "co2": 1, "pm25": 2, "voc": 1, "temperature": 2, "humidity": 2}
# Where sensors saturate (data sheets of common low-cost parts); saturation faults pin here.
SENSOR_LIMITS: Final = {"pm25": 1000.0, "co2": 5000.0, "voc": 30000.0}

FAULT_TYPES: Final = ("stuck", "flatline", "spike", "dropout", "saturation", "drift")
EVENT_TYPES: Final = ("cooking", "smoke", "cleaning", "occupancy")


@dataclass(frozen=True, slots=True)
class FleetConfig:
    devices: int = 20
    days: float = 60.0
    step_s: int = 300
    start: datetime = datetime(2026, 9, 1, tzinfo=UTC)
    seed: int = 0
    faults: bool = True
    events: bool = True
    devices_per_site: int = 4
    reference_every: int = 5
    faults_per_device: float = 1.5  # mean number of injected faults per device over the period
    events_per_device_day: float = 0.6  # mean indoor events per device per day

    def __post_init__(self) -> None:
        if self.devices < 1 or self.days <= 0 or self.step_s < 1:
            raise ValueError("devices >= 1, days > 0 and step_s >= 1 are required")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * MS_PER_S)

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.days * DAY_MS)

    @property
    def steps(self) -> int:
        return int(self.days * 86_400 // self.step_s)


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth: something injected into one device's data over [start_ms, end_ms)."""

    device_id: str
    kind: str  # "fault" | "event"
    type: str
    channel: str | None
    start_ms: int
    end_ms: int
    source: str = "injected"
    magnitude: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "kind": self.kind,
            "type": self.type,
            "channel": self.channel,
            "start": iso_from_ms(self.start_ms),
            "end": iso_from_ms(self.end_ms),
            "source": self.source,
        }


@dataclass(slots=True)
class Device:
    device_id: str
    site: str
    index: int
    reference: bool
    source_offset_h: int
    clock_offset_ms: int
    gain: dict[str, float]
    offset: dict[str, float]
    drift_per_day: dict[str, float]
    co2_amplitude: float
    offgas: float
    upgrade_ms: int | None
    upgrade_fails: bool
    labels: list[Label] = field(default_factory=list)

    def firmware_at(self, ts_ms: np.ndarray) -> np.ndarray:
        """Firmware per sample: new after the upgrade, back to old for a failed one after 4 h."""
        new = np.zeros(ts_ms.shape, dtype=bool)
        if self.upgrade_ms is not None:
            new = ts_ms >= self.upgrade_ms
            if self.upgrade_fails:
                new &= ts_ms < self.upgrade_ms + 4 * HOUR_MS
        return new

    def manifest(self, config: FleetConfig) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "site": self.site,
            "model": DEVICE_MODEL,
            "installed": config.start.date().isoformat(),
            "reference": self.reference,
            "report_interval_s": config.step_s,
        }


class Fleet:
    """The fleet: devices, their schedules of faults/events, and a time-ordered reading stream."""

    def __init__(self, config: FleetConfig, source: pd.DataFrame | None = None) -> None:
        from airlake.uci import load_uci_channels

        self.config = config
        self._rng = np.random.default_rng(config.seed)
        frame = load_uci_channels() if source is None else source
        # Interpolate gaps up to 3 h; longer gaps stay NaN (the device was offline).
        self._source = frame.interpolate(limit=3, limit_area="inside")
        self._hours = len(self._source)
        self._values = {name: self._source[name].to_numpy(dtype=float) for name in self._source.columns}
        self._stuck_at: dict[Label, float] = {}  # the value a stuck sensor keeps repeating
        self.devices = [self._make_device(i) for i in range(config.devices)]
        for device in self.devices:
            self._schedule(device)

    # -- set-up ---------------------------------------------------------------------------------

    def _make_device(self, index: int) -> Device:
        rng, cfg = self._rng, self.config
        site_index = index // cfg.devices_per_site
        site_rng = np.random.default_rng([cfg.seed, 7919, site_index])
        span_h = int(cfg.days * 24) + 2
        source_offset = int(site_rng.integers(0, max(1, self._hours - span_h)))
        upgrade_window_start = cfg.start_ms + int(0.45 * cfg.days * DAY_MS)
        upgrade_ms = upgrade_window_start + int(rng.uniform(0, min(7, cfg.days * 0.2)) * DAY_MS)
        return Device(
            device_id=f"aq-{index:04d}",
            site=f"site-{site_index:02d}",
            index=index,
            reference=index % cfg.reference_every == 0,
            source_offset_h=source_offset,
            clock_offset_ms=int(rng.integers(-45_000, 45_000)),
            gain={ch: float(rng.normal(1.0, 0.08)) for ch in MOX_CHANNELS},
            offset={ch: float(rng.normal(0.0, 30.0)) for ch in MOX_CHANNELS},
            drift_per_day={ch: float(rng.normal(0.0, 0.0015)) for ch in MOX_CHANNELS},
            co2_amplitude=float(rng.uniform(250, 550)),
            offgas=float(rng.uniform(40, 160)),
            upgrade_ms=upgrade_ms if rng.random() < 0.9 else None,
            upgrade_fails=bool(rng.random() < 0.15),
        )

    def _schedule(self, device: Device) -> None:
        rng, cfg = self._rng, self.config
        start, end = cfg.start_ms, cfg.end_ms
        # Source gaps: UCI hours with no sensor data are hours our device is offline.
        mox = self._values["mox_co"]
        hours = np.arange(int(cfg.days * 24) + 1) + device.source_offset_h
        offline = np.isnan(mox[np.clip(hours, 0, self._hours - 1)])
        for run_start, run_end in _runs(offline):
            device.labels.append(
                Label(
                    device.device_id,
                    "fault",
                    "dropout",
                    None,
                    start + run_start * HOUR_MS,
                    min(end, start + run_end * HOUR_MS),
                    "source_gap",
                )
            )
        if cfg.faults:
            for _ in range(int(rng.poisson(cfg.faults_per_device))):
                device.labels.append(self._random_fault(device, rng))
        if cfg.events:
            count = int(rng.poisson(cfg.events_per_device_day * cfg.days))
            for _ in range(count):
                device.labels.append(self._random_event(device, rng))
        device.labels.sort(key=lambda label: label.start_ms)

    def _random_fault(self, device: Device, rng: np.random.Generator) -> Label:
        cfg = self.config
        kind = str(rng.choice(FAULT_TYPES))
        begin = cfg.start_ms + int(rng.uniform(0.05, 0.9) * cfg.days * DAY_MS)
        begin -= begin % (cfg.step_s * MS_PER_S)
        if kind == "spike":  # one sample far off, then back: an isolated spike
            length, channel = cfg.step_s * MS_PER_S, str(rng.choice(["pm25", "mox_co", "voc"]))
        elif kind == "drift":
            length, channel = cfg.end_ms - begin, str(rng.choice(MOX_CHANNELS))
        elif kind == "saturation":
            length, channel = int(rng.uniform(1, 4) * HOUR_MS), str(rng.choice(["pm25", "co2"]))
        elif kind == "dropout":
            length, channel = int(rng.uniform(2, 12) * HOUR_MS), None
        else:
            length, channel = int(rng.uniform(2, 8) * HOUR_MS), str(rng.choice(["co2", "mox_co", "pm25"]))
        magnitude = float(rng.uniform(4, 8)) if kind == "spike" else float(rng.uniform(0.01, 0.02))
        return Label(
            device.device_id,
            "fault",
            kind,
            channel,
            begin,
            min(cfg.end_ms, begin + length),
            magnitude=magnitude,
        )

    def _random_event(self, device: Device, rng: np.random.Generator) -> Label:
        cfg = self.config
        kind = str(rng.choice(EVENT_TYPES, p=[0.4, 0.08, 0.22, 0.3]))
        minutes = {"cooking": (30, 90), "smoke": (20, 60), "cleaning": (15, 45), "occupancy": (120, 300)}[
            kind
        ]
        begin = cfg.start_ms + int(rng.uniform(0, cfg.days) * DAY_MS)
        begin -= begin % (cfg.step_s * MS_PER_S)
        length = int(rng.uniform(*minutes) * 60_000)
        return Label(
            device.device_id,
            "event",
            kind,
            None,
            begin,
            min(cfg.end_ms, begin + length),
            magnitude=float(rng.uniform(0.0, 1.0)),
        )

    # -- generation -----------------------------------------------------------------------------

    @property
    def labels(self) -> list[Label]:
        return sorted(
            (lb for d in self.devices for lb in d.labels), key=lambda lb: (lb.start_ms, lb.device_id)
        )

    def readings(self, chunk_days: float = 1.0) -> Iterator[dict[str, Any]]:
        """Every reading of the fleet in event-time order, generated a chunk at a time."""
        cfg = self.config
        step_ms = cfg.step_s * MS_PER_S
        chunk_steps = max(1, int(chunk_days * DAY_MS // step_ms))
        for first in range(0, cfg.steps, chunk_steps):
            steps = np.arange(first, min(cfg.steps, first + chunk_steps))
            batch: list[tuple[int, int, dict[str, Any]]] = []
            for device in self.devices:
                batch.extend(self._device_chunk(device, steps))
            batch.sort(key=lambda item: (item[0], item[1]))
            for _, _, reading in batch:
                yield reading

    def _device_chunk(self, device: Device, steps: np.ndarray) -> list[tuple[int, int, dict[str, Any]]]:
        cfg = self.config
        step_ms = cfg.step_s * MS_PER_S
        true_ms = cfg.start_ms + steps * step_ms
        hours = (true_ms - cfg.start_ms) / HOUR_MS + device.source_offset_h
        rng = np.random.default_rng([cfg.seed, device.index, int(steps[0])])
        days = (true_ms - cfg.start_ms) / DAY_MS
        channels: dict[str, np.ndarray] = {}
        for name in MOX_CHANNELS:
            base = _interp(self._values[name], hours)
            drift = 1.0 + device.drift_per_day[name] * days
            channels[name] = (
                base * device.gain[name] * drift + device.offset[name] + rng.normal(0, 6, len(steps))
            )
        temperature = _interp(self._values["temperature"], hours) + rng.normal(0, 0.15, len(steps))
        channels["temperature"] = temperature + (device.index % 3 - 1) * 0.3
        channels["humidity"] = np.clip(
            _interp(self._values["humidity"], hours) + rng.normal(0, 0.6, len(steps)), 0, 100
        )
        channels["abs_humidity"] = _interp(self._values["abs_humidity"], hours)
        nox = _interp(self._values["ref_nox"], hours)
        nox = np.where(np.isnan(nox), 150.0, nox)
        # Indoor PM2.5: a few ug/m3 plus what infiltrates from outdoors (NOx as the traffic proxy).
        channels["pm25"] = np.clip(3.0 + 0.008 * nox + rng.gamma(2.0, 0.6, len(steps)), 0, None)
        lagged_t = _interp(self._values["temperature"], hours - 1.0)
        channels["voc"] = np.clip(
            80
            + device.offgas * np.exp(0.06 * (np.nan_to_num(lagged_t, nan=18.0) - 20))
            + rng.normal(0, 8, len(steps)),
            0,
            None,
        )
        channels["co2"] = (
            420 + device.co2_amplitude * _occupancy(true_ms, device.index) + rng.normal(0, 12, len(steps))
        )
        if device.reference:
            for name in REF_CHANNELS:
                channels[name] = _interp(self._values[name], hours)
        offline = np.isnan(channels["mox_co"])
        for label in device.labels:
            offline |= _apply(label, true_ms, channels, self._stuck_at)
        firmware_new = device.firmware_at(true_ms)
        device_ms = true_ms + device.clock_offset_ms
        names = list(channels)
        rounded = {name: np.round(channels[name], CHANNEL_DECIMALS.get(name, 1)) for name in names}
        columns = [rounded[name].tolist() for name in names]
        out: list[tuple[int, int, dict[str, Any]]] = []
        for i, step in enumerate(steps.tolist()):
            if offline[i]:
                continue
            values = {
                name: col[i] for name, col in zip(names, columns, strict=True) if not math.isnan(col[i])
            }
            ts_ms = int(device_ms[i])
            new = bool(firmware_new[i])
            out.append(
                (
                    ts_ms,
                    device.index,
                    {
                        "device_id": device.device_id,
                        "ts": ts_ms if new else iso_from_ms(ts_ms),
                        "seq": step,
                        "firmware": FIRMWARE_NEW if new else FIRMWARE_OLD,
                        "model": DEVICE_MODEL,
                        "channels": values,
                    },
                )
            )
        return out


def _interp(values: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Linear interpolation of an hourly series at fractional hours; NaN stays NaN."""
    idx = np.clip(hours, 0, len(values) - 1.000001)
    low = np.floor(idx).astype(int)
    frac = idx - low
    result: np.ndarray = values[low] * (1 - frac) + values[low + 1] * frac
    return result


def _occupancy(ts_ms: np.ndarray, device_index: int) -> np.ndarray:
    """Share of the room occupied: offices weekdays 08-18 (even sites), homes evenings and nights."""
    hour = (ts_ms % DAY_MS) / HOUR_MS
    weekday = ((ts_ms // DAY_MS) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    if (device_index // 4) % 2 == 0:
        occupied = (weekday < 5) & (hour >= 8) & (hour < 18)
        ramp = np.clip((hour - 8) / 3, 0, 1)
    else:
        occupied = (hour >= 18) | (hour < 7)
        ramp = np.clip(((hour - 18) % 24) / 4, 0, 1)
    return np.where(occupied, ramp, 0.0)


def _bump(ts_ms: np.ndarray, label: Label) -> np.ndarray:
    """Event shape: rises over the first quarter, plateaus, decays over the last third."""
    length = max(1, label.end_ms - label.start_ms)
    pos = (ts_ms - label.start_ms) / length
    inside = (pos >= 0) & (pos < 1)
    shape = np.minimum(np.clip(pos / 0.25, 0, 1), np.clip((1 - pos) / 0.33, 0, 1))
    return np.where(inside, shape, 0.0)


def _apply(
    label: Label, ts_ms: np.ndarray, ch: dict[str, np.ndarray], stuck_at: dict[Label, float]
) -> np.ndarray:
    """Inject one label into a chunk's channels in place; return the samples it takes offline."""
    active = (ts_ms >= label.start_ms) & (ts_ms < label.end_ms)
    none = np.zeros(ts_ms.shape, dtype=bool)
    if not active.any():
        return none
    m = label.magnitude
    if label.kind == "event":
        shape = _bump(ts_ms, label)
        if label.type == "cooking":
            ch["pm25"] += shape * (40 + 210 * m)
            ch["voc"] += shape * (300 + 1200 * m)
            ch["co2"] += shape * (100 + 200 * m)
            ch["temperature"] += shape * (0.5 + 1.5 * m)
        elif label.type == "smoke":
            ch["pm25"] += shape * (300 + 600 * m)
            ch["voc"] += shape * (500 + 1500 * m)
            ch["mox_co"] += shape * (250 + 350 * m)
        elif label.type == "cleaning":
            ch["voc"] += shape * (1500 + 4500 * m)
            ch["pm25"] += shape * (5 + 15 * m)
        else:  # occupancy build-up: CO2 climbs while the room is full, then decays
            ch["co2"] += shape * (900 + 900 * m)
            ch["humidity"] = np.clip(ch["humidity"] + shape * (3 + 5 * m), 0, 100)
            ch["temperature"] += shape * (0.5 + 1.0 * m)
        return none
    if label.type == "dropout":
        return active
    name = label.channel
    assert name is not None
    values = ch[name]
    if label.type == "stuck":
        first = int(np.argmax(active))
        values[active] = stuck_at.setdefault(label, float(values[first]))
    elif label.type == "flatline":
        values[active] = 0.0
    elif label.type == "saturation":
        values[active] = SENSOR_LIMITS[name]
    elif label.type == "spike":
        values[active] = np.minimum(values[active] * m + 50, SENSOR_LIMITS.get(name, 60_000.0))
    elif label.type == "drift":
        days = (ts_ms - label.start_ms) / DAY_MS
        values[active] = values[active] * (1 + m * days[active])
    return none


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is true."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, flag in enumerate(mask.tolist()):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


def encode(reading: dict[str, Any]) -> bytes:
    return orjson.dumps(reading)


def start_from_text(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
