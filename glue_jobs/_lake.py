"""Lake I/O shared by the job scripts: paths, listing, reading existing partitions, writing.

Everything goes through Spark and its Hadoop FileSystem, so the same code reads a local folder
and `s3://` on Glue.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from airlake.catalog import Table

# Rows per Parquet file: ~50-150 MB of curated readings, the size Athena scans best.
MAX_RECORDS_PER_FILE = 2_000_000


def table_path(lake_root: str, table: Table) -> str:
    return table.location_uri(lake_root).rstrip("/")


def path_exists(spark: SparkSession, path: str) -> bool:
    jvm: Any = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr,unused-ignore]
    return bool(hadoop_path.getFileSystem(conf).exists(hadoop_path))


def dates_between(first: str, last: str) -> list[str]:
    """Inclusive list of yyyy-MM-dd dates."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if end < start:
        raise ValueError(f"--to_dt {last} is before --from_dt {first}")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def partition_paths(spark: SparkSession, base: str, dates: Sequence[str]) -> list[str]:
    """`base/dt=X` for each date that exists (a day with no data is not an error)."""
    return [path for day in dates if path_exists(spark, path := f"{base}/dt={day}")]


def read_partitions(spark: SparkSession, table_base: str, schema: StructType) -> DataFrame | None:
    """A Parquet table's rows (with `dt`), or None when the table has no files yet.

    The caller filters on `dt`; Spark prunes the other partitions before reading any file.
    """
    if not path_exists(spark, table_base):
        return None
    return spark.read.schema(schema).option("basePath", table_base).parquet(table_base)


def write_partitions(
    frame: DataFrame, path: str, sort_by: Sequence[str], *, delta_columns: Sequence[str] = ()
) -> None:
    """Overwrite the `dt` partitions present in `frame` (dynamic mode), one task per day.

    Sorting by device and time inside each file gives tight min/max statistics per row group,
    so a one-device query skips most row groups as well as most partitions.

    `delta_columns` (integer, decimal and timestamp columns) are written with Parquet's
    DELTA_BINARY_PACKED encoding instead of a dictionary: in device-and-time order consecutive
    values differ by a little, so each takes a few bits before compression. That encoding needs the
    Parquet writer's v2 format (data page v2), which Athena engine v3, Spark >= 3.3, DuckDB and
    pyarrow read; tables without delta columns stay on the v1 writer.
    """
    writer = (
        frame.repartition("dt")
        .sortWithinPartitions("dt", *sort_by)
        .write.mode("overwrite")
        .partitionBy("dt")
        .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
        .option("compression", "zstd")
    )
    if delta_columns:
        # Data source options reach the Parquet writer's Hadoop configuration for this write only.
        writer = writer.option("parquet.writer.version", "v2")
        for column in delta_columns:
            writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
    writer.parquet(path)


def add_local_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake_root", required=True, help="lake folder (local) or s3://bucket")
    parser.add_argument("--from_dt", help="first date to process, yyyy-MM-dd (inclusive)")
    parser.add_argument("--to_dt", help="last date to process, yyyy-MM-dd (inclusive; default from_dt)")
    parser.add_argument("--database", help="Glue database (used on Glue only)")
