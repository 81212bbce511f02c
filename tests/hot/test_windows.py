"""Event-time windows: boundaries, lateness, watermark and idempotency, with literal outputs."""

from __future__ import annotations

from typing import Any

import pytest

from airlake.contract import Reading
from airlake.windows import DeviceWindows, WindowConfig, WindowSpec, apply_readings, window_channels
from tests.hot.conftest import MIN, T0_MS

CONFIG = WindowConfig()  # panes 5 min, lateness 2 min, nominal step 60 s


def r(offset_ms: int, seq: int, co2: float, device: str = "d1") -> Reading:
    return Reading(device, T0_MS + offset_ms, seq, {"co2": co2})


def summary(emitted: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["window"], (e["start_ms"] - T0_MS) // MIN, (e["end_ms"] - T0_MS) // MIN, channel, c["count"],
         c["mean"], c["min"], c["max"], c["completeness"])
        for e in emitted
        for channel, c in window_channels(e).items()
    ]  # fmt: skip


def test_pane_boundary_inclusive_start_exclusive_end_and_watermark_close() -> None:
    """
    12:00      12:05      12:10          (T0 = 12:00 UTC)
      |  p0      |  p1      |
      x x      x x   x                    readings at 0, 1, 4:59.999 | 5:00.000, 7:00
      watermark after batch 1 = 5:00 - 2:00 = 3:00  -> nothing closes
      watermark after batch 2 = 7:00 - 2:00 = 5:00  -> p0 closes (its end 5:00 <= 5:00)
    """
    # Given a device with three readings in [12:00, 12:05) and one exactly at 12:05:00.000
    state = DeviceWindows("d1")
    first = apply_readings(
        state, [r(0, 1, 400), r(MIN, 2, 410), r(5 * MIN - 1, 3, 420), r(5 * MIN, 4, 500)], CONFIG
    )
    # Then nothing is emitted yet: the watermark (12:03) has not reached 12:05
    assert (first.accepted, first.emitted, first.late) == (4, [], [])
    # When a reading at 12:07 moves the watermark to 12:05
    second = apply_readings(state, [r(7 * MIN, 5, 600)], CONFIG)
    # Then [12:00, 12:05) closes without the 12:05:00.000 reading, and the sliding hour ending 12:05
    assert summary(second.emitted) == [
        ("tumbling_5m", 0, 5, "co2", 3, 410.0, 400, 420, 0.6),
        ("sliding_1h_5m", -55, 5, "co2", 3, 410.0, 400, 420, 0.05),
    ]


def test_out_of_order_within_lateness_updates_its_window_and_too_late_is_routed() -> None:
    # Given panes p0 closed and p1 [12:05, 12:10) open, watermark 12:05
    state = DeviceWindows("d1")
    apply_readings(state, [r(0, 1, 400), r(6 * MIN, 3, 500), r(7 * MIN, 4, 600)], CONFIG)
    # When an out-of-order reading for p1 (12:05:30) and a too-late one for closed p0 (12:02) arrive
    result = apply_readings(state, [r(5 * MIN + 30_000, 2, 800), r(2 * MIN, 9, 999)], CONFIG)
    # Then the first is accepted, the second is late and routed (not aggregated)
    assert result.accepted == 1
    assert [(x.ts_ms - T0_MS, x.seq) for x in result.late] == [(2 * MIN, 9)]
    # And p1, once closed by a reading at 12:12, holds the out-of-order value
    closing = apply_readings(state, [r(12 * MIN, 10, 700)], CONFIG)
    assert summary(closing.emitted)[0] == ("tumbling_5m", 5, 10, "co2", 3, 1900 / 3, 500, 800, 0.6)


