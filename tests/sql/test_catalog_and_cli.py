"""The catalog's Glue parameters, and the `airlake sql` command's output formats."""

from __future__ import annotations

import json

import pytest

from airlake.catalog import READINGS, TABLES, table
from airlake.cli import main
from tests.sql.conftest import build_lake


def test_every_partitioned_table_has_projection_with_a_location_template() -> None:
    for t in TABLES:
        params = t.table_parameters("s3://lake-bucket")
        if not t.partition_keys:
            assert "projection.enabled" not in params, t.name
            continue
        keys = "".join(f"{k.name}=${{{k.name}}}/" for k in t.partition_keys)
        assert params["storage.location.template"] == f"s3://lake-bucket/{t.location}{keys}", t.name
        assert params["projection.dt.range"] == "2015-01-01,NOW"


def test_readings_parameters_exactly() -> None:
    assert READINGS.table_parameters("s3://b") == {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2015-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": "s3://b/curated/readings/dt=${dt}/",
    }


def test_column_names_are_unique_and_commented() -> None:
    for t in TABLES:
        names = [c.name for c in (*t.columns, *t.partition_keys)]
        assert len(names) == len(set(names)), t.name
        assert all(c.comment for c in (*t.columns, *t.partition_keys)), t.name


def test_unknown_table_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="readings"):
        table("nope")


def test_sql_command_prints_csv_and_json(tmp_path, capsys) -> None:
    # Given the fixture lake
    build_lake(tmp_path)
    # When the gaps query runs with --format csv, then json
    assert (
        main(["sql", "--lake", str(tmp_path), "--format", "csv", "--file", "athena/queries/device_gaps.sql"])
        == 0
    )
    csv_out = capsys.readouterr().out
    assert main(["sql", "--lake", str(tmp_path), "--format", "json", "SELECT 7 / 2 AS q"]) == 0
    json_out = capsys.readouterr().out
    # Then both print exactly the rows
    assert (
        csv_out
        == "device_id,silent_from,silent_until,gap_minutes\ndev-001,2024-03-10T10:30:00,2024-03-10T11:00:00,30\n"
    )
    assert [json.loads(line) for line in json_out.splitlines()] == [{"q": 3}]


def test_sql_command_reports_translation_errors(tmp_path, capsys) -> None:
    assert main(["sql", "--lake", str(tmp_path), "CREATE EXTERNAL TABLE x (a int) LOCATION 's3://b/'"]) == 1
    assert "airlake/catalog.py" in capsys.readouterr().err
