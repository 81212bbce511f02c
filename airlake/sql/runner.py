"""Run Athena SQL on the local lake with DuckDB (or on the deployed workgroup with awswrangler).

Every table of `airlake.catalog` becomes a DuckDB view over the lake folder (Hive partitions from
the folder layout, columns cast to the catalog's types), then every `athena/views/*.sql` view is
created from its transpiled text, so analysts' queries see exactly the objects Athena has.

A table with no files yet is an empty view with the right columns, so every query runs on a
fresh lake. The raw zone is text that may not be UTF-8: it is read with Python (invalid bytes
replaced, as Athena's text SerDe does) and only when a statement names `raw_readings`.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from airlake.catalog import RAW_READINGS, TABLES, Table
from airlake.sql.transpile import TranspileError, transpile

ATHENA_DIR = Path(__file__).resolve().parent.parent.parent / "athena"
DEFAULT_LAKE = Path(".airlake/lake")

_DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
    "boolean": "BOOLEAN",
    "map<string,double>": "MAP(VARCHAR, DOUBLE)",
}
_VIEW_NAME = re.compile(r"create\s+or\s+replace\s+view\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def duckdb_type(athena_type: str) -> str:
    """Athena (Hive DDL) type -> DuckDB type, including array<t>, map<k,v> and struct<name:type,...>."""
    text = athena_type.replace(" ", "")
    lowered = text.lower()
    if lowered in _DUCKDB_TYPES:
        return _DUCKDB_TYPES[lowered]
    if lowered.startswith("decimal(") and text.endswith(")"):
        precision, scale = (int(part) for part in text[8:-1].split(","))
        return f"DECIMAL({precision}, {scale})"
    if lowered.startswith("array<") and text.endswith(">"):
        return f"{duckdb_type(text[6:-1])}[]"
    if lowered.startswith("map<") and text.endswith(">"):
        key, value = _split_top(text[4:-1])
        return f"MAP({duckdb_type(key)}, {duckdb_type(value)})"
    if lowered.startswith("struct<") and text.endswith(">"):
        fields = []
        for item in _split_top(text[7:-1]):
            name, kind = item.split(":", 1)
            fields.append(f'"{name}" {duckdb_type(kind)}')
        return f"STRUCT({', '.join(fields)})"
    raise ValueError(f"no DuckDB type for catalog type {athena_type!r}")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside <...>."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


@dataclass(frozen=True, slots=True)
class Result:
    """Column names and rows of one query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def sql_text(path: Path) -> str:
    """A .sql file's statement (trailing semicolon removed)."""
    return path.read_text(encoding="utf-8").strip().rstrip(";").strip()


def view_files(athena_dir: Path = ATHENA_DIR) -> list[Path]:
    return sorted((athena_dir / "views").glob("*.sql"))


