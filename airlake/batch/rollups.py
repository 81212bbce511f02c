"""Hourly and daily rollups of curated readings per device and channel (pure DataFrame functions).

Per (device, channel, period): n, mean, min, max, p95, completeness, and for the calibrated
channels (co, nox, no2) the residuals against the co-located reference analyser
(calibrated - reference: bias, MAE, RMSE and the number of pairs).

p95 is Spark's `percentile_approx` (accuracy 10,000: rank error <= 1/10,000 of n; for the
few thousand readings of a device-day it is an actual sample value, not an interpolation).

Completeness = n / expected_n, expected_n = period length / the device's nominal step. The step
is the configured one when given, else the median interval between consecutive distinct
timestamps of that device within the period (so a device that reports every minute for half an
hour is 0.5 complete for that hour). With a single reading and no configured step the step is
unknown and completeness is null rather than a guess.
"""

from __future__ import annotations

from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from airlake.catalog import CALIBRATED_CHANNELS, ROLLUPS_HOURLY, WIDE_CHANNELS

Period = Literal["hour", "day"]
PERIOD_SECONDS: dict[str, int] = {"hour": 3600, "day": 86_400}
P95_ACCURACY = 10_000
ROLLUP_COLUMNS: tuple[str, ...] = (*ROLLUPS_HOURLY.column_names, "dt")

_CALIBRATED = {name: ref for name, ref, _comment in CALIBRATED_CHANNELS}
_WIDE = tuple(name for name, _comment in WIDE_CHANNELS)


def long_values(readings: DataFrame) -> DataFrame:
    """Curated readings -> one row per (device_id, ts_ms, channel, value, ref).

    Wire channels come from the channel columns (exact decimals, as doubles here) and the
    `other_channels` map, which also holds a known channel's value sent finer than its column's
    resolution (the column is null then, so each value is counted once); the calibrated outputs
    come from the calibrated columns (a device that sends `co` itself, in the map, is taken as
    already calibrated), with the matching reference value in `ref` for residuals.
    """
    calibrated_names = list(_CALIBRATED)
    keys = ("device_id", "ts", "ts_ms")
    columns = readings.select(
        *keys,
        F.inline(
            F.array(
                *(F.struct(F.lit(n).alias("channel"), F.col(n).cast("double").alias("value")) for n in _WIDE)
            )
        ),
    ).where(F.col("value").isNotNull())
    others = readings.select(*keys, F.explode("other_channels").alias("channel", "value")).where(
        ~F.col("channel").isin(calibrated_names)
    )
    parts = [columns.unionByName(others).withColumn("ref", F.lit(None).cast("double"))]
    for name, ref in _CALIBRATED.items():
        value = F.coalesce(F.col(name).cast("double"), F.col("other_channels").getItem(name))
        parts.append(
            readings.select(
                *keys, F.lit(name).alias("channel"), value.alias("value"), _channel(ref).alias("ref")
            ).where(F.col("value").isNotNull())
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _channel(name: str) -> Column:
    """A wire channel's value: its own column when it has one (else, or when sent finer than the
    column holds, its entry in `other_channels`)."""
    in_map = F.col("other_channels").getItem(name)
    return F.coalesce(F.col(name).cast("double"), in_map) if name in _WIDE else in_map


def device_steps(readings: DataFrame, period: Period) -> DataFrame:
    """(device_id, period_start, median_step_s): median gap between consecutive distinct timestamps."""
    times = readings.select("device_id", _period_start(period), "ts_ms").distinct()
    window = Window.partitionBy("device_id", "period_start").orderBy("ts_ms")
    gaps = times.withColumn("gap_ms", F.col("ts_ms") - F.lag("ts_ms").over(window)).where(
        F.col("gap_ms").isNotNull()
    )
    return gaps.groupBy("device_id", "period_start").agg(
        (F.percentile_approx("gap_ms", 0.5, P95_ACCURACY) / 1000.0).alias("median_step_s")
    )


def rollup(readings: DataFrame, period: Period, nominal_step_s: float | None = None) -> DataFrame:
    """Rollup rows of one period kind, in the rollup table's column order (dt last)."""
    values = long_values(readings).withColumn("period_start", F.date_trunc(period, "ts"))
    residual = F.when(F.col("ref").isNotNull(), F.col("value") - F.col("ref"))
    stats = values.groupBy("device_id", "channel", "period_start").agg(
        F.count("value").alias("n"),
        F.avg("value").alias("mean"),
        F.min("value").alias("min"),
        F.max("value").alias("max"),
        F.percentile_approx("value", 0.95, P95_ACCURACY).cast("double").alias("p95"),
        F.count(residual).alias("residual_n"),
        F.avg(residual).alias("residual_mean"),
        F.avg(F.abs(residual)).alias("residual_mae"),
        F.sqrt(F.avg(residual * residual)).alias("residual_rmse"),
    )
    if nominal_step_s is not None:
        with_step = stats.withColumn("step_s", F.lit(float(nominal_step_s)))
    else:
        steps = device_steps(readings, period)
        with_step = stats.join(steps, ["device_id", "period_start"], "left").withColumn(
            "step_s", F.col("median_step_s").cast("double")
        )
    seconds = PERIOD_SECONDS[period]
    expected = F.when(F.col("step_s") > 0, F.lit(float(seconds)) / F.col("step_s"))
    out = (
        with_step.withColumn("expected_n", expected)
        # least() skips nulls, so an unknown expectation must stay null explicitly
        .withColumn(
            "completeness",
            F.when(F.col("expected_n").isNotNull(), F.least(F.col("n") / F.col("expected_n"), F.lit(1.0))),
        )
        .withColumn("dt", F.date_format("period_start", "yyyy-MM-dd"))
    )
    # Residual columns only mean something where a reference exists.
    no_pairs = F.col("residual_n") == 0
    out = out.withColumn("residual_n", F.when(~no_pairs, F.col("residual_n")))
    return out.select(*ROLLUP_COLUMNS)


def _period_start(period: Period) -> Column:
    return F.date_trunc(period, "ts").alias("period_start")
