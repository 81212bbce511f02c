"""raw -> curated: decoding, quarantine, de-duplication, event-time partitions, idempotent re-runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from airlake.batch.readings import QUARANTINE_SCHEMA, READINGS_SCHEMA
from airlake.catalog import READINGS
from glue_jobs.raw_to_curated import run_raw_to_curated
from tests.spark.conftest import write_raw

pytestmark = pytest.mark.spark

MAR10_10H = 1710064800000  # 2024-03-10T10:00:00Z
MAR09_2359 = 1710028740000  # 2024-03-09T23:59:00Z
MAR09_12H = 1709985600000  # 2024-03-09T12:00:00Z


def reading(device: str, ts_ms: int, seq: int, **channels: float) -> dict[str, object]:
    return {"device_id": device, "ts": ts_ms, "seq": seq, "firmware": "1.0.0", "channels": channels}


def utc(text: str) -> datetime:
    # Spark returns TimestampType as naive datetimes in the session zone, which is UTC.
    return datetime.fromisoformat(text)


def curated_rows(spark: SparkSession, lake: Path) -> list[tuple[object, ...]]:
    frame = spark.read.schema(READINGS_SCHEMA).parquet(str(lake / "curated" / "readings"))
    rows = frame.select(
        "dt",
        "device_id",
        "ts",
        "ts_ms",
        "seq",
        "co2",
        "temperature",
        "other_channels",
        "received_at",
        "line_no",
    ).collect()
    return sorted(tuple(r) for r in rows)


def quarantine_rows(spark: SparkSession, lake: Path) -> list[tuple[object, ...]]:
    frame = spark.read.schema(QUARANTINE_SCHEMA).parquet(str(lake / "curated" / "quarantine"))
    rows = frame.select("dt", "reason", "raw", "raw_text", "device_id", "line_no", "element_index").collect()
    return sorted((tuple(bytes(v) if isinstance(v, bytearray) else v for v in r) for r in rows), key=repr)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_raw(
        root,
        "2024-03-10",
        10,
        "a.gz",
        [
            reading("dev-a", MAR10_10H, 1, co2=420, temperature=21.5),
            b"not json{",
            [
                # temperature sent finer than its column's 2 decimals
                reading("dev-a", MAR10_10H + 60_000, 2, co2=425.0, temperature=21.537),
                reading("dev-a", MAR10_10H, 3, co2=-5.0),
            ],
            b"\xff\xfe{}",
        ],
    )
    # The same reading again, arriving an hour later (a producer retry): a duplicate.
    write_raw(root, "2024-03-10", 11, "b.gz", [reading("dev-a", MAR10_10H, 1, co2=999.0)])
    # A reading stamped the day before, arriving after midnight: event time decides its partition.
    write_raw(root, "2024-03-10", 0, "c.gz", [reading("dev-b", MAR09_2359, 7, pm25=12.0, radon=30.0)])
    return root


def test_first_run_decodes_quarantines_deduplicates_and_partitions_by_event_time(
    spark: SparkSession, lake: Path
) -> None:
    # Given the raw zone above, When the job processes arrival date 2024-03-10
    counts = run_raw_to_curated(spark, str(lake), from_dt="2024-03-10")

    # Then the counts conserve records: 6 records in = 3 new readings + 2 quarantined... + 1 duplicate
    assert {k: counts[k] for k in ("raw_objects", "lines_in", "records_in", "readings_decoded")} == {
        "raw_objects": 3,
        "lines_in": 6,
        "records_in": 7,
        "readings_decoded": 4,
    }
    assert counts["quarantined_by_reason"] == {"invalid_json": 1, "not_utf8": 1, "out_of_range": 1}
    assert (counts["readings_new"], counts["duplicates_removed"]) == (3, 1)
    assert (
        counts["records_in"] == counts["readings_new"] + counts["quarantined"] + counts["duplicates_removed"]
    )
    assert counts["readings_partitions"] == ["2024-03-09", "2024-03-10"]

    # And the earliest arrival of the duplicated key is kept (co2=420 from hour 10, not 999)
    assert curated_rows(spark, lake) == [
        (
            "2024-03-09",
            "dev-b",
            utc("2024-03-09 23:59:00"),
            MAR09_2359,
            7,
            None,
            None,
            {"radon": 30.0},  # a channel with no column of its own
            utc("2024-03-10 00:00:00"),
            1,
        ),
        (
            "2024-03-10",
            "dev-a",
            utc("2024-03-10 10:00:00"),
            MAR10_10H,
            1,
            420.0,
            21.5,
            {},  # co2 and temperature are in their columns
            utc("2024-03-10 10:00:00"),
            1,
        ),
        (
            "2024-03-10",
            "dev-a",
            utc("2024-03-10 10:01:00"),
            MAR10_10H + 60_000,
            2,
            425.0,
            None,
            {"temperature": 21.537},  # kept exactly, not rounded into the decimal column
            utc("2024-03-10 10:00:00"),
            3,
        ),
    ]
    # And bad records keep their original bytes, reason and position, under their arrival date
    assert quarantine_rows(spark, lake) == sorted(
        [
            ("2024-03-10", "invalid_json", b"not json{", "not json{", None, 2, None),
            (
                "2024-03-10",
                "out_of_range",
                b'{"device_id":"dev-a","ts":1710064800000,"seq":3,"firmware":"1.0.0","channels":{"co2":-5.0}}',
                '{"device_id":"dev-a","ts":1710064800000,"seq":3,"firmware":"1.0.0","channels":{"co2":-5.0}}',
                "dev-a",
                3,
                1,
            ),
            ("2024-03-10", "not_utf8", b"\xff\xfe{}", "\ufffd\ufffd{}", None, 4, None),
        ],
        key=repr,
    )


def test_channels_are_stored_as_exact_delta_encoded_decimals(spark: SparkSession, lake: Path) -> None:
    # Given the lake after the first run, When a curated file is read with pyarrow
    day = next((lake / "curated" / "readings" / "dt=2024-03-10").glob("*.parquet"))
    parquet = pq.ParquetFile(day)
    table = parquet.read(columns=["seq", "co2", "temperature"]).sort_by("seq")

    # Then channels are decimals at the contract's resolution, holding exactly what was sent
    assert table.schema.field("co2").type == pa.decimal128(9, 1)
    assert table.schema.field("temperature").type == pa.decimal128(9, 2)
    assert table.column("co2").to_pylist() == [Decimal("420.0"), Decimal("425.0")]
    assert table.column("temperature").to_pylist() == [Decimal("21.50"), None]
    # And numeric columns are delta-encoded (no dictionary), strings keep their dictionary
    group = parquet.metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}
    for name in ("ts", "ts_ms", "seq", "co2", "temperature", "co"):
        assert "DELTA_BINARY_PACKED" in encodings[name], (name, encodings[name])
        assert "PLAIN_DICTIONARY" not in encodings[name] and "RLE_DICTIONARY" not in encodings[name]
    assert "RLE_DICTIONARY" in encodings["device_id"] or "PLAIN_DICTIONARY" in encodings["device_id"]


def test_rerun_over_the_same_input_rewrites_identical_partitions(spark: SparkSession, lake: Path) -> None:
    # Given the lake after the first run
    before = (curated_rows(spark, lake), quarantine_rows(spark, lake))

    # When the same arrival date is processed again
    counts = run_raw_to_curated(spark, str(lake), from_dt="2024-03-10")

    # Then nothing is new, every reading counts as a duplicate, and the tables are unchanged
    assert (counts["readings_new"], counts["duplicates_removed"]) == (0, 4)
    assert (curated_rows(spark, lake), quarantine_rows(spark, lake)) == before


def test_late_data_rewrites_only_the_partition_it_touches(spark: SparkSession, lake: Path) -> None:
    # Given the lake after the earlier runs, and the file listing of event day 2024-03-10
    day10 = lake / "curated" / "readings" / "dt=2024-03-10"
    day10_files = sorted((p.name, p.stat().st_mtime_ns) for p in day10.iterdir())
    late = write_raw(lake, "2024-03-11", 1, "d.gz", [reading("dev-b", MAR09_12H, 3, pm25=30.0)])

    # When a raw object arriving on 2024-03-11 carries a reading of 2024-03-09
    counts = run_raw_to_curated(spark, str(lake), paths=[str(late)])

    # Then day 2024-03-09 holds the old and the late reading, and day 2024-03-10 was not rewritten
    assert counts["readings_partitions"] == ["2024-03-09"]
    day09 = [row[:5] for row in curated_rows(spark, lake) if row[0] == "2024-03-09"]
    assert day09 == [
        ("2024-03-09", "dev-b", utc("2024-03-09 12:00:00"), MAR09_12H, 3),
        ("2024-03-09", "dev-b", utc("2024-03-09 23:59:00"), MAR09_2359, 7),
    ]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in day10.iterdir()) == day10_files


def test_compaction_merges_a_days_files_and_keeps_its_rows(spark: SparkSession, lake: Path) -> None:
    # Given day 2024-03-10 with a second, small file appended (as a streaming writer would)
    from pyspark.sql import functions as F  # noqa: N812

    from glue_jobs.compaction import run_compaction

    table = str(lake / "curated" / "readings")
    extra = spark.read.schema(READINGS_SCHEMA).parquet(table).where("dt = '2024-03-10'")
    extra.withColumn("seq", F.col("seq") + 100).write.mode("append").partitionBy("dt").parquet(table)
    before = curated_rows(spark, lake)
    assert len(list((lake / "curated" / "readings" / "dt=2024-03-10").glob("*.parquet"))) == 2

    # When the day is compacted
    counts = run_compaction(spark, str(lake), tables=[READINGS.name], from_dt="2024-03-10")

    # Then it is one file holding exactly the same rows
    assert counts == {READINGS.name: {"files_before": 2, "files_after": 1, "rows": 4}}
    assert curated_rows(spark, lake) == before
