"""Classification: every event and fault type raises once and clears once, with literal timings."""

from __future__ import annotations

from typing import Any

import pytest

from airlake.classification import (
    DeviceClassState,
    Transition,
    check_drift,
    check_dropouts,
    classify_readings,
)
from airlake.contract import Reading
from tests.hot.conftest import MIN, T0_MS


def run(
    series: list[tuple[int, dict[str, float]]],
    state: DeviceClassState | None = None,
    entry: dict[str, Any] | None = None,
) -> list[tuple[str, str, str, int]]:
    """Feed (minute, channels) readings one batch per reading; return (type, status, severity, minute)."""
    state = state if state is not None else DeviceClassState()
    entry = entry if entry is not None else {}
    out: list[Transition] = []
    for seq, (minute, channels) in enumerate(series):
        out += classify_readings(
            state, entry, "d1", [Reading("d1", T0_MS + minute * MIN, seq, channels)]
        ).transitions
    return [(t.event_type, t.status, t.severity, (t.at_ms - T0_MS) // MIN) for t in out]  # fmt: skip


def test_co2_raises_after_min_duration_escalates_deescalates_with_hysteresis_and_clears_once() -> None:
    """
    ppm   2100 |                ####
          1200 |      ##########    ....           (950: below 1000 but above the 900 exit)
           600 |######                  ....  800
    minute      0    5    10   16   21  25   30
    """
    values = [600] * 5 + [1200] * 11 + [2100] * 5 + [950] * 4 + [800] * 10
    transitions = run([(m, {"co2": float(v)}) for m, v in enumerate(values)])
    assert transitions == [
        ("co2_high", "raised", "warning", 10),  # above 1000 since minute 5, for 5 minutes
        ("co2_high", "updated", "critical", 16),
        ("co2_high", "updated", "warning", 21),  # below 2000 and below the 1800 exit
        ("co2_high", "cleared", "warning", 30),  # below 900 since minute 25, for 5 minutes
    ]


@pytest.mark.parametrize(
    ("channel", "normal", "high", "event_type", "severity"),
    [
        ("pm25", 5.0, 40.0, "pm25_high", "warning"),
        ("voc", 100.0, 500.0, "voc_high", "warning"),
        ("co", 1.0, 12.0, "co_high", "warning"),
        ("no2", 20.0, 250.0, "no2_high", "warning"),
    ],
)
def test_each_air_quality_event_raises_and_clears_once(
    channel: str, normal: float, high: float, event_type: str, severity: str
) -> None:
    # Given normal air, 10 minutes above the band, then normal air again
    values = [normal] * 3 + [high] * 10 + [normal] * 8
    # Then exactly one raise (after the 5-minute minimum) and one clear (after 5 minutes below the exit)
    assert run([(m, {channel: v}) for m, v in enumerate(values)]) == [
        (event_type, "raised", severity, 8),
        (event_type, "cleared", severity, 18),
    ]


def test_flatline_raises_after_30_minutes_of_the_same_value_and_clears_when_it_moves() -> None:
    series = [(m, {"temperature": 21.0}) for m in range(41)] + [(41, {"temperature": 21.4})]
    assert run(series) == [
        ("fault_flatline", "raised", "warning", 30),
        ("fault_flatline", "cleared", "warning", 41),
    ]


def test_spike_is_judged_when_the_value_comes_back_and_clears_after_ten_quiet_minutes() -> None:
    values = [600, 610, 1500, 605] + [600 + m % 3 for m in range(12)]
    assert run([(m, {"co2": float(v)}) for m, v in enumerate(values)]) == [
        ("fault_spike", "raised", "info", 3),
        ("fault_spike", "cleared", "info", 14),
    ]


def test_out_of_range_saturation_raises_after_two_minutes_and_clears_after_five() -> None:
    values = [50.0] * 5 + [100.0] * 6 + [50.5, 51.0, 50.0, 50.5, 51.0, 50.0, 50.5]  # RH pinned at 100 %
    assert run([(m, {"humidity": v}) for m, v in enumerate(values)]) == [
        ("fault_out_of_range", "raised", "warning", 7),
        ("fault_out_of_range", "cleared", "warning", 16),
    ]


def test_dropout_seen_on_the_next_reading_raises_and_clears_once() -> None:
    # Given readings every minute to minute 5, then nothing until minute 20
    series = [(m, {"temperature": 20.0 + m / 10}) for m in [0, 1, 2, 3, 4, 5, 20, 21]]
    # Then the dropout starts 5 minutes after the last reading and clears when data resumes
    assert run(series) == [
        ("fault_dropout", "raised", "warning", 10),
        ("fault_dropout", "cleared", "warning", 20),
    ]


def test_dropout_of_a_silent_device_is_raised_from_the_shard_clock_and_cleared_once_on_return() -> None:
    # Given d1 last seen at minute 5 and another device on the shard now at minute 12
    roster = {"d1": {"last": T0_MS + 5 * MIN}, "d2": {"last": T0_MS + 12 * MIN}}
    # When the shard's newest event time is minute 12 (twice: redelivery or the next batch)
    first = check_dropouts(roster, T0_MS + 12 * MIN)
    second = check_dropouts(roster, T0_MS + 13 * MIN)
    # Then one raise, at minute 10, and none again
    assert [(t.device_id, t.status, (t.at_ms - T0_MS) // MIN) for t in first] == [("d1", "raised", 10)]
    assert second == []
    # And when d1 reports again at minute 20, the dropout clears (no second raise)
    state = DeviceClassState()
    assert run([(20, {"temperature": 20.0})], state, roster["d1"]) == [
        ("fault_dropout", "cleared", "warning", 20)
    ]


def test_drift_from_the_site_median_raises_after_30_minutes_and_clears_after_30_back() -> None:
    # Given three fresh peers at site s1 with co averages 1.0, 1.2, 1.1 and d1 at 5.0 (tolerance 1.0)
    def roster(minute: int, own: float) -> dict[str, dict[str, Any]]:
        ts = T0_MS + minute * MIN
        peers = {
            f"p{i}": {"site": "s1", "last": ts, "ema": {"co": [v, ts]}} for i, v in enumerate([1.0, 1.2, 1.1])
        }
        return {**peers, "d1": {"site": "s1", "last": ts, "ema": {"co": [own, ts]}}}

    state = DeviceClassState()
    seen = []
    for minute, own in [(0, 5.0), (10, 5.0), (30, 5.0), (40, 1.2), (60, 1.1), (70, 1.1)]:
        seen += [(t.event_type, t.status, t.channel, (t.at_ms - T0_MS) // MIN)
                 for t in check_drift(state, roster(minute, own), "d1")]  # fmt: skip
    assert seen == [("fault_drift", "raised", "co", 30), ("fault_drift", "cleared", "co", 70)]


def test_redelivered_and_out_of_order_readings_produce_no_transition() -> None:
    # Given a device whose CO2 episode was raised
    state, entry = DeviceClassState(), dict[str, Any]()
    batch = [Reading("d1", T0_MS + m * MIN, m, {"co2": 1500.0}) for m in range(7)]
    assert [t.status for t in classify_readings(state, entry, "d1", batch).transitions] == ["raised"]
    # When the same batch is delivered again
    again = classify_readings(state, entry, "d1", batch)
    # Then nothing is applied and nothing transitions
    assert (again.applied, again.skipped, again.transitions) == (0, 7, [])
