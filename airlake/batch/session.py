"""SparkSession settings every Airlake job relies on, locally and on Glue."""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import SparkSession

LOG4J2 = Path(__file__).with_name("log4j2.properties")

# Runtime settings (settable on an existing session, e.g. Glue's or the tests' shared one).
RUNTIME_CONF: dict[str, str] = {
    # Event-time dates and hour boundaries are UTC whatever the machine's zone.
    "spark.sql.session.timeZone": "UTC",
    # Overwrite only the dt partitions a run writes: re-runs are idempotent, late data
    # rewrites just the days it touches.
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # INT64 microseconds, not legacy INT96: read by Athena, DuckDB and pyarrow alike.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # dt=2024-01-01 stays the string the catalog declares, not an inferred date.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


def configure(spark: SparkSession) -> SparkSession:
    """Apply RUNTIME_CONF to a session (idempotent)."""
    for key, value in RUNTIME_CONF.items():
        spark.conf.set(key, value)
    # No _SUCCESS markers in table folders: Athena and DuckDB would try to read them.
    spark.sparkContext._jsc.hadoopConfiguration().set(  # type: ignore[union-attr,unused-ignore]
        "mapreduce.fileoutputcommitter.marksuccessfuljobs", "false"
    )
    return spark


def local_spark(app_name: str, *, cores: int = 2, shuffle_partitions: int = 4) -> SparkSession:
    """A local session for running a Glue job script outside Glue (no UI, few shuffle partitions)."""
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        # Python workers must run this interpreter (the venv's orjson and airlake), not `python3`
        # from PATH, or the cold path could judge records differently from the hot path.
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{LOG4J2}")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return configure(spark)
