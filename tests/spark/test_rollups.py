"""Rollups: values per device, channel and period, completeness, calibration residuals."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from airlake.batch.decode import WIDE_CHANNEL_NAMES as WIDE
from airlake.batch.decode import fits_column
from airlake.batch.readings import READINGS_SCHEMA
from airlake.batch.rollups import ROLLUP_COLUMNS, rollup
from tests.spark.conftest import spark_utc

pytestmark = pytest.mark.spark

H10 = 1710064800000  # 2024-03-10T10:00:00Z
MIN = 60_000


@pytest.fixture(scope="module")
def readings(spark: SparkSession) -> DataFrame:
    # Given device d1 sampling every 10 minutes with the 10:30 sample missing, a reference CO
    # analyser on the first two samples, calibrated CO on the first three;
    # and device d2 with one sample only.
    #   10:00  10:10  10:20  (10:30)  10:40  10:50
    #     x      x      x      -        x      x
    rows = [
        ("d1", H10, {"temperature": 20.0, "ref_co": 1.0}, 1.5),
        ("d1", H10 + 10 * MIN, {"temperature": 21.0, "ref_co": 2.0}, 1.0),
        ("d1", H10 + 20 * MIN, {"temperature": 22.0}, 2.0),
        ("d1", H10 + 40 * MIN, {"temperature": 23.0}, None),
        ("d1", H10 + 50 * MIN, {"temperature": 24.0}, None),
        # radon has no column; 10.125 is finer than temperature's 2 decimals: both are in the map
        ("d2", H10 + 5 * MIN, {"temperature": 10.125, "radon": 40.0}, None),
    ]
    # As the raw -> curated job stores them: a value that fits its column's decimal type goes there
    split = [
        (
            d,
            t,
            {k: v for k, v in c.items() if k in WIDE and fits_column(k, v)},
            {k: v for k, v in c.items() if k not in WIDE or not fits_column(k, v)},
            co,
        )
        for d, t, c, co in rows
    ]
    frame = spark.createDataFrame(
        split,
        "device_id string, ts_ms bigint, wide map<string,double>, other_channels map<string,double>, co double",
    )
    return frame.selectExpr(
        "device_id",
        "timestamp_millis(ts_ms) AS ts",
        "ts_ms",
        *(
            f"CAST(wide['{name}'] AS {READINGS_SCHEMA[name].dataType.simpleString()}) AS {name}"
            for name in WIDE
        ),
        "other_channels",
        *(
            f"CAST({'co' if name == 'co' else 'NULL'} AS {READINGS_SCHEMA[name].dataType.simpleString()}) AS {name}"
            for name in ("co", "nox", "no2")
        ),
    )


def collect(frame: DataFrame) -> list[tuple[object, ...]]:
    assert tuple(frame.columns) == ROLLUP_COLUMNS
    return sorted((tuple(r) for r in frame.collect()), key=lambda r: (r[0], r[1]))


NO_RESIDUALS = (None, None, None, None)


def test_hourly_rollup_values_completeness_and_residuals(readings: DataFrame) -> None:
    # When rolling up per hour with the step taken from the data (median gap: 600 s)
    result = collect(rollup(readings, "hour"))

    # Then each (device, channel) has exact statistics; d1 is 5 of 6 expected samples complete
    hour = spark_utc(datetime(2024, 3, 10, 10, tzinfo=UTC))
    # (completeness is per channel: co was sent in 3 of the 6 expected samples)
    step = (600.0, 6.0)
    assert result == [
        ("d1", "co", hour, 3, 1.5, 1.0, 2.0, 2.0, *step, 0.5, 2, -0.25, 0.75, math.sqrt(0.625), "2024-03-10"),
        ("d1", "ref_co", hour, 2, 1.5, 1.0, 2.0, 2.0, *step, 2 / 6, *NO_RESIDUALS, "2024-03-10"),
        ("d1", "temperature", hour, 5, 22.0, 20.0, 24.0, 24.0, *step, 5 / 6, *NO_RESIDUALS, "2024-03-10"),
        # one sample: no interval to infer a step from, so completeness is unknown, not guessed
        ("d2", "radon", hour, 1, 40.0, 40.0, 40.0, 40.0, None, None, None, *NO_RESIDUALS, "2024-03-10"),
        (
            "d2",
            "temperature",
            hour,
            1,
            10.125,
            10.125,
            10.125,
            10.125,
            None,
            None,
            None,
            *NO_RESIDUALS,
            "2024-03-10",
        ),
    ]


def test_daily_rollup_with_a_configured_step(readings: DataFrame) -> None:
    # When rolling up per day with a configured 60 s step (1,440 samples expected a day)
    result = collect(rollup(readings, "day", nominal_step_s=60.0))

    # Then completeness uses the configured step for every device
    day = spark_utc(datetime(2024, 3, 10, tzinfo=UTC))
    assert [(r[0], r[1], r[2], r[3], r[8], r[9], r[10]) for r in result] == [
        ("d1", "co", day, 3, 60.0, 1440.0, 3 / 1440),
        ("d1", "ref_co", day, 2, 60.0, 1440.0, 2 / 1440),
        ("d1", "temperature", day, 5, 60.0, 1440.0, 5 / 1440),
        ("d2", "radon", day, 1, 60.0, 1440.0, 1 / 1440),
        ("d2", "temperature", day, 1, 60.0, 1440.0, 1 / 1440),
    ]
