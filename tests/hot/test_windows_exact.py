"""The batched window arithmetic equals the plain one-reading-at-a-time definition, bit for bit.

Panes summarise their readings lazily and the EMAs run channel by channel (for speed); these
properties compare them with the straightforward definition on arbitrary readings: floats and
integers, negative zero, channels missing from some readings, repeated and equal timestamps.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airlake.windows import Pane, _update_ema

VALUES = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(-1000, 1000), st.just(-0.0)
)
ROWS = st.lists(
    st.dictionaries(st.sampled_from(["co2", "pm25", "t", "x"]), VALUES, min_size=1, max_size=4),
    min_size=1,
    max_size=25,
)


def naive_stats(stats: dict[str, list[Any]], rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out = {k: list(v) for k, v in stats.items()}
    for channels in rows:
        for name, value in channels.items():
            entry = out.get(name)
            if entry is None:
                out[name] = [1.0, value, value, value]
            else:
                entry[0] += 1.0
                entry[1] += value
                entry[2] = min(entry[2], value)
                entry[3] = max(entry[3], value)
    return out


def same(a: object, b: object) -> bool:
    """Equal, of the same type, and the same sign of zero."""
    return repr(a) == repr(b)


@settings(max_examples=150, deadline=None)
@given(first=ROWS, second=ROWS)
def test_lazy_pane_summary_equals_adding_readings_one_at_a_time(
    first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    # Given a pane summarised after a first batch (as when its state is saved), then a second one
    pane = Pane(0)
    for channels in first:
        pane.add(channels)
    assert same(pane.summary(), naive_stats({}, first))
    for channels in second:
        pane.add(channels)
    # Then its summary equals the reading-by-reading fold over both
    assert same(pane.summary(), naive_stats({}, first + second))


def naive_ema(ema: dict[str, list[float]], times: list[int], rows: list[dict[str, Any]], tau: float) -> None:
    for ts, channels in zip(times, rows, strict=True):
        for name, value in channels.items():
            entry = ema.get(name)
            if entry is None:
                ema[name] = [float(value), float(ts)]
            elif ts > entry[1]:
                entry[0] += (1.0 - math.exp(-(ts - entry[1]) / tau)) * (value - entry[0])
                entry[1] = float(ts)


@settings(max_examples=150, deadline=None)
@given(
    rows=ROWS,
    gaps=st.lists(st.sampled_from([0, 1_000, 60_000, 60_000, 900_000]), min_size=25, max_size=25),
    start=st.sampled_from([None, 0.0, 120_000.0]),
)
def test_channel_by_channel_ema_equals_the_reading_by_reading_definition(
    rows: list[dict[str, Any]], gaps: list[int], start: float | None
) -> None:
    # Given readings in event-time order (some at equal times) and an average that may exist already
    times = [60_000 + sum(gaps[: i + 1]) for i in range(len(rows))]
    existing = {} if start is None else {"co2": [500.0, start], "t": [-0.0, start]}
    expected = {k: list(v) for k, v in existing.items()}
    naive_ema(expected, times, rows, 900_000.0)
    # When the batched update runs
    got = {k: list(v) for k, v in existing.items()}
    _update_ema(got, times, rows, 900_000.0)
    # Then every channel's value and time are identical
    assert same(got, expected)
