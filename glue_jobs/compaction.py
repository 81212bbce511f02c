"""Glue job: compact the small files of curated Parquet tables, one day at a time.

Firehose and streaming outputs, late data and re-runs leave many small files per day; Athena
pays per file opened and scans small row groups poorly. This job rewrites each requested `dt`
partition of the given tables into as few files as MAX_RECORDS_PER_FILE allows, sorted like the
producing job sorts them, with the same rows (dynamic partition overwrite: other days untouched).

The raw zone is never compacted: it is the unchanged record of what devices sent, and the
quarantine table's lineage (source_file, line_no) points into it.

Locally:  python glue_jobs/compaction.py --lake_root .airlake/lake --from_dt 2024-03-01 --to_dt 2024-03-31
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from airlake.batch.readings import table_schema
from airlake.batch.session import configure, local_spark
from airlake.catalog import QUARANTINE, READINGS, READINGS_DELTA_COLUMNS, ROLLUPS_DAILY, ROLLUPS_HOURLY, Table
from glue_jobs._lake import dates_between, read_partitions, table_path, write_partitions

# Parquet tables this job may compact, with the sort order and delta-encoded columns their
# producers write (a compacted file is encoded as its producer would have written it).
COMPACTABLE: dict[str, tuple[Table, tuple[str, ...], tuple[str, ...]]] = {
    READINGS.name: (READINGS, ("device_id", "ts_ms", "seq"), READINGS_DELTA_COLUMNS),
    QUARANTINE.name: (QUARANTINE, ("source_file", "line_no"), ()),
    ROLLUPS_HOURLY.name: (ROLLUPS_HOURLY, ("device_id", "channel", "period_start"), ()),
    ROLLUPS_DAILY.name: (ROLLUPS_DAILY, ("device_id", "channel", "period_start"), ()),
}


def count_files(spark: SparkSession, base: str, dates: Sequence[str]) -> int:
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr,unused-ignore]
    total = 0
    for day in dates:
        path = jvm.org.apache.hadoop.fs.Path(f"{base}/dt={day}")
        fs = path.getFileSystem(conf)
        if fs.exists(path):
            total += sum(
                1 for status in fs.listStatus(path) if status.getPath().getName().endswith(".parquet")
            )
    return total


def run_compaction(
    spark: SparkSession, lake_root: str, *, tables: Sequence[str], from_dt: str, to_dt: str | None = None
) -> dict[str, Any]:
    """Compact the days [from_dt, to_dt] of each table that are spread over several files; return
    files before/after and the rows rewritten."""
    configure(spark)
    dates = dates_between(from_dt, to_dt or from_dt)
    counts: dict[str, Any] = {}
    for name in tables:
        table, sort_by, delta_columns = COMPACTABLE[name]
        base = table_path(lake_root, table)
        frame = read_partitions(spark, base, table_schema(table))
        if frame is None:
            counts[name] = {"files_before": 0, "files_after": 0, "rows": 0}
            continue
        per_day = {day: count_files(spark, base, [day]) for day in dates}
        files_before = sum(per_day.values())
        # A day already in one file has nothing to compact: leave it alone (no rewrite, no cost).
        fragmented = [day for day, files in per_day.items() if files > 1]
        if not fragmented:
            counts[name] = {"files_before": files_before, "files_after": files_before, "rows": 0}
            continue
        days = frame.where(F.col("dt").isin(fragmented)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            rows = days.count()
            if rows:
                write_partitions(days, base, sort_by, delta_columns=delta_columns)
        finally:
            days.unpersist()
        counts[name] = {
            "files_before": files_before,
            "files_after": count_files(spark, base, dates),
            "rows": rows,
        }
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="compact small files of curated tables")
    parser.add_argument("--lake_root", required=True)
    parser.add_argument("--from_dt", required=True)
    parser.add_argument("--to_dt")
    parser.add_argument("--tables", nargs="*", default=list(COMPACTABLE), choices=list(COMPACTABLE))
    parser.add_argument("--database", help="Glue database (used on Glue only)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spark = local_spark("airlake-compaction")
    counts = run_compaction(spark, args.lake_root, tables=args.tables, from_dt=args.from_dt, to_dt=args.to_dt)
    print(json.dumps(counts, sort_keys=True))
    return 0


def glue_main() -> int:  # pragma: no cover - needs the Glue runtime
    from awsglue.context import GlueContext  # type: ignore[import-not-found,unused-ignore]
    from awsglue.job import Job  # type: ignore[import-not-found,unused-ignore]
    from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found,unused-ignore]

    options = getResolvedOptions(sys.argv, ["JOB_NAME", "lake_root", "database", "from_dt", "to_dt"])
    glue_context = GlueContext(SparkSession.builder.getOrCreate().sparkContext)
    job = Job(glue_context)
    job.init(options["JOB_NAME"], options)
    counts = run_compaction(
        glue_context.spark_session,
        options["lake_root"],
        tables=list(COMPACTABLE),
        from_dt=options["from_dt"],
        to_dt=options["to_dt"],
    )
    print(json.dumps(counts, sort_keys=True))
    job.commit()
    return 0


if __name__ == "__main__":
    if "--JOB_NAME" in sys.argv:
        sys.exit(glue_main())
    sys.exit(main())