class LocalLake:
    """A DuckDB connection with the lake's tables and the Athena views registered."""

    def __init__(self, lake: Path | str = DEFAULT_LAKE, *, athena_dir: Path = ATHENA_DIR) -> None:
        self.lake = Path(lake)
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self._raw_registered = False
        for table in TABLES:
            if table is not RAW_READINGS:
                self.connection.execute(f"CREATE OR REPLACE VIEW {table.name} AS {self._table_select(table)}")
        self._register_views(view_files(athena_dir))

    # --- tables -----------------------------------------------------------------------------
    def _files(self, table: Table) -> list[str]:
        base = self.lake / table.location
        pattern = "/".join(["*"] * len(table.partition_keys) + ["*"])
        return sorted(
            str(path)
            for path in base.glob(pattern)
            if path.is_file() and not path.name.startswith((".", "_")) and not path.name.endswith(".crc")
        )

    def _table_select(self, table: Table) -> str:
        columns = [*table.columns, *table.partition_keys]
        files = self._files(table)
        if not files:
            typed_nulls = ", ".join(f"CAST(NULL AS {duckdb_type(c.type)}) AS {c.name}" for c in columns)
            return f"SELECT {typed_nulls} WHERE false"
        file_list = "[" + ", ".join(_quote(f) for f in files) + "]"
        hive = ", ".join(f"{_quote(k.name)}: 'VARCHAR'" for k in table.partition_keys)
        hive_args = f", hive_partitioning = true, hive_types = {{{hive}}}" if table.partition_keys else ""
        if table.format == "parquet":
            source = f"read_parquet({file_list}, union_by_name = true{hive_args})"
        else:
            spec = ", ".join(f"{_quote(c.name)}: '{duckdb_type(c.type)}'" for c in table.columns)
            json_format = "auto" if not table.partition_keys else "newline_delimited"
            source = f"read_json({file_list}, format = '{json_format}', columns = {{{spec}}}{hive_args})"
        select = ", ".join(f'CAST("{c.name}" AS {duckdb_type(c.type)}) AS "{c.name}"' for c in columns)
        return f"SELECT {select} FROM {source}"

    def _register_raw(self) -> None:
        """raw_readings: every line of every raw object, decoded as UTF-8 with replacement."""
        if self._raw_registered:
            return
        lines: list[str] = []
        dts: list[str] = []
        hours: list[str] = []
        base = self.lake / RAW_READINGS.location
        for path in sorted(base.glob("dt=*/hour=*/*")):
            if not path.is_file() or path.name.startswith((".", "_")):
                continue
            content = path.read_bytes()
            if content[:2] == b"\x1f\x8b":
                content = gzip.decompress(content)
            dt, hour = path.parent.parent.name[3:], path.parent.name[5:]
            records = content.split(b"\n")
            if records and records[-1] == b"":
                records.pop()
            for record in records:
                lines.append(record.decode("utf-8", errors="replace"))
                dts.append(dt)
                hours.append(hour)
        import pyarrow as pa

        arrow = pa.table({"line": pa.array(lines, pa.string()), "dt": dts, "hour": hours})
        self.connection.register("raw_readings", arrow)
        self._raw_registered = True

    # --- views ------------------------------------------------------------------------------
    def schema(self) -> dict[str, dict[str, str]]:
        """Column types of every registered table and view (for the integer-division rule)."""
        rows = self.connection.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
        ).fetchall()
        out: dict[str, dict[str, str]] = {}
        for table_name, column, data_type in rows:
            out.setdefault(table_name, {})[column] = data_type
        return out

    def _register_views(self, files: Iterable[Path]) -> None:
        """Create every view; a view may use another, so retry until no progress is made."""
        pending = {path: sql_text(path) for path in files}
        errors: dict[Path, str] = {}
        while pending:
            progressed = False
            for path, text in list(pending.items()):
                try:
                    self.connection.execute(transpile(text, self.schema()))
                except (duckdb.Error, TranspileError) as exc:
                    errors[path] = str(exc)
                    continue
                del pending[path]
                errors.pop(path, None)
                progressed = True
            if not progressed:
                detail = "; ".join(f"{p.name}: {e}" for p, e in errors.items())
                raise TranspileError(f"views could not be created locally: {detail}")

    # --- queries ----------------------------------------------------------------------------
    def query(self, sql: str) -> Result:
        """Run one Athena statement; a view definition replaces the view and returns no rows."""
        if "raw_readings" in sql.lower():
            self._register_raw()
        statement = transpile(sql, self.schema())
        cursor = self.connection.execute(statement)
        if cursor.description is None:
            return Result([], [])
        columns = [d[0] for d in cursor.description]
        return Result(columns, cursor.fetchall())

    def close(self) -> None:
        self.connection.close()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_name(sql: str) -> str | None:
    match = _VIEW_NAME.search(sql)
    return match.group(1) if match else None


def run_on_athena(
    sql: str, *, workgroup: str, database: str, params: Mapping[str, str] | None = None
) -> Result:
    """The same statement on the deployed Athena workgroup (awswrangler, no CTAS)."""
    import awswrangler as wr

    frame = wr.athena.read_sql_query(sql, database=database, workgroup=workgroup, ctas_approach=False)
    return Result([str(c) for c in frame.columns], [tuple(r) for r in frame.itertuples(index=False)])
