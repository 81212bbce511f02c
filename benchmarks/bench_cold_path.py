"""Cold-path benchmark: raw -> curated throughput, curated vs raw size, query pruning.

1. Simulates ~1,000,000 readings (airlake.simulate: 58 devices x 60 days x 5 min, 1% garbage,
   1% resends) into a 60-day raw zone laid out like Firehose (dt/hour arrival partitions, gzip).
2. Runs the raw -> curated job on a local SparkSession (decode with the contract, calibrate,
   de-duplicate, quarantine, event-time partitions) and, as the baseline in the same run and
   session, a plain `spark.read.json` + Parquet write of the same raw input (no decoding,
   validation, calibration or de-duplication).
3. Compares curated Parquet bytes with raw gzip bytes (target: <= 50%).
4. Measures the bytes a one-day, one-device query must read against the whole table (target:
   <= 2%). From the Parquet footers, the way Athena and DuckDB plan a scan: only files of the
   `dt` partition (partition pruning), only row groups whose device_id min/max statistics can
   hold the device (row-group pruning), only the column chunks the query names (column pruning);
   the sum of those chunks' compressed sizes over the table's total file bytes. The query itself
   is then run through the local SQL runner to check it returns the device's day.

Prints one JSON line per figure: {"bench", "value", "unit", "baseline", "ratio"}.
Usage: python benchmarks/bench_cold_path.py [--devices 58] [--days 60] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import pyarrow.parquet as pq

from airlake.batch.session import local_spark
from airlake.simulate import FleetConfig, Simulation
from glue_jobs.raw_to_curated import load_calibrator, run_raw_to_curated

HOUR_MS = 3_600_000
# athena/queries/one_device_day.sql through the `readings` view, which also reads other_channels
# (where a value sent finer than its column's resolution is kept).
QUERY_COLUMNS = ("ts", "co2", "pm25", "voc", "temperature", "humidity", "device_id", "other_channels")


def emit(bench: str, value: float, unit: str, baseline: float) -> None:
    ratio = value / baseline if baseline else float("nan")
    print(
        json.dumps(
            {"bench": bench, "value": round(value, 4), "unit": unit, "baseline": baseline, "ratio": ratio}
        )
    )


def simulate_raw(lake: Path, devices: int, days: int) -> tuple[int, int, datetime]:
    """Write the raw zone; return (records, raw gzip bytes, fleet start)."""
    config = FleetConfig(devices=devices, days=float(days), step_s=300, seed=7)
    simulation = Simulation(config, malformed_rate=0.01, duplicate_rate=0.01)
    by_hour: dict[int, list[bytes]] = defaultdict(list)
    arrival = config.start_ms
    records = 0
    for record in simulation.records():
        # Arrival = the record's own event time (devices send as they measure; a resend carries
        # the original time, so it lands in the same hour); garbage arrives with its predecessor.
        try:
            ts = orjson.loads(record.data).get("ts")
            ts_ms = int(datetime.fromisoformat(ts).timestamp() * 1000) if isinstance(ts, str) else ts
            if isinstance(ts_ms, int) and config.start_ms <= ts_ms <= config.end_ms:
                arrival = ts_ms
        except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError):
            pass
        by_hour[arrival - arrival % HOUR_MS].append(record.data)
        records += 1
    size = 0
    for hour_ms, lines in by_hour.items():
        moment = datetime.fromtimestamp(hour_ms / 1000, tz=UTC)
        folder = lake / "raw" / f"dt={moment:%Y-%m-%d}" / f"hour={moment:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"airlake-raw-1-{moment:%Y-%m-%d-%H}-00-00-bench.gz"
        path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines)))
        size += path.stat().st_size
    return records, size, config.start


def folder_bytes(folder: Path, suffix: str = ".parquet") -> int:
    return sum(p.stat().st_size for p in folder.rglob(f"*{suffix}"))


def pruned_bytes(table: Path, dt: str, device: str) -> tuple[int, int]:
    """(bytes a one-day one-device query reads, total bytes of the table) from Parquet footers."""
    total = folder_bytes(table)
    needed = 0
    for path in sorted((table / f"dt={dt}").glob("*.parquet")):
        metadata = pq.ParquetFile(path).metadata
        names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        device_index = names.index("device_id")
        needed += 8 + 4  # the footer length and magic every reader fetches
        needed += metadata.serialized_size
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            stats = group.column(device_index).statistics
            if stats is not None and stats.has_min_max and not stats.min <= device <= stats.max:
                continue
            for c in range(group.num_columns):
                if names[c].split(".")[0] in QUERY_COLUMNS:
                    needed += group.column(c).total_compressed_size
    return needed, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=58)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="keep the lake in this folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="airlake-bench-"))
    lake = args.keep or workdir / "lake"
    try:
        t0 = time.perf_counter()
        records, raw_bytes, start = simulate_raw(lake, args.devices, args.days)
        print(
            f"simulated {records:,} records, {raw_bytes:,} raw gzip bytes in {time.perf_counter() - t0:.0f} s"
        )

        spark = local_spark("airlake-bench-cold-path")
        raw_glob = str(lake / "raw" / "dt=*" / "hour=*" / "*.gz")
        # Baseline: the same input with no contract at all (JSON inference + Parquet).
        t0 = time.perf_counter()
        spark.read.json(raw_glob).write.mode("overwrite").parquet(str(workdir / "baseline"))
        baseline_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        counts = run_raw_to_curated(
            spark, str(lake), paths=[str(lake / "raw")], calibrator=load_calibrator(None)
        )
        job_s = time.perf_counter() - t0
        print(json.dumps(counts, sort_keys=True, default=str)[:600])
        conserved = (
            counts["records_in"]
            == counts["readings_new"] + counts["quarantined"] + counts["duplicates_removed"]
        )
        print(f"conservation holds: {conserved}")
        emit(
            "cold_path.raw_to_curated_records_per_s",
            records / job_s,
            "records/s",
            round(records / baseline_s, 1),
        )

        curated = lake / "curated" / "readings"
        curated_bytes = folder_bytes(curated)
        emit("cold_path.curated_bytes_vs_raw_gzip", curated_bytes, "bytes", raw_bytes)

        day = (start + timedelta(days=args.days // 2)).date().isoformat()
        device = "aq-0001"
        needed, total = pruned_bytes(curated, day, device)
        emit("cold_path.one_day_one_device_bytes_read", needed, "bytes", total)

        from airlake.sql.runner import LocalLake

        rows = (
            LocalLake(lake)
            .query(
                f"SELECT count(*), count(co2), avg(temperature) FROM readings "
                f"WHERE dt = '{day}' AND device_id = '{device}'"
            )
            .rows
        )
        print(
            f"one-day one-device query for {device} on {day}: count, count(co2), avg(temperature) = {rows[0]}"
        )
        spark.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
