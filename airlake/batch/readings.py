"""Pure DataFrame transforms of the raw -> curated job: decode, split, de-duplicate, merge.

Only pyspark and airlake's own plain-Python modules are imported, so the same functions run on
Glue, on a local SparkSession and in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias
from pyspark.sql.types import StructType

from airlake.batch.decode import DECODED_COLUMNS, KIND_QUARANTINE, KIND_READING, Calibrator, decode_files
from airlake.batch.schema import struct
from airlake.catalog import QUARANTINE, READINGS, Table

READING_KEY: tuple[str, ...] = ("device_id", "ts_ms", "seq")
# Earliest arrival wins; the rest of the order only makes the choice deterministic.
READING_ORDER: tuple[str, ...] = ("received_at", "source_file", "line_no", "element_index")
QUARANTINE_KEY: tuple[str, ...] = ("source_file", "line_no", "element_index")


def table_schema(table: Table) -> StructType:
    """Spark schema of a catalog table, partition keys last (as Spark reads a partitioned folder)."""
    return struct((c.name, c.type) for c in (*table.columns, *table.partition_keys))


READINGS_SCHEMA = table_schema(READINGS)
QUARANTINE_SCHEMA = table_schema(QUARANTINE)
DECODED_SCHEMA = struct(DECODED_COLUMNS)


def decode_raw(spark: SparkSession, files: DataFrame, calibrator: Calibrator | None = None) -> DataFrame:
    """Spark `binaryFile` rows (path, modificationTime, content) -> decoded rows (DECODED_COLUMNS).

    The calibrator (if any) is shipped to the executors with the closure, so batch and stream
    calibrate with the same model objects.
    """

    def run(rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        return decode_files(
            ((row.path, bytes(row.content), _epoch_ms(row.modificationTime)) for row in rows), calibrator
        )

    rdd = files.select("path", "modificationTime", "content").rdd.mapPartitions(run)
    return spark.createDataFrame(rdd, DECODED_SCHEMA, verifySchema=False)


def _epoch_ms(value: datetime | None) -> int | None:
    # pyspark hands TimestampType over as a naive local-time datetime; .timestamp() reads it as such.
    return None if value is None else int(value.timestamp() * 1000)


def readings_of(decoded: DataFrame) -> DataFrame:
    """The valid readings of decoded rows, in the curated table's column order (dt last)."""
    return decoded.where(F.col("kind") == KIND_READING).select(
        *(_reading_column(name) for name in READINGS_SCHEMA.fieldNames())
    )


def _reading_column(name: str) -> Any:
    if name == "ts":
        return F.timestamp_millis("ts_ms").alias("ts")
    if name == "received_at":
        return F.timestamp_millis("received_ms").alias("received_at")
    if name == "dt":
        return F.col("event_dt").alias("dt")
    return F.col(name).cast(READINGS_SCHEMA[name].dataType).alias(name)


def quarantine_of(decoded: DataFrame) -> DataFrame:
    """The quarantined records of decoded rows, in the quarantine table's column order (dt last)."""
    return decoded.where(F.col("kind") == KIND_QUARANTINE).select(
        "reason",
        "detail",
        "raw",
        F.decode("raw", "UTF-8").alias("raw_text"),
        "device_id",
        F.timestamp_millis("received_ms").alias("received_at"),
        "source_file",
        "line_no",
        "element_index",
        F.col("arrival_dt").alias("dt"),
    )


def deduplicate(frame: DataFrame, key: tuple[str, ...], order: tuple[str, ...]) -> DataFrame:
    """One row per key: the first in `order` (ascending, nulls first)."""
    window = Window.partitionBy(*key).orderBy(*(F.col(c).asc_nulls_first() for c in order))
    return frame.withColumn("_rank", F.row_number().over(window)).where(F.col("_rank") == 1).drop("_rank")


def merge_into_partitions(
    new: DataFrame,
    existing: DataFrame | None,
    touched: Sequence[str],
    key: tuple[str, ...],
    order: tuple[str, ...],
) -> DataFrame:
    """New rows merged with the existing rows of the partitions they touch, de-duplicated.

    Why: the job overwrites whole `dt` partitions (dynamic partition overwrite). A late reading
    for day X arriving in a later raw file must not replace day X by itself, so the rows already
    in day X are read back and merged. `touched` lists the days `new` holds (collected by the
    caller): a literal filter on the partition column, so Spark lists and reads only those
    folders. A column `_new` says which side a surviving row came from (for the counts); callers
    drop it before writing.
    """
    tagged = new.withColumn("_new", F.lit(True))
    if existing is not None and touched:
        old = existing.where(F.col("dt").isin(list(touched))).select(*new.columns)
        tagged = tagged.unionByName(old.withColumn("_new", F.lit(False)))
    # On a full tie (a re-run over the same input) the row already in the lake wins, so the
    # re-read input counts as duplicates and the partition is rewritten unchanged.
    return deduplicate(tagged, key, (*order, "_new"))
