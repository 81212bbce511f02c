"""Athena (Trino) SQL -> DuckDB SQL with sqlglot, plus fix-ups where a plain transpile differs.

sqlglot translates most of Athena's dialect; where its output would run but mean something else,
we rewrite the tree (and a test per rule proves Athena's answer on a literal example):

* `date_diff(unit, a, b)`: Trino counts whole units elapsed (23:00 -> 01:00 next day is 0 days);
  DuckDB's `date_diff` counts boundaries crossed (1 day). DuckDB's `date_sub` counts whole units,
  so the call is renamed.
* `a / b` with two integer operands: Trino divides integers (7 / 2 = 3, truncating toward zero);
  DuckDB's `/` returns 3.5. It becomes DuckDB's `//`, which truncates the same way. Operand types
  come from the registered tables and views; when a type cannot be known, we refuse rather than
  guess.
* `format_datetime(ts, pattern)`: Joda-style patterns, passed through untranslated by sqlglot (and
  unknown to DuckDB). Rewritten to `strftime` for the pattern letters we can map exactly; any other
  letter is an error naming it.
* `json_extract_scalar` / `json_extract` on text that is not JSON: NULL in Trino, an error in
  DuckDB (the raw zone holds garbage lines on purpose), so the call is guarded by `json_valid`.
* DDL other than `CREATE [OR REPLACE] VIEW`: sqlglot drops clauses such as `PARTITIONED BY`,
  `LOCATION` and `TBLPROPERTIES`; tables come from `airlake.catalog` instead, so such statements are
  refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

Schema = Mapping[str, Mapping[str, str]]

_INTEGER_TYPES = {
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
}
# Joda pattern letter runs -> strftime; only those whose output is identical.
_JODA_TO_STRFTIME: dict[str, str] = {
    "yyyy": "%Y",
    "YYYY": "%Y",
    "yy": "%y",
    "MM": "%m",
    "MMM": "%b",
    "MMMM": "%B",
    "dd": "%d",
    "HH": "%H",
    "hh": "%I",
    "mm": "%M",
    "ss": "%S",
    "SSS": "%g",
    "a": "%p",
    "EEE": "%a",
    "EEEE": "%A",
    "D": "%-j",
    "DDD": "%j",
}
_JODA_TOKEN = re.compile(r"'([^']*)'|([A-Za-z])\2*|([^A-Za-z']+)")


class TranspileError(ValueError):
    """The statement cannot be run on DuckDB with Athena's meaning."""


def transpile(sql: str, schema: Schema | None = None) -> str:
    """One Athena statement -> one DuckDB statement with Athena's semantics (or TranspileError)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        raise TranspileError(f"cannot parse as Athena SQL: {exc}") from exc
    if len(statements) != 1:
        raise TranspileError(f"expected one statement, found {len(statements)}")
    tree: Any = statements[0]
    _refuse_table_ddl(tree)
    tree = _annotate(tree, schema or {})
    tree = tree.transform(_fix_node)
    for node in list(tree.find_all(exp.JSONExtractScalar, exp.JSONExtract)):
        guarded = exp.If(
            this=exp.Anonymous(this="json_valid", expressions=[node.this.copy()]), true=node.copy()
        )
        if node is tree:
            return guarded.sql(dialect="duckdb")
        node.replace(guarded)
    out: str = tree.sql(dialect="duckdb")
    return out


def _refuse_table_ddl(tree: Any) -> None:
    if isinstance(tree, exp.Create):
        kind = (tree.args.get("kind") or "").upper()
        if kind != "VIEW":
            raise TranspileError(
                f"CREATE {kind} is not run locally: sqlglot drops PARTITIONED BY/LOCATION/TBLPROPERTIES; "
                "tables are defined once in airlake/catalog.py"
            )
    elif isinstance(tree, exp.Drop | exp.Alter | exp.Insert | exp.Delete | exp.Update):
        raise TranspileError(
            f"{type(tree).__name__.upper()} statements are not supported by the local runner"
        )


def _annotate(tree: Any, schema: Schema) -> Any:
    """Qualify and type the tree so integer division can be recognised (best effort)."""
    if not any(isinstance(node, exp.Div) and node.args.get("typed") for node in tree.find_all(exp.Div)):
        return tree
    plain: dict[str, object] = {name: dict(columns) for name, columns in schema.items()}
    try:
        qualified = qualify(tree.copy(), schema=plain, dialect="athena", validate_qualify_columns=False)
        return annotate_types(qualified, schema=plain, dialect="athena")
    except (OptimizeError, ValueError, KeyError):
        return annotate_types(tree, schema=plain, dialect="athena")


def _fix_node(node: Any) -> Any:
    if isinstance(node, exp.DateDiff):
        return _date_diff(node)
    if isinstance(node, exp.Div) and node.args.get("typed"):
        return _division(node)
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "format_datetime":
        return _format_datetime(node)
    return node


def _date_diff(node: exp.DateDiff) -> exp.Expression:
    unit = node.args.get("unit")
    unit_text = unit.name if isinstance(unit, exp.Expression) else str(unit or "day")
    # Athena: date_diff(unit, start, end) == end - start; sqlglot keeps end in `this`.
    return exp.Anonymous(
        this="date_sub", expressions=[exp.Literal.string(unit_text.lower()), node.expression, node.this]
    )


def _division(node: exp.Div) -> exp.Expression:
    left, right = node.this.type, node.expression.type
    unknown = exp.DataType.Type.UNKNOWN
    if left is None or right is None or unknown in (left.this, right.this):
        raise TranspileError(
            f"cannot tell whether {node.sql(dialect='athena')} is integer division (Athena truncates "
            "integer / integer); CAST one operand to DOUBLE or BIGINT to make it explicit"
        )
    if left.this in _INTEGER_TYPES and right.this in _INTEGER_TYPES:
        return exp.IntDiv(this=node.this, expression=node.expression)
    return node


def _format_datetime(node: exp.Anonymous) -> exp.Expression:
    args = node.expressions
    if len(args) != 2 or not isinstance(args[1], exp.Literal) or not args[1].is_string:
        raise TranspileError("format_datetime needs a literal pattern to run locally")
    return exp.Anonymous(
        this="strftime", expressions=[args[0], exp.Literal.string(joda_to_strftime(args[1].name))]
    )


def joda_to_strftime(pattern: str) -> str:
    """Translate a Joda-Time pattern, refusing letters whose output would differ."""
    out: list[str] = []
    for match in _JODA_TOKEN.finditer(pattern):
        quoted, letters, literal = match.group(1), match.group(0), match.group(3)
        if quoted is not None:
            out.append(quoted.replace("%", "%%") if quoted else "'")
        elif literal is not None:
            out.append(literal.replace("%", "%%"))
        elif letters in _JODA_TO_STRFTIME:
            out.append(_JODA_TO_STRFTIME[letters])
        else:
            raise TranspileError(f"format_datetime pattern letter {letters!r} has no exact DuckDB equivalent")
    return "".join(out)
