"""`airlake sql`: run Athena SQL on the local lake (DuckDB) or on the deployed Athena workgroup."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from airlake.cli._common import Subparsers, add_command


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "sql", "Run Athena SQL on the local lake (or on Athena with --engine athena)"
    )
    parser.add_argument("statement", nargs="?", help="one SQL statement (or use --file)")
    parser.add_argument("--file", type=Path, help="a .sql file, e.g. athena/queries/device_gaps.sql")
    parser.add_argument("--lake", type=Path, default=Path(".airlake/lake"), help="local lake folder")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    parser.add_argument("--engine", choices=("duckdb", "athena"), default="duckdb", help="where to run it")
    parser.add_argument("--workgroup", help="Athena workgroup (--engine athena)")
    parser.add_argument("--database", default="airlake", help="Glue database (--engine athena)")
    parser.add_argument("--show-sql", action="store_true", help="print the DuckDB translation to stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from airlake.sql.runner import LocalLake, Result, run_on_athena, sql_text
    from airlake.sql.transpile import TranspileError, transpile

    if (args.statement is None) == (args.file is None):
        print("give one SQL statement or --file", file=sys.stderr)
        return 2
    sql = sql_text(args.file) if args.file else args.statement.strip().rstrip(";")
    result: Result
    if args.engine == "athena":
        if not args.workgroup:
            print("--engine athena needs --workgroup", file=sys.stderr)
            return 2
        result = run_on_athena(sql, workgroup=args.workgroup, database=args.database)
    else:
        try:
            lake = LocalLake(args.lake)
            if args.show_sql:
                print(transpile(sql, lake.schema()), file=sys.stderr)
            result = lake.query(sql)
        except TranspileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    _print(result.columns, result.rows, args.format)
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    return value


def _print(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "json":
        for row in rows:
            print(json.dumps({c: _plain(v) for c, v in zip(columns, row, strict=True)}, default=str))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
        return
    text: list[list[str]] = [[("NULL" if v is None else str(_plain(v))) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for cells in text:
        print(" | ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
