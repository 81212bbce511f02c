"""Producer retries, a Spark job killed halfway, the same raw files twice: curated stays exact.

The chain under test: a Kinesis client that fails entries, throttles and loses a reply (it stored
the records, then the caller saw an error) -> `airlake.producer.Producer` (retries only failed
entries; the lost reply makes it resend records already stored) -> the raw zone as Firehose lands
it -> the raw -> curated Glue job on local Spark, which must remove every copy by the idempotency
key, survive being killed between partition writes, and give the same table when re-run.
"""

from __future__ import annotations

import gzip
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

import glue_jobs.raw_to_curated as job
from airlake.batch.readings import READINGS_SCHEMA
from airlake.producer import Producer
from glue_jobs import _lake

pytestmark = pytest.mark.spark

T_2330 = 1_773_099_000_000  # 2026-03-09T23:30:00Z: the readings span two event-time days
MIN = 60_000
N = 60


def readings() -> list[tuple[str, bytes]]:  # (partition key, data)
    docs: list[dict[str, Any]] = [
        {
            "device_id": f"dev-{i % 3}",
            "ts": T_2330 + (i // 3) * 3 * MIN,
            "seq": i,
            "channels": {"co2": 500.0 + i},
        }
        for i in range(N)
    ]
    return [(d["device_id"], orjson.dumps(d)) for d in docs]


class UnreliableKinesis:
    """PutRecords that stores what it accepts, and fails as scripted per call (0-based):

    call 0: entries 1 and 3 fail (ProvisionedThroughputExceeded in the reply, HTTP 200)
    call 1: the whole call is throttled (nothing stored)
    call 2: the records are stored, but the reply is lost (the caller sees a throttling error)
    call 3+: success
    """

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []
        self.stored: list[bytes] = []

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        call = len(self.calls)
        entries = kwargs["Records"]
        self.calls.append([e["Data"] for e in entries])
        if call == 1:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutRecords")
        results: list[dict[str, Any]] = []
        for i, entry in enumerate(entries):
            if call == 0 and i in (1, 3):
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
                )
            else:
                self.stored.append(entry["Data"])
                results.append({"SequenceNumber": str(len(self.stored)), "ShardId": "shardId-000000000000"})
        if call == 2:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "PutRecords")  # reply lost
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def land(lake: Path, records: list[bytes]) -> None:
    """Firehose's raw landing: two gzip objects of newline-terminated records, arrival hour 00."""
    folder = lake / "raw" / "dt=2026-03-10" / "hour=00"
    folder.mkdir(parents=True, exist_ok=True)
    half = len(records) // 2
    for name, part in (("part-0.gz", records[:half]), ("part-1.gz", records[half:])):
        (folder / name).write_bytes(gzip.compress(b"".join(r + b"\n" for r in part), mtime=0))


def curated(spark: Any, lake: Path) -> list[tuple[Any, ...]]:
    """Every curated row, lineage reduced to the object's name so two lakes compare."""
    frame = spark.read.schema(READINGS_SCHEMA).parquet(str(lake / "curated" / "readings"))
    rows = []
    for row in frame.collect():
        values = row.asDict(recursive=True)
        values["source_file"] = values["source_file"].rsplit("/", 1)[-1]
        values["other_channels"] = sorted(values["other_channels"].items())
        rows.append(tuple(sorted(values.items())))
    return sorted(rows, key=repr)


@pytest.fixture(scope="module")
def produced() -> tuple[UnreliableKinesis, Any]:
    kinesis = UnreliableKinesis()
    stats = Producer(kinesis, "readings", sleep=lambda _s: None).send(readings())
    return kinesis, stats


def test_the_producer_retries_only_failed_entries_and_a_lost_reply_creates_duplicates(
    produced: tuple[UnreliableKinesis, Any],
) -> None:
    kinesis, stats = produced
    sent = [data for _key, data in readings()]
    # Only the two failed entries were retried (the throttled and the lost-reply calls too)
    assert kinesis.calls[0] == sent
    assert kinesis.calls[1] == kinesis.calls[2] == kinesis.calls[3] == [sent[1], sent[3]]
    assert (stats.sent, stats.retried_entries, stats.throttled_calls, stats.failed) == (N, 2, 2, [])
    # Nothing was lost; the lost reply stored entries 1 and 3 twice
    copies = Counter(kinesis.stored)
    assert set(copies) == set(sent)
    assert sorted(data for data, n in copies.items() if n > 1) == sorted([sent[1], sent[3]])
    assert len(kinesis.stored) == N + 2


@pytest.fixture(scope="module")
def lakes(
    spark: Any, produced: tuple[UnreliableKinesis, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    kinesis, _stats = produced
    clean = tmp_path_factory.mktemp("clean-lake")
    land(clean, kinesis.stored)
    first = job.run_raw_to_curated(spark, str(clean), from_dt="2026-03-10")
    table = curated(spark, clean)
    again = job.run_raw_to_curated(spark, str(clean), from_dt="2026-03-10")
    return {
        "clean": clean,
        "first": first,
        "table": table,
        "again": again,
        "table_again": curated(spark, clean),
    }


def test_curated_holds_each_idempotency_key_once_and_counts_the_removed_copies(lakes: dict[str, Any]) -> None:
    first, table = lakes["first"], lakes["table"]
    keys = Counter((dict(r)["device_id"], dict(r)["ts_ms"], dict(r)["seq"]) for r in table)
    assert len(keys) == N and max(keys.values()) == 1
    assert (
        first["records_in"],
        first["readings_new"],
        first["duplicates_removed"],
        first["quarantined"],
    ) == (
        N + 2,
        N,
        2,
        0,
    )
    assert first["readings_partitions"] == ["2026-03-09", "2026-03-10"]


def test_the_same_raw_files_processed_twice_leave_the_table_unchanged(lakes: dict[str, Any]) -> None:
    assert lakes["table_again"] == lakes["table"]
    assert (lakes["again"]["readings_new"], lakes["again"]["duplicates_removed"]) == (0, N + 2)


def test_a_job_killed_after_its_first_partition_and_rerun_gives_the_clean_table(
    spark: Any, lakes: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same raw zone in a fresh lake
    lake = tmp_path / "lake"
    shutil.copytree(lakes["clean"] / "raw", lake / "raw")
    real_write = _lake.write_partitions

    def killed_after_first_partition(frame: Any, path: str, sort_by: Any, **options: Any) -> None:
        first_dt = min(r.dt for r in frame.select("dt").distinct().collect())
        real_write(frame.where(frame.dt == first_dt), path, sort_by, **options)
        raise RuntimeError("executor lost: job killed")

    # When the job dies after writing the first day of curated readings
    monkeypatch.setattr(job, "write_partitions", killed_after_first_partition)
    with pytest.raises(RuntimeError, match="job killed"):
        job.run_raw_to_curated(spark, str(lake), from_dt="2026-03-10")
    written = sorted(p.name for p in (lake / "curated" / "readings").iterdir() if p.name.startswith("dt="))
    assert written == ["dt=2026-03-09"]  # a half-done table
    # And is re-run over the same input
    monkeypatch.setattr(job, "write_partitions", real_write)
    job.run_raw_to_curated(spark, str(lake), from_dt="2026-03-10")
    # Then the table equals the clean run's, row for row
    assert curated(spark, lake) == lakes["table"]
