"""One local SparkSession for every Spark test (session start costs seconds; tests share it)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pyspark.sql import SparkSession

from airlake.batch.session import configure


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[2]")
        .appName("airlake-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.adaptive.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    configure(session)
    yield session
    session.stop()


def write_raw(lake: Path, dt: str, hour: int, name: str, lines: Sequence[bytes | dict[str, object]]) -> Path:
    """A raw object as Firehose writes it: gzip, each record followed by a newline."""
    folder = lake / "raw" / f"dt={dt}" / f"hour={hour:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    body = b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)
    path = folder / name
    path.write_bytes(gzip.compress(body))
    return path


def spark_utc(moment: datetime) -> datetime:
    """How Spark returns a TimestampType value: naive, in the session zone (UTC here)."""
    return moment.astimezone(UTC).replace(tzinfo=None)
