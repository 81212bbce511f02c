"""Glue job: curated readings -> hourly and daily rollups per device and channel.

extract: curated readings of the event dates [from_dt, to_dt] (whole days: curated partitions
  are complete, so a rollup day is always recomputed from all of its readings).
transform: airlake.batch.rollups (mean, min, max, p95, n, completeness, calibration residuals).
load: dynamic partition overwrite of curated/rollups_hourly and curated/rollups_daily.

Re-running is idempotent. On Glue, without explicit dates, the job recomputes the last
`--lookback_days` days (default 2: yesterday and today), which covers late data of the usual kind;
older late data is rolled up by running the job with an explicit range (the raw -> curated counts
print the event dates each run touched).

Locally:  python glue_jobs/rollups.py --lake_root .airlake/lake --from_dt 2024-03-01 --to_dt 2024-03-02
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from airlake.batch.readings import READINGS_SCHEMA
from airlake.batch.rollups import Period, rollup
from airlake.batch.session import configure, local_spark
from airlake.catalog import READINGS, ROLLUPS_DAILY, ROLLUPS_HOURLY, Table
from glue_jobs._lake import add_local_args, dates_between, read_partitions, table_path, write_partitions


def extract(spark: SparkSession, lake_root: str, dates: Sequence[str]) -> DataFrame | None:
    frame = read_partitions(spark, table_path(lake_root, READINGS), READINGS_SCHEMA)
    if frame is None:
        return None
    return frame.where(F.col("dt").isin(list(dates)))


def run_rollups(
    spark: SparkSession,
    lake_root: str,
    *,
    from_dt: str,
    to_dt: str | None = None,
    nominal_step_s: float | None = None,
) -> dict[str, Any]:
    """Recompute the hourly and daily rollups of the event dates [from_dt, to_dt]; return counts."""
    configure(spark)
    dates = dates_between(from_dt, to_dt or from_dt)
    counts: dict[str, Any] = {"dates": dates, "readings_in": 0, "hourly_rows": 0, "daily_rows": 0}
    readings = extract(spark, lake_root, dates)
    if readings is None:
        return counts
    readings = readings.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts["readings_in"] = readings.count()
        if counts["readings_in"] == 0:
            return counts
        outputs: tuple[tuple[Period, Table, str], ...] = (
            ("hour", ROLLUPS_HOURLY, "hourly_rows"),
            ("day", ROLLUPS_DAILY, "daily_rows"),
        )
        for period, table, key in outputs:
            rows = rollup(readings, period, nominal_step_s).persist(StorageLevel.MEMORY_AND_DISK)
            try:
                counts[key] = rows.count()
                write_partitions(rows, table_path(lake_root, table), ("device_id", "channel", "period_start"))
            finally:
                rows.unpersist()
    finally:
        readings.unpersist()
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="hourly and daily rollups of curated readings")
    add_local_args(parser)
    parser.add_argument(
        "--nominal_step_s", type=float, help="sampling step for completeness (default: median)"
    )
    parser.add_argument(
        "--lookback_days", type=int, default=2, help="days to recompute when no dates are given"
    )
    return parser.parse_args(argv)


def default_range(lookback_days: int, now: datetime | None = None) -> tuple[str, str]:
    """[today - lookback_days + 1, today] in UTC."""
    today = (now or datetime.now(UTC)).date()
    return (today - timedelta(days=lookback_days - 1)).isoformat(), today.isoformat()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    first, last = (args.from_dt, args.to_dt) if args.from_dt else default_range(args.lookback_days)
    spark = local_spark("airlake-rollups")
    counts = run_rollups(spark, args.lake_root, from_dt=first, to_dt=last, nominal_step_s=args.nominal_step_s)
    print(json.dumps(counts, sort_keys=True))
    return 0


def glue_main() -> int:  # pragma: no cover - needs the Glue runtime
    from awsglue.context import GlueContext  # type: ignore[import-not-found,unused-ignore]
    from awsglue.job import Job  # type: ignore[import-not-found,unused-ignore]
    from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found,unused-ignore]

    options = getResolvedOptions(sys.argv, ["JOB_NAME", "lake_root", "database"])
    extra = {
        name: getResolvedOptions(sys.argv, [name])[name]
        for name in ("from_dt", "to_dt", "lookback_days", "nominal_step_s")
        if f"--{name}" in sys.argv
    }
    glue_context = GlueContext(SparkSession.builder.getOrCreate().sparkContext)
    job = Job(glue_context)
    job.init(options["JOB_NAME"], options)
    if "from_dt" in extra:
        first, last = extra["from_dt"], extra.get("to_dt", extra["from_dt"])
    else:
        first, last = default_range(int(extra.get("lookback_days", 2)))
    step = float(extra["nominal_step_s"]) if "nominal_step_s" in extra else None
    counts = run_rollups(
        glue_context.spark_session, options["lake_root"], from_dt=first, to_dt=last, nominal_step_s=step
    )
    print(json.dumps(counts, sort_keys=True))
    job.commit()
    return 0


if __name__ == "__main__":
    if "--JOB_NAME" in sys.argv:
        sys.exit(glue_main())
    sys.exit(main())
