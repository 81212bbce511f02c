"""Glue job: raw zone (gzip JSON lines, arrival-time partitions) -> curated readings + quarantine.

extract: the raw objects of the requested arrival dates (locally `--from_dt/--to_dt`, or
  `--raw_paths`; on Glue the new objects found by the job bookmark).
transform: decode every line with the contract's decoder (airlake.batch.decode), calibrate,
  split readings from quarantined records, merge with the partitions already in the lake and
  de-duplicate on (device_id, ts_ms, seq) keeping the earliest arrival.
load: dynamic partition overwrite of curated/readings (event-time dt) and curated/quarantine
  (arrival dt). Re-running over the same input rewrites the same partitions with the same rows.

Counts (printed as one JSON line and returned by `run_raw_to_curated`) satisfy
`records_in == readings_new + quarantined + duplicates_removed`.

Locally:  python glue_jobs/raw_to_curated.py --lake_root .airlake/lake --from_dt 2024-03-01 --to_dt 2024-03-02
On Glue:  --JOB_NAME ... --lake_root s3://bucket --database airlake (+ job bookmarks enabled)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `airlake` and `glue_jobs` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from airlake.batch.decode import KIND_QUARANTINE, KIND_READING, Calibrator
from airlake.batch.readings import (
    QUARANTINE_KEY,
    QUARANTINE_SCHEMA,
    READING_KEY,
    READING_ORDER,
    READINGS_SCHEMA,
    decode_raw,
    merge_into_partitions,
    quarantine_of,
    readings_of,
)
from airlake.batch.session import configure, local_spark
from airlake.catalog import QUARANTINE, RAW_READINGS, READINGS, READINGS_DELTA_COLUMNS
from glue_jobs._lake import (
    add_local_args,
    dates_between,
    partition_paths,
    read_partitions,
    table_path,
    write_partitions,
)


def raw_inputs(spark: SparkSession, lake_root: str, from_dt: str, to_dt: str | None = None) -> list[str]:
    """Raw partition folders of the arrival dates [from_dt, to_dt] that exist."""
    return partition_paths(
        spark, table_path(lake_root, RAW_READINGS), dates_between(from_dt, to_dt or from_dt)
    )


def extract(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """Every raw object under `paths` as bytes (hidden and `_`-prefixed files are skipped)."""
    return spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(list(paths))


def load_calibrator(models_dir: str | None, *, enabled: bool = True) -> Calibrator | None:
    """The hot path's calibrator (airlake.calibration), so batch and stream compute the same numbers.

    `models_dir` None means the repository's shipped `models/` (or the built-in fleet model).
    The calibrator is pickled into the decode closure, so executors need no access to the folder.
    """
    if not enabled:
        return None
    from airlake.calibration import load_calibrator as load

    calibrator: Calibrator = load(models_dir)
    return calibrator


def run_raw_to_curated(
    spark: SparkSession,
    lake_root: str,
    *,
    paths: Sequence[str] | None = None,
    from_dt: str | None = None,
    to_dt: str | None = None,
    calibrator: Calibrator | None = None,
) -> dict[str, Any]:
    """Process raw input into curated readings and quarantine; return the counts.

    Give either `paths` (raw objects or folders) or `from_dt` [/ `to_dt`] (arrival dates).
    """
    configure(spark)
    if paths is None:
        if from_dt is None:
            raise ValueError("give the raw input: paths, or from_dt [to_dt]")
        paths = raw_inputs(spark, lake_root, from_dt, to_dt)
    counts: dict[str, Any] = {"raw_objects": 0, "lines_in": 0, "records_in": 0, "readings_decoded": 0}
    counts.update({"quarantined": 0, "quarantined_by_reason": {}, "readings_new": 0, "duplicates_removed": 0})
    counts.update({"readings_partitions": [], "quarantine_partitions": []})
    if not paths:
        return counts

    files = extract(spark, paths)
    decoded = decode_raw(spark, files, calibrator).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts.update(_decoded_counts(decoded))
        readings_path = table_path(lake_root, READINGS)
        quarantine_path = table_path(lake_root, QUARANTINE)

        readings = merge_into_partitions(
            readings_of(decoded),
            read_partitions(spark, readings_path, READINGS_SCHEMA),
            counts.pop("_event_dates"),
            READING_KEY,
            READING_ORDER,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        quarantine = merge_into_partitions(
            quarantine_of(decoded),
            read_partitions(spark, quarantine_path, QUARANTINE_SCHEMA),
            counts.pop("_arrival_dates"),
            QUARANTINE_KEY,
            (),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            per_day = _per_partition(readings)
            counts["readings_new"] = sum(new for _rows, new in per_day.values())
            counts["duplicates_removed"] = counts["readings_decoded"] - counts["readings_new"]
            counts["readings_written"] = sum(rows for rows, _new in per_day.values())
            counts["readings_partitions"] = sorted(per_day)
            counts["quarantine_partitions"] = sorted(_per_partition(quarantine))
            if counts["readings_partitions"]:
                write_partitions(
                    readings.drop("_new"),
                    readings_path,
                    ("device_id", "ts_ms", "seq"),
                    delta_columns=READINGS_DELTA_COLUMNS,
                )
            if counts["quarantine_partitions"]:
                write_partitions(quarantine.drop("_new"), quarantine_path, ("source_file", "line_no"))
        finally:
            readings.unpersist()
            quarantine.unpersist()
    finally:
        decoded.unpersist()
    return counts


def _decoded_counts(decoded: DataFrame) -> dict[str, Any]:
    """Counts of one decoding pass, in a single Spark action.

    A line is counted once: by its whole-line row (element_index null) or its first element (0).
    """
    first_of_line = F.col("element_index").isNull() | (F.col("element_index") == 0)
    rows = (
        decoded.groupBy("kind", "reason")
        .agg(
            F.count(F.lit(1)).alias("records"),
            F.sum(first_of_line.cast("long")).alias("lines"),
            F.collect_set("source_file").alias("files"),
            F.collect_set("event_dt").alias("event_dates"),
            F.collect_set("arrival_dt").alias("arrival_dates"),
        )
        .collect()
    )
    readings = sum(r.records for r in rows if r.kind == KIND_READING)
    reasons = {r.reason: r.records for r in rows if r.kind == KIND_QUARANTINE}
    return {
        "raw_objects": len({name for r in rows for name in r.files}),
        "lines_in": sum(r.lines for r in rows),
        "records_in": readings + sum(reasons.values()),
        "readings_decoded": readings,
        "quarantined": sum(reasons.values()),
        "quarantined_by_reason": dict(sorted(reasons.items())),
        # days each output will rewrite (popped by the caller, not reported)
        "_event_dates": sorted({d for r in rows if r.kind == KIND_READING for d in r.event_dates}),
        "_arrival_dates": sorted({d for r in rows if r.kind == KIND_QUARANTINE for d in r.arrival_dates}),
    }


def _per_partition(merged: DataFrame) -> dict[str, tuple[int, int]]:
    """dt -> (rows after the merge, rows that came from the new input), in one Spark action."""
    rows = merged.groupBy("dt").agg(
        F.count(F.lit(1)).alias("rows"), F.sum(F.col("_new").cast("long")).alias("new")
    )
    return {r.dt: (r.rows, r.new) for r in rows.collect()}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_local_args(parser)
    parser.add_argument("--models_dir", help="calibration models folder (default: the shipped models/)")
    parser.add_argument("--no_calibration", action="store_true", help="leave co/nox/no2 null")
    parser.add_argument("--raw_paths", nargs="*", help="raw objects or folders instead of a date range")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Local entry point: extract -> transform -> load on a local SparkSession, print the counts."""
    args = parse_args(argv)
    if args.raw_paths is None and args.from_dt is None:
        raise SystemExit("give --from_dt [--to_dt] or --raw_paths")
    spark = local_spark("airlake-raw-to-curated")
    counts = run_raw_to_curated(
        spark,
        args.lake_root,
        paths=args.raw_paths,
        from_dt=args.from_dt,
        to_dt=args.to_dt,
        calibrator=load_calibrator(args.models_dir, enabled=not args.no_calibration),
    )
    print(json.dumps(counts, sort_keys=True))
    return 0


