"""Spark schemas built from catalog type names (pyspark 3.5 has no DDL parser without a session)."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    DataType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

_SIMPLE: dict[str, DataType] = {
    "string": StringType(),
    "bigint": LongType(),
    "int": IntegerType(),
    "double": DoubleType(),
    "timestamp": TimestampType(),
    "binary": BinaryType(),
    "boolean": BooleanType(),
}


def spark_type(athena_type: str) -> DataType:
    """Athena (Hive DDL) type name -> Spark type, for the types the catalog uses."""
    text = athena_type.replace(" ", "").lower()
    if text in _SIMPLE:
        return _SIMPLE[text]
    if text.startswith("decimal(") and text.endswith(")"):
        precision, scale = text[8:-1].split(",")
        return DecimalType(int(precision), int(scale))
    if text.startswith("map<") and text.endswith(">"):
        key, value = text[4:-1].split(",", 1)
        return MapType(spark_type(key), spark_type(value), valueContainsNull=True)
    raise ValueError(f"no Spark type for catalog type {athena_type!r}")


def struct(columns: Iterable[tuple[str, str]]) -> StructType:
    """StructType of (name, Athena type) pairs, every field nullable."""
    return StructType([StructField(name, spark_type(kind), nullable=True) for name, kind in columns])