def test_redelivered_readings_change_nothing_including_late_ones() -> None:
    # Given a batch that closes a window and includes a too-late reading
    state = DeviceWindows("d1")
    apply_readings(state, [r(0, 1, 400), r(MIN, 2, 410)], CONFIG)
    batch = [r(9 * MIN, 3, 500), r(30_000, 4, 405)]  # 12:00:30 is still on time: p0 closes after the batch
    result = apply_readings(state, batch, CONFIG)
    assert result.accepted == 2 and len(result.emitted) == 2
    late_batch = [r(45_000, 5, 407)]  # p0 is closed now
    assert len(apply_readings(state, late_batch, CONFIG).late) == 1
    snapshot = state.to_doc()
    # When both batches are delivered again
    again = apply_readings(state, batch + late_batch, CONFIG)
    # Then they are all duplicates: nothing accepted, emitted or routed as late, state unchanged
    assert (again.accepted, again.duplicates, again.emitted, again.late) == (0, 3, [], [])
    assert state.to_doc() == snapshot


def test_hour_tumbling_window_is_complete_with_a_reading_every_minute() -> None:
    # Given one reading a minute from 12:00 to 13:02 (63 readings, value = minute index)
    state = DeviceWindows("d1")
    result = apply_readings(state, [r(i * MIN, i, float(i)) for i in range(63)], CONFIG)
    # Then the watermark 13:00 closes every pane up to 13:00 and the hour [12:00, 13:00) is complete
    hourly = [e for e in summary(result.emitted) if e[0] == "tumbling_1h"]
    assert hourly == [("tumbling_1h", 0, 60, "co2", 60, 29.5, 0.0, 59.0, 1.0)]
    sliding_ends = [e[2] for e in summary(result.emitted) if e[0] == "sliding_1h_5m"]
    assert sliding_ends == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
    # And the EMA followed the in-order readings (time-aware, tau 15 min)
    assert state.ema["co2"][1] == T0_MS + 62 * MIN
    assert 45.0 < state.ema["co2"][0] < 62.0


def test_long_silence_does_not_emit_empty_windows_and_state_roundtrips() -> None:
    # Given a reading at 12:00 and the next one two days later
    state = DeviceWindows("d1")
    apply_readings(state, [r(0, 1, 400)], CONFIG)
    result = apply_readings(
        DeviceWindows.from_doc("d1", state.to_doc()), [r(2 * 24 * 60 * MIN, 2, 450)], CONFIG
    )
    # Then only windows holding the 12:00 reading are emitted (1 tumbling_5m, 1 tumbling_1h, 12 sliding)
    kinds = [e["window"] for e in result.emitted]
    assert (kinds.count("tumbling_5m"), kinds.count("tumbling_1h"), kinds.count("sliding_1h_5m")) == (
        1,
        1,
        12,
    )


def test_config_rejects_windows_that_are_not_whole_panes() -> None:
    with pytest.raises(ValueError, match="multiples of the pane"):
        WindowConfig(specs=(WindowSpec("odd", 7 * MIN, 7 * MIN),))


def test_a_new_device_accepts_a_reading_within_lateness_before_its_first_one() -> None:
    # Given a device first seen at 12:00:30 (watermark 11:58:30)
    state = DeviceWindows("d1")
    apply_readings(state, [r(30_000, 2, 410)], CONFIG)
    # When a reading from 11:59:00 arrives (1.5 min older: within the 2-min allowed lateness)
    result = apply_readings(state, [r(-MIN, 1, 390)], CONFIG)
    # Then it is accepted into [11:55, 12:00), and emitted when the watermark passes 12:00
    assert (result.accepted, result.late) == (1, [])
    closing = apply_readings(state, [r(3 * MIN, 3, 420)], CONFIG)
    assert summary(closing.emitted) == [
        ("tumbling_5m", -5, 0, "co2", 1, 390.0, 390, 390, 0.2),
        ("tumbling_1h", -60, 0, "co2", 1, 390.0, 390, 390, 1 / 60),  # 12:00 also ends an hour
        ("sliding_1h_5m", -60, 0, "co2", 1, 390.0, 390, 390, 1 / 60),
    ]
