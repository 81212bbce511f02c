"""Each fix-up of the Athena -> DuckDB translation gives Athena's answer on a literal example."""

from __future__ import annotations

import duckdb
import pytest

from airlake.sql.transpile import TranspileError, joda_to_strftime, transpile


def athena(sql: str, schema: dict[str, dict[str, str]] | None = None) -> list[tuple[object, ...]]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("CREATE TABLE t AS SELECT 7::BIGINT AS n, 2.0::DOUBLE AS x, '{bad' AS line")
    return connection.execute(transpile(sql, schema)).fetchall()


def test_date_diff_counts_whole_units_elapsed_not_boundaries() -> None:
    # 23:00 -> 01:00 the next day is 2 hours: Athena says 0 days (DuckDB's date_diff would say 1).
    sql = "SELECT date_diff('day', TIMESTAMP '2024-01-01 23:00:00', TIMESTAMP '2024-01-02 01:00:00')"
    assert athena(sql) == [(0,)]
    # and Jan 15 -> Feb 14 is not a full month (DuckDB's date_diff counts the month boundary: 1)
    assert athena("SELECT date_diff('month', DATE '2024-01-15', DATE '2024-02-14')") == [(0,)]


def test_integer_division_truncates_like_athena() -> None:
    assert athena("SELECT 7 / 2, -7 / 2, 7.0 / 2") == [(3, -3, 3.5)]


def test_integer_division_uses_column_types() -> None:
    schema = {"t": {"n": "bigint", "x": "double"}}
    assert athena("SELECT n / 2 AS a, x / 4 AS b, CAST(n AS double) / 2 AS c FROM t", schema) == [
        (3, 0.5, 3.5)
    ]


def test_division_with_unknown_operand_types_is_refused() -> None:
    with pytest.raises(TranspileError, match="integer division"):
        transpile("SELECT n / 2 FROM unknown_table")


def test_format_datetime_joda_pattern() -> None:
    sql = "SELECT format_datetime(TIMESTAMP '2024-03-10 09:05:07.123', 'yyyy-MM-dd''T''HH:mm:ss.SSS')"
    assert athena(sql) == [("2024-03-10T09:05:07.123",)]


def test_format_datetime_unmappable_letter_is_refused() -> None:
    with pytest.raises(TranspileError, match="'ww'"):
        joda_to_strftime("yyyy-ww")


def test_json_extract_scalar_on_garbage_is_null() -> None:
    assert athena("SELECT json_extract_scalar(line, '$.a') FROM t") == [(None,)]
    assert athena("SELECT json_extract_scalar('{\"a\": \"x\"}', '$.a')") == [("x",)]


def test_table_ddl_is_refused_because_sqlglot_drops_its_clauses() -> None:
    ddl = "CREATE EXTERNAL TABLE x (a int) PARTITIONED BY (dt string) LOCATION 's3://b/x/'"
    with pytest.raises(TranspileError, match=r"airlake/catalog\.py"):
        transpile(ddl)


def test_several_statements_are_refused() -> None:
    with pytest.raises(TranspileError, match="one statement"):
        transpile("SELECT 1; SELECT 2")
