"""Load run: at least 1,000,000 readings through the whole local pipeline (`make load`).

Reports readings/s per stage, peak memory (this process: producer, handlers, Spark driver; and the
endpoint process), and conservation (lost and duplicated readings, which must both be 0).

Baseline, measured in the same run on the same endpoint: the transport floor, i.e. PutRecords
plus one GetRecords pass of the same number of bytes-alike records with no handler at all. Each
stage's ratio is its throughput over that floor (1.0 would mean the handler costs nothing).
Default size: 100 devices x 37 days at 300 s, uploaded 4 to a record: about 1,010,000 readings once
the hours the UCI source has no data are taken out (35 days gave 960,025). About 30 minutes on 2
cores; `--devices/--days/--step/--upload-every` scale it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airlake.local import endpoint as local_endpoint
from airlake.local.pipeline import PipelineOptions, run
from airlake.local.verify import verify


def transport_floor(url: str, records: int) -> float:
    """Records/s of PutRecords + GetRecords alone on the endpoint (no handler)."""
    import boto3

    local_endpoint.activate(url)
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName="floor", ShardCount=2)
    data = orjson.dumps(
        {
            "device_id": "aq-0000",
            "ts": "2026-09-01T00:00:00.000Z",
            "seq": 1,
            "channels": {f"c{i}": 1234.5 for i in range(13)},
        }
    )
    started = time.perf_counter()
    for start in range(0, records, 500):
        batch = [
            {"Data": data, "PartitionKey": f"aq-{i % 100}"} for i in range(start, min(records, start + 500))
        ]
        kinesis.put_records(StreamName="floor", Records=batch)
    for shard in kinesis.list_shards(StreamName="floor")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="floor", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            reply = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            iterator = reply["NextShardIterator"]
            if not reply["Records"]:
                break
    return records / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--days", type=float, default=37.0)
    parser.add_argument("--step", type=int, default=300)
    parser.add_argument("--upload-every", type=int, default=4, help="readings per Kinesis record")
    parser.add_argument("--state-dir", type=Path)
    args = parser.parse_args()
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="airlake-load-"))

    floor_endpoint = local_endpoint.start()
    try:
        floor = transport_floor(floor_endpoint.url, 50_000)
    finally:
        floor_endpoint.stop()

    started = time.perf_counter()
    result = run(
        PipelineOptions(
            devices=args.devices,
            days=args.days,
            step_s=args.step,
            seed=1,
            malformed_rate=0.001,
            duplicate_rate=0.002,
            state_dir=state,
            progress=True,
            chunk_records=50_000,
        )
    )
    wall = time.perf_counter() - started
    report = verify(state)
    print("\n".join(report.lines))
    sent = result.manifest["records"]
    readings = result.manifest["readings"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{sent:,} records ({readings:,} valid readings) in {wall:.0f} s; peak RSS {peak_mb:.0f} MB "
        f"(endpoint {result.endpoint_peak_rss_mb or 0:.0f} MB); transport floor {floor:,.0f} records/s"
    )
    lines = []
    for timing in result.timings:
        if timing.records and timing.seconds:
            rate = timing.records / timing.seconds
            lines.append(
                {
                    "bench": f"load_{timing.name.replace(' ', '_').replace('->', 'to')}_readings_per_s",
                    "value": round(rate),
                    "unit": "readings/s",
                    "baseline": round(floor),
                    "ratio": round(rate / floor, 3),
                }
            )
    end_to_end = result.manifest["elements"] / wall  # readings (inside records) per second
    lines.append(
        {
            "bench": "load_end_to_end_readings_per_s",
            "value": round(end_to_end),
            "unit": "readings/s",
            "baseline": round(floor),
            "ratio": round(end_to_end / floor, 3),
        }
    )
    lines.append(
        {
            "bench": "load_peak_rss_mb",
            "value": round(peak_mb),
            "unit": "MB",
            "baseline": round(result.endpoint_peak_rss_mb or 0),
            "ratio": round(peak_mb / max(1.0, result.endpoint_peak_rss_mb or 1.0), 3),
        }
    )
    for line in lines:
        print(orjson.dumps(line).decode())
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
