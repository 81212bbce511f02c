"""Every athena/*.sql file runs through the local runner on the fixture lake with checked results."""

from __future__ import annotations

import statistics
from datetime import datetime
from pathlib import Path

import pytest

from airlake.sql.runner import ATHENA_DIR, LocalLake, sql_text

QUERIES = ATHENA_DIR / "queries"


def t(hour: int, minute: int = 0) -> datetime:
    # DuckDB returns TIMESTAMP values naive; the connection runs in UTC.
    return datetime(2024, 3, 10, hour, minute)  # noqa: DTZ001


def run(lake: LocalLake, name: str) -> list[tuple[object, ...]]:
    return lake.query(sql_text(QUERIES / f"{name}.sql")).rows


def view(lake: LocalLake, name: str, order: str) -> list[tuple[object, ...]]:
    return lake.query(f"SELECT * FROM {name} ORDER BY {order}").rows


def test_every_sql_file_starts_with_the_question_it_answers() -> None:
    files = sorted(ATHENA_DIR.glob("*/*.sql"))
    assert len(files) >= 14
    for path in files:
        assert path.read_text(encoding="utf-8").startswith("-- "), path.name


def test_every_query_file_is_covered_below() -> None:
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert {p.stem for p in QUERIES.glob("*.sql")} <= tested


def test_one_device_day(local_lake: LocalLake) -> None:
    assert run(local_lake, "one_device_day") == [
        (t(10, 0), 400.0, 10.0, 100.0, 20.0, 40.0),
        (t(10, 10), 410.0, 12.0, 110.0, 20.5, 41.005),  # from other_channels, through the view
        (t(10, 20), 420.0, 14.0, None, None, None),
        (t(10, 30), 430.0, None, None, None, None),
        (t(11, 0), 440.0, None, None, None, None),
    ]


def test_view_readings_gives_channels_as_exact_doubles(local_lake: LocalLake) -> None:
    # Given curated_readings with decimal channel columns and one humidity kept in other_channels
    table_types = dict(
        local_lake.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'curated_readings'"
        ).rows
    )
    assert (table_types["co2"], table_types["humidity"]) == ("DECIMAL(9,1)", "DECIMAL(9,2)")
    # When analysts query the readings view
    view_types = dict(
        local_lake.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'readings'"
        ).rows
    )
    rows = local_lake.query(
        "SELECT seq, co2, humidity, other_channels FROM readings WHERE device_id = 'dev-001' AND seq <= 2 ORDER BY seq"
    ).rows
    # Then every channel is a double equal to the value sent, whichever column stored it
    assert {view_types[c] for c in ("co2", "humidity", "co", "mox_co")} == {"DOUBLE"}
    assert rows == [(1, 400.0, 40.0, {}), (2, 410.0, 41.005, {"humidity": 41.005})]
    assert set(view_types) == {*table_types}  # the view has every column of the table


def test_device_gaps(local_lake: LocalLake) -> None:
    # Only dev-001's 10:30 -> 11:00 silence is longer than 15 minutes.
    assert run(local_lake, "device_gaps") == [("dev-001", t(10, 30), t(11, 0), 30)]


def test_failed_upgrades(local_lake: LocalLake) -> None:
    # dev-002 went back to 2.0 (its change back is not an upgrade); dev-003 fell silent right after
    # upgrading while the fleet reported until 11:00; dev-001's upgrade is healthy.
    assert run(local_lake, "failed_upgrades") == [
        ("dev-002", "2.0", "2.1", t(10, 10), "rolled_back"),
        ("dev-003", "3.0", "3.1", t(9, 10), "went_silent"),
    ]