def glue_main() -> int:  # pragma: no cover - needs the Glue runtime
    """Glue entry point: job bookmarks decide which raw objects are new.

    A bookmarked DynamicFrame over the raw prefix (read as one-column CSV with a delimiter that
    never occurs in JSON) is used only to learn the file names that are new since the last
    commit; those objects are then read as bytes and decoded like locally. `job.commit()` runs
    after the writes, so a failed run is retried over the same files.
    """
    from awsglue.context import GlueContext  # type: ignore[import-not-found,unused-ignore]
    from awsglue.job import Job  # type: ignore[import-not-found,unused-ignore]
    from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found,unused-ignore]

    options = getResolvedOptions(sys.argv, ["JOB_NAME", "lake_root", "database"])
    models = getResolvedOptions(sys.argv, ["models_dir"]) if "--models_dir" in sys.argv else {}
    glue_context = GlueContext(SparkSession.builder.getOrCreate().sparkContext)
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(options["JOB_NAME"], options)
    raw = glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [table_path(options["lake_root"], RAW_READINGS) + "/"], "recurse": True},
        format="csv",
        format_options={
            "separator": "\u0001",
            "quoteChar": -1,
            "withHeader": False,
            "attachFilename": "file",
        },
        transformation_ctx="raw_readings",
    )
    new_files = [row.file for row in raw.toDF().select(F.col("file")).distinct().collect()]
    counts = run_raw_to_curated(
        spark, options["lake_root"], paths=new_files, calibrator=load_calibrator(models.get("models_dir"))
    )
    print(json.dumps(counts, sort_keys=True))
    job.commit()
    return 0


if __name__ == "__main__":
    if "--JOB_NAME" in sys.argv:
        sys.exit(glue_main())
    sys.exit(main())
