"""A tiny literal lake, written with pyarrow in the catalog's layout, for the SQL tests.

Timeline of 2024-03-10 (UTC), readings every 10 minutes:

    dev-001 (site-a)  10:00 10:10 | 10:20 10:30 ........ 11:00    firmware 1.0 | 1.1, a 30 min gap
    dev-002 (site-b)  10:00 10:10 10:20                           firmware 2.0, 2.1, back to 2.0
    dev-003 (site-b)  09:00 09:10                                 firmware 3.0, 3.1, then silent
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airlake.catalog import QUARANTINE, READINGS, ROLLUPS_DAILY, ROLLUPS_HOURLY, Table
from airlake.sql.runner import LocalLake

_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "binary": pa.binary(),
    "boolean": pa.bool_(),
    "map<string,double>": pa.map_(pa.string(), pa.float64()),
}


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 10, hour, minute, tzinfo=UTC)


def _arrow(athena_type: str) -> pa.DataType:
    if athena_type.startswith("decimal("):
        precision, scale = (int(p) for p in athena_type[8:-1].split(","))
        return pa.decimal128(precision, scale)
    return _ARROW[athena_type]


def _cell(value: Any, kind: pa.DataType) -> Any:
    """Floats for a decimal column become the decimals they print as (as the Spark job's cast does)."""
    if value is not None and pa.types.is_decimal(kind):
        return Decimal(repr(value))
    return value


def write_parquet(lake: Path, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Rows (dicts with dt) -> one Parquet file per dt, missing columns null, like the Spark jobs."""
    schema = pa.schema([(c.name, _arrow(c.type)) for c in table.columns])
    for dt in sorted({r["dt"] for r in rows}):
        part = [r for r in rows if r["dt"] == dt]
        columns = {
            c.name: [_cell(r.get(c.name), schema.field(c.name).type) for r in part] for c in table.columns
        }
        folder = lake / table.location / f"dt={dt}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns, schema=schema), folder / "part-00000.parquet")


def write_json_lines(folder: Path, name: str, rows: Sequence[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows)))


def reading(device: str, ts: datetime, seq: int, firmware: str, **channels: float) -> dict[str, Any]:
    return {
        "device_id": device,
        "ts": ts,
        "ts_ms": int(ts.timestamp() * 1000),
        "seq": seq,
        "firmware": firmware,
        "other_channels": {},
        **channels,
        "received_at": ts.replace(minute=0),
        "dt": ts.date().isoformat(),
    }


def rollup(device: str, channel: str, start: datetime, n: int, mean: float, **extra: float) -> dict[str, Any]:
    return {
        "device_id": device,
        "channel": channel,
        "period_start": start,
        "n": n,
        "mean": mean,
        "min": mean,
        "max": mean,
        "p95": mean,
        "dt": start.date().isoformat(),
        **extra,
    }


def build_lake(lake: Path) -> None:
    (lake / "reference" / "devices").mkdir(parents=True)
    devices = [
        {
            "device_id": "dev-001",
            "site": "site-a",
            "model": "aq-2",
            "installed": "2024-01-01",
            "reference": True,
        },
        {
            "device_id": "dev-002",
            "site": "site-b",
            "model": "aq-2",
            "installed": "2024-01-01",
            "reference": False,
        },
        {
            "device_id": "dev-003",
            "site": "site-b",
            "model": "aq-1",
            "installed": "2024-02-01",
            "reference": False,
        },
    ]
    (lake / "reference" / "devices" / "devices.json").write_bytes(
        b"".join(orjson.dumps(d) + b"\n" for d in devices)
    )
    write_parquet(
        lake,
        READINGS,
        [
            reading(
                "dev-001",
                at(10, 0),
                1,
                "1.0",
                co2=400.0,
                pm25=10.0,
                voc=100.0,
                temperature=20.0,
                humidity=40.0,
            ),
            reading(
                "dev-001",
                at(10, 10),
                2,
                "1.0",
                co2=410.0,
                pm25=12.0,
                voc=110.0,
                temperature=20.5,
                # sent finer than humidity's 2 decimals: the job keeps it in other_channels
                other_channels={"humidity": 41.005},
            ),
            reading("dev-001", at(10, 20), 3, "1.1", co2=420.0, pm25=14.0),
            reading("dev-001", at(10, 30), 4, "1.1", co2=430.0),
            reading("dev-001", at(11, 0), 5, "1.1", co2=440.0),
            reading("dev-002", at(10, 0), 1, "2.0", pm25=30.0),
            reading("dev-002", at(10, 10), 2, "2.1", pm25=31.0),
            reading("dev-002", at(10, 20), 3, "2.0", pm25=32.0),
            reading("dev-003", at(9, 0), 1, "3.0", co2=500.0),
            reading("dev-003", at(9, 10), 2, "3.1", co2=505.0),
        ],
    )
    raw10 = {"source_file": "raw/dt=2024-03-10/hour=10/f", "dt": "2024-03-10"}
    raw11 = {"source_file": "raw/dt=2024-03-10/hour=11/f", "dt": "2024-03-10"}
    raw_next_day = {"source_file": "raw/dt=2024-03-11/hour=00/f", "dt": "2024-03-11"}
    write_parquet(
        lake,
        QUARANTINE,
        [
            {"reason": "out_of_range", "device_id": "dev-001", "received_at": at(10), "line_no": 1} | raw10,
            {"reason": "out_of_range", "device_id": "dev-001", "received_at": at(11), "line_no": 2} | raw11,
            {"reason": "invalid_json", "device_id": None, "received_at": at(10), "line_no": 3} | raw10,
            {"reason": "invalid_json", "device_id": None, "received_at": at(0), "line_no": 1} | raw_next_day,
        ],
    )
    hot = {"stage": "calibrate", "reason": "invalid_json", "detail": "x", "device_id": None, "index": None}
    hot |= {
        "raw_text": "{",
        "raw_b64": None,
        "sequence_number": "1",
        "shard_id": "s",
        "arrival": "2024-03-10T10:00:00Z",
    }
    # The calibrate Lambda's copy of a bad device record, and a calibrated record only classify saw
    downstream = hot | {"stage": "classify", "reason": "wrong_type", "sequence_number": "2"}
    write_json_lines(lake / "hot" / "quarantine" / "dt=2024-03-10", "q-1.json.gz", [hot, downstream])
    alert = {"schema_version": "1", "channel": "co2", "episode_start": "2024-03-10T10:00:00Z", "detail": "m"}
    write_json_lines(
        lake / "hot" / "alerts" / "dt=2024-03-10",
        "a-1.json.gz",
        [
            {**alert, "alert_id": "a1", "status": "raised", "event_type": "high_co2", "category": "event"}
            | {"severity": "warning", "device_id": "dev-001", "site": "site-a", "value": 1600.0},
            {**alert, "alert_id": "a1", "status": "cleared", "event_type": "high_co2", "category": "event"}
            | {"severity": "warning", "device_id": "dev-001", "site": "site-a", "value": 900.0},
            {**alert, "alert_id": "a2", "status": "raised", "event_type": "stuck_sensor", "category": "fault"}
            | {"severity": "critical", "device_id": "dev-002", "site": "site-b", "value": 31.0},
        ],
    )
    write_json_lines(
        lake / "hot" / "aggregates" / "dt=2024-03-10",
        "g-1.json.gz",
        [
            {"device_id": "dev-001", "window": "tumbling_1h", "start": "2024-03-10T10:00:00.000Z"}
            | {"end": "2024-03-10T11:00:00.000Z", "start_ms": 1710064800000, "end_ms": 1710068400000}
            | {"expected": 6, "channels": ["co2", "pm25"], "counts": [2, 1], "means": [405.0, 12.5]}
            | {"mins": [400.0, 12.5], "maxes": [410.0, 12.5], "completeness": [1.0, 1 / 6]},
        ],
    )
    # dev-001: VOC follows the temperature of the hour before (off-gassing), hours 10..13.
    voc = [100.0, 110.0, 130.0, 160.0]
    temperature = [20.0, 21.0, 22.0, 25.0]
    hourly = []
    for i in range(4):
        hourly.append(rollup("dev-001", "voc", at(10 + i), 6, voc[i]))
        hourly.append(rollup("dev-001", "temperature", at(10 + i), 6, temperature[i], completeness=1.0))
    hourly.append(rollup("dev-001", "co2", at(10), 4, 415.0, completeness=4 / 6))
    hourly.append(rollup("dev-001", "pm25", at(10), 3, 12.0, completeness=0.5))
    write_parquet(lake, ROLLUPS_HOURLY, hourly)
    residual = {"residual_n": 20, "residual_mean": -0.1, "residual_mae": 0.3, "residual_rmse": 0.4}
    write_parquet(
        lake,
        ROLLUPS_DAILY,
        [
            rollup("dev-001", "co2", at(0), 5, 420.0, completeness=5 / 144),
            rollup("dev-001", "pm25", at(0), 3, 12.0),
            rollup("dev-002", "pm25", at(0), 3, 31.0),
            rollup("dev-003", "pm25", at(0), 2, 29.0),
            rollup("dev-001", "co", at(0), 20, 1.2, **residual),
        ],
    )


@pytest.fixture(scope="session")
def local_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLake]:
    root = tmp_path_factory.mktemp("sql_lake")
    build_lake(root)
    lake = LocalLake(root)
    yield lake
    lake.close()