def test_firmware_rollout_impact(local_lake: LocalLake) -> None:
    # dev-001: 1.0 sent 2 readings over 10 min (rate floor: 1 h), 1.1 sent 3 over 40 min; the two
    # out_of_range records arrived in hours 10 and 11, after 1.1 started: 2 / (3 + 2) = 0.4.
    assert run(local_lake, "firmware_rollout_impact") == [
        ("dev-001", "1.0", "1.1", t(10, 20), 2.0, 3.0, 0.0, 0.4),
        ("dev-002", "2.0", "2.1", t(10, 10), 2.0, 1.0, 0.0, 0.0),
        ("dev-003", "3.0", "3.1", t(9, 10), 1.0, 1.0, 0.0, 0.0),
    ]


def test_alert_counts_by_type(local_lake: LocalLake) -> None:
    # a1 was raised and cleared (two documents, one alert); a2 is still open.
    assert run(local_lake, "alert_counts_by_type") == [
        ("2024-03-10", "event", "high_co2", "warning", 1, 1, 1),
        ("2024-03-10", "fault", "stuck_sensor", "critical", 1, 0, 1),
    ]


def test_offgassing_voc_temperature(local_lake: LocalLake) -> None:
    voc, temperature = [100.0, 110.0, 130.0, 160.0], [20.0, 21.0, 22.0, 25.0]
    [(device, hours, same_hour, lagged)] = run(local_lake, "offgassing_voc_temperature")
    assert (device, hours) == ("dev-001", 4)
    assert same_hour == pytest.approx(statistics.correlation(voc, temperature), rel=1e-12)
    assert lagged == pytest.approx(statistics.correlation(voc[1:], temperature[:-1]), rel=1e-12)


def test_calibration_residuals(local_lake: LocalLake) -> None:
    assert run(local_lake, "calibration_residuals") == [
        ("dev-001", "site-a", "co", "2024-03-10", 20, -0.1, 0.3, 0.4)
    ]


def test_quarantine_reasons_over_time(local_lake: LocalLake) -> None:
    # On the 10th: 1 invalid_json and 2 out_of_range from the batch quarantine; the calibrate Lambda's
    # copy of the invalid_json record is not counted again; classify's wrong_type is only in hot.
    assert run(local_lake, "quarantine_reasons_over_time") == [
        ("2024-03-10", "out_of_range", 2, 0.5),
        ("2024-03-10", "invalid_json", 1, 0.25),
        ("2024-03-10", "wrong_type", 1, 0.25),
        ("2024-03-11", "invalid_json", 1, 1.0),
    ]


def test_site_air_quality_daily(local_lake: LocalLake) -> None:
    # site-b's two devices average (31 + 29) / 2 = 30 ug/m3 PM2.5, worse than site-a's 12.
    assert run(local_lake, "site_air_quality_daily") == [
        ("site-b", "2024-03-10", 2, None, 30.0, 31.0, None, None),
        ("site-a", "2024-03-10", 1, 420.0, 12.0, 12.0, None, None),
    ]


def test_view_device_lifecycle(local_lake: LocalLake) -> None:
    assert view(local_lake, "device_lifecycle", "device_id") == [
        ("dev-001", "site-a", "aq-2", t(10, 0), t(11, 0), 5, 2, 2, 2.5, 1.0, 1800),
        ("dev-002", "site-b", "aq-2", t(10, 0), t(10, 20), 3, 1, 1, 3.0, 1.0, 600),
        ("dev-003", "site-b", "aq-1", t(9, 0), t(9, 10), 2, 1, 1, 2.0, 1.0, 600),
    ]


def test_view_air_quality_hourly(local_lake: LocalLake) -> None:
    rows = view(local_lake, "air_quality_hourly", "hour_start")
    assert [r[:8] + r[11:] for r in rows] == [
        ("dev-001", "site-a", t(10), "2024-03-10", 415.0, 12.0, 12.0, 100.0, 20.0, None, 6, 1.0),
        ("dev-001", "site-a", t(11), "2024-03-10", None, None, None, 110.0, 21.0, None, 6, 1.0),
        ("dev-001", "site-a", t(12), "2024-03-10", None, None, None, 130.0, 22.0, None, 6, 1.0),
        ("dev-001", "site-a", t(13), "2024-03-10", None, None, None, 160.0, 25.0, None, 6, 1.0),
    ]


