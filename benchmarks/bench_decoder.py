"""Decoder cost per record against bare `orjson.loads` of the same bytes (issue: <= 3x).

100,000 realistic records from the fleet simulator (11-15 channels, ISO and epoch timestamps).
Both loops run interleaved, best of 5, in this process, so the ratio is stable across machines.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airlake.contract import decode
from airlake.simulate import FleetConfig, Simulation

RECORDS = 100_000
ROUNDS = 5


def main() -> None:
    config = FleetConfig(devices=20, days=20, step_s=300, start=datetime(2026, 9, 1, tzinfo=UTC), seed=1)
    records = [r.data for r in itertools.islice(Simulation(config).records(), RECORDS)]
    received_ms = 1_800_000_000_000
    loads = orjson.loads
    floor, ours = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for data in records:
            loads(data)
        floor.append(time.perf_counter() - start)
        start = time.perf_counter()
        for data in records:
            decode(data, received_ms=received_ms)
        ours.append(time.perf_counter() - start)
    floor_us = min(floor) / len(records) * 1e6
    ours_us = min(ours) / len(records) * 1e6
    mean_bytes = sum(map(len, records)) / len(records)
    print(f"records: {len(records):,} (mean {mean_bytes:.0f} bytes)")
    print(f"orjson.loads: {floor_us:.2f} us/record   decode: {ours_us:.2f} us/record")
    print(
        orjson.dumps(
            {
                "bench": "decoder_us_per_record",
                "value": round(ours_us, 3),
                "unit": "us/record",
                "baseline": round(floor_us, 3),
                "ratio": round(ours_us / floor_us, 2),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