def test_view_air_quality_daily(local_lake: LocalLake) -> None:
    rows = view(local_lake, "air_quality_daily", "device_id")
    assert [(r[0], r[1], r[4], r[6], r[9], r[12]) for r in rows] == [
        ("dev-001", "site-a", 420.0, 12.0, 1.2, 20),
        ("dev-002", "site-b", None, 31.0, None, 3),
        ("dev-003", "site-b", None, 29.0, None, 2),
    ]


def test_view_quarantine_daily(local_lake: LocalLake) -> None:
    assert view(local_lake, "quarantine_daily", "source_path, stage_name, dt, reason") == [
        ("batch", "raw_to_curated", "2024-03-10", "invalid_json", 1, 0),
        ("batch", "raw_to_curated", "2024-03-10", "out_of_range", 2, 1),
        ("batch", "raw_to_curated", "2024-03-11", "invalid_json", 1, 0),
        ("hot", "calibrate", "2024-03-10", "invalid_json", 1, 0),
        ("hot", "classify", "2024-03-10", "wrong_type", 1, 0),
    ]


def test_view_firmware_periods(local_lake: LocalLake) -> None:
    rows = view(local_lake, "firmware_periods", "device_id, version_order")
    assert [(r[0], r[1], r[4], r[5], r[6]) for r in rows] == [
        ("dev-001", "1.0", 2, 0, 1),
        ("dev-001", "1.1", 3, 2, 2),
        ("dev-002", "2.0", 2, 0, 1),
        ("dev-002", "2.1", 1, 0, 2),
        ("dev-003", "3.0", 1, 0, 1),
        ("dev-003", "3.1", 1, 0, 2),
    ]


def test_raw_readings_keeps_garbage_and_non_utf8_lines(tmp_path: Path) -> None:
    # Given a raw object with a reading, garbage and a non-UTF-8 line
    import gzip

    folder = tmp_path / "raw" / "dt=2024-03-10" / "hour=10"
    folder.mkdir(parents=True)
    (folder / "f.gz").write_bytes(gzip.compress(b'{"device_id":"d"}\nnot json{\n\xff{}\n'))
    lake = LocalLake(tmp_path)
    # When analysts parse it with json_extract_scalar
    rows = lake.query(
        "SELECT line, json_extract_scalar(line, '$.device_id') AS device_id, dt, hour FROM raw_readings"
    ).rows
    # Then every line is there (invalid bytes replaced, as Athena's text SerDe reads them)
    assert sorted(rows, key=repr) == sorted(
        [
            ('{"device_id":"d"}', "d", "2024-03-10", "10"),
            ("not json{", None, "2024-03-10", "10"),
            ("\ufffd{}", None, "2024-03-10", "10"),
        ],
        key=repr,
    )


def test_hot_aggregates_arrays_become_one_row_per_window_and_channel(local_lake: LocalLake) -> None:
    # Given one closed hour of dev-001 with co2 and pm25 as parallel arrays (tests/sql/conftest.py)
    # When analysts query the aggregate_channels view
    rows = local_lake.query(
        "SELECT device_id, window, window_start, window_end, expected, channel, n, mean, min, max,"
        " completeness, dt FROM aggregate_channels ORDER BY channel"
    ).rows
    # Then each channel is a row, its figures taken from the same position of every array
    hour = ("dev-001", "tumbling_1h", "2024-03-10T10:00:00.000Z", "2024-03-10T11:00:00.000Z", 6)
    assert rows == [
        (*hour, "co2", 2, 405.0, 400.0, 410.0, 1.0, "2024-03-10"),
        (*hour, "pm25", 1, 12.5, 12.5, 12.5, 1 / 6, "2024-03-10"),
    ]
