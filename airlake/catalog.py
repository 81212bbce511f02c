"""Table definitions of the lake: the one source of truth for the Glue Data Catalog and local SQL.

The CDK stack turns every `Table` here into a Glue `CfnTable` (with partition projection, so no
crawler or `MSCK REPAIR` is ever needed); the local SQL runner (`airlake.sql`) registers the same
tables as DuckDB views over the local lake folder; the Spark jobs build their output schemas from
the same column lists. Column types are Athena (Hive DDL) type names, which Spark's DDL parser also
reads. This module imports nothing heavier than the standard library and the contract's limits on
purpose: the CDK app and the CLI import it.

Partition projection: `dt` is a date projected from the fleet epoch to `NOW`; Athena computes the
partition locations from `storage.location.template` instead of listing the catalog, so a new
day's folder is queryable the moment it is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from airlake.contract.limits import CHANNEL_DECIMALS

TableFormat = Literal["parquet", "json", "text"]

DATABASE_DEFAULT: Final = "airlake"
PROJECTION_START_DATE: Final = "2015-01-01"  # the fleet epoch (airlake.contract.limits.FLEET_EPOCH)

# Hive / Glue storage descriptors per format.
_PARQUET_SERDE: Final = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
_PARQUET_INPUT: Final = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
_PARQUET_OUTPUT: Final = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
_JSON_SERDE: Final = "org.openx.data.jsonserde.JsonSerDe"
_TEXT_SERDE: Final = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
_TEXT_INPUT: Final = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUTPUT: Final = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


@dataclass(frozen=True, slots=True)
class Column:
    """One column: Athena type name (also valid Spark DDL) and a comment with its unit."""

    name: str
    type: str
    comment: str


@dataclass(frozen=True, slots=True)
class Table:
    """A lake table: where its files live, how they are stored, its columns and partitions.

    `location` is relative to the lake root (`s3://bucket` or a local folder) and ends with `/`.
    """

    name: str
    description: str
    location: str
    format: TableFormat
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...] = ()
    # extra serde parameters (e.g. the text table's field delimiter)
    serde_parameters: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def location_uri(self, lake_root: str) -> str:
        return f"{lake_root.rstrip('/')}/{self.location}"

    @property
    def serde_library(self) -> str:
        return {"parquet": _PARQUET_SERDE, "json": _JSON_SERDE, "text": _TEXT_SERDE}[self.format]

    @property
    def input_format(self) -> str:
        return _PARQUET_INPUT if self.format == "parquet" else _TEXT_INPUT

    @property
    def output_format(self) -> str:
        return _PARQUET_OUTPUT if self.format == "parquet" else _TEXT_OUTPUT

    def table_parameters(self, lake_root: str) -> dict[str, str]:
        """Glue table parameters: classification plus partition projection for every partition key."""
        params: dict[str, str] = {
            "classification": self.format if self.format != "text" else "csv",
            "EXTERNAL": "TRUE",
        }
        if self.format in {"json", "text"}:
            params["compressionType"] = "gzip"
        if not self.partition_keys:
            return params
        params["projection.enabled"] = "true"
        template = self.location_uri(lake_root)
        for key in self.partition_keys:
            template += f"{key.name}=${{{key.name}}}/"
            if key.name == "dt":
                params.update(
                    {
                        "projection.dt.type": "date",
                        "projection.dt.format": "yyyy-MM-dd",
                        "projection.dt.range": f"{PROJECTION_START_DATE},NOW",
                        "projection.dt.interval": "1",
                        "projection.dt.interval.unit": "DAYS",
                    }
                )
            elif key.name == "hour":
                params.update(
                    {
                        "projection.hour.type": "integer",
                        "projection.hour.range": "0,23",
                        "projection.hour.digits": "2",
                    }
                )
            else:  # pragma: no cover - guarded by a test over every table
                raise ValueError(f"no projection rule for partition key {key.name!r}")
        params["storage.location.template"] = template
        return params


_DT_EVENT = Column("dt", "string", "event-time date (UTC) of the reading, yyyy-MM-dd")
_DT_ARRIVAL = Column("dt", "string", "arrival date (UTC) of the record, yyyy-MM-dd")
_DT_PERIOD = Column("dt", "string", "UTC date of the period start, yyyy-MM-dd")
_DT_WINDOW = Column("dt", "string", "UTC date of the window start (aggregates) or of the transition (alerts)")

# Channels stored as top-level columns of curated readings (cheap column pruning); any other channel
# a device sends is kept in the `other_channels` map, so every channel sent is in exactly one place
# (a copy of the known ones in the map doubled the table's size: map values do not compress). Units follow airlake.contract.limits.CHANNEL_RANGES.
WIDE_CHANNELS: Final[tuple[tuple[str, str], ...]] = (
    ("co2", "CO2 concentration, ppm (NDIR)"),
    ("pm25", "PM2.5 mass concentration, ug/m3"),
    ("pm10", "PM10 mass concentration, ug/m3"),
    ("voc", "total VOC, ppb isobutylene equivalent"),
    ("temperature", "air temperature, degC"),
    ("humidity", "relative humidity, %RH"),
    ("abs_humidity", "absolute humidity, g/m3"),
    ("mox_co", "raw metal-oxide CO sensor response, counts (UCI PT08.S1)"),
    ("mox_nmhc", "raw metal-oxide NMHC sensor response, counts (UCI PT08.S2)"),
    ("mox_nox", "raw metal-oxide NOx sensor response, counts (UCI PT08.S3)"),
    ("mox_no2", "raw metal-oxide NO2 sensor response, counts (UCI PT08.S4)"),
    ("mox_o3", "raw metal-oxide O3 sensor response, counts (UCI PT08.S5)"),
    ("ref_co", "reference analyser CO, mg/m3 (co-located devices only)"),
    ("ref_nox", "reference analyser NOx, ppb (co-located devices only)"),
    ("ref_no2", "reference analyser NO2, ug/m3 (co-located devices only)"),
    ("ref_c6h6", "reference analyser benzene, ug/m3 (co-located devices only)"),
)
CALIBRATED_CHANNELS: Final[tuple[tuple[str, str, str], ...]] = (
    # (calibrated output, reference channel it is checked against, comment)
    ("co", "ref_co", "calibrated CO, mg/m3 (null when the device has no calibration model)"),
    ("nox", "ref_nox", "calibrated NOx, ppb (null when the device has no calibration model)"),
    ("no2", "ref_no2", "calibrated NO2, ug/m3 (null when the device has no calibration model)"),
)

RAW_READINGS = Table(
    name="raw_readings",
    description=(
        "The raw zone exactly as Firehose wrote it: one Kinesis record per line (a reading, a JSON "
        "array of readings, or garbage). Partitions are arrival time. Parse with json_extract_*."
    ),
    location="raw/",
    format="text",
    columns=(Column("line", "string", "one Kinesis record's bytes, unchanged (UTF-8 text)"),),
    partition_keys=(
        Column("dt", "string", "arrival date (UTC) at Firehose, yyyy-MM-dd"),
        Column("hour", "string", "arrival hour (UTC) at Firehose, 00-23"),
    ),
    # \u0001 never occurs in JSON text, so each line is one column whatever it contains.
    serde_parameters={"field.delim": "\u0001", "serialization.format": "\u0001"},
)

# Channel columns of curated readings are exact decimals at the contract's resolution
# (CHANNEL_DECIMALS): stored as scaled integers, which delta-encode and compress to a fraction of
# doubles. Precision 9 (an INT32 in Parquet) holds every value the contract's ranges allow.
CHANNEL_PRECISION: Final = 9


def channel_type(name: str) -> str:
    """Athena type of a channel column of curated readings: decimal(9, the channel's decimals)."""
    return f"decimal({CHANNEL_PRECISION},{CHANNEL_DECIMALS[name]})"


READINGS = Table(
    name="curated_readings",
    description=(
        "Valid readings, decoded with the contract's rules, de-duplicated on (device_id, ts_ms, seq) "
        "keeping the earliest arrival, calibrated, partitioned by event-time date. Channels are "
        "exact decimals at the contract's resolution; analysts query the `readings` view (doubles)."
    ),
    location="curated/readings/",
    format="parquet",
    columns=(
        Column("device_id", "string", "producer device id"),
        Column("ts", "timestamp", "event time (UTC) set by the device"),
        Column("ts_ms", "bigint", "event time, epoch milliseconds (UTC)"),
        Column("seq", "bigint", "producer sequence number, increasing per device"),
        Column("firmware", "string", "firmware version reported with the reading"),
        Column("model", "string", "device hardware model reported with the reading"),
        Column(
            "other_channels",
            "map<string,double>",
            "channels sent that have no column of their own (new or unknown names), raw units; also a "
            "known channel's value when it was sent finer than the column's resolution (column null)",
        ),
        *(Column(name, channel_type(name), comment) for name, comment in WIDE_CHANNELS),
        *(Column(name, channel_type(name), comment) for name, _ref, comment in CALIBRATED_CHANNELS),
        Column("model_version", "string", "calibration model version used (null when none)"),
        Column("received_at", "timestamp", "arrival (processing) time: start of the raw partition hour"),
        Column("source_file", "string", "raw object the reading was read from (lineage)"),
        Column("line_no", "bigint", "1-based line of the record in source_file"),
        Column("element_index", "int", "position in a JSON-array payload (0 for a single object)"),
    ),
    partition_keys=(_DT_EVENT,),
)
# Columns of curated readings written with Parquet's delta encoding instead of a dictionary: sorted
# by device and time, consecutive values differ by little (see glue_jobs._lake.write_partitions).
READINGS_DELTA_COLUMNS: Final[tuple[str, ...]] = (
    "ts",
    "ts_ms",
    "seq",
    "line_no",
    *(name for name, _comment in WIDE_CHANNELS),
    *(name for name, _ref, _comment in CALIBRATED_CHANNELS),
)

QUARANTINE = Table(
    name="quarantine",
    description="Records of the raw zone that broke the reading contract, with the reason code and payload.",
    location="curated/quarantine/",
    format="parquet",
    columns=(
        Column("reason", "string", "reason code (airlake.contract.Reason), e.g. invalid_json"),
        Column("detail", "string", "human-readable detail of the reason"),
        Column("raw", "binary", "the record's original bytes (array element re-serialized)"),
        Column("raw_text", "string", "raw decoded as UTF-8, invalid bytes replaced by U+FFFD"),
        Column("device_id", "string", "device id when the record named a valid one, else null"),
        Column("received_at", "timestamp", "arrival time: start of the raw partition hour (UTC)"),
        Column("source_file", "string", "raw object the record was read from"),
        Column("line_no", "bigint", "1-based line of the record in source_file"),
        Column("element_index", "int", "position in a JSON-array payload, null for a whole line"),
    ),
    partition_keys=(_DT_ARRIVAL,),
)

_ROLLUP_COLUMNS: Final = (
    Column("device_id", "string", "device id"),
    Column("channel", "string", "channel name (wire channel, or calibrated co/nox/no2)"),
    Column("period_start", "timestamp", "inclusive start of the hour or day (UTC)"),
    Column("n", "bigint", "number of readings with this channel in the period"),
    Column("mean", "double", "mean value, channel units"),
    Column("min", "double", "minimum value, channel units"),
    Column("max", "double", "maximum value, channel units"),
    Column("p95", "double", "95th percentile (Spark percentile_approx, accuracy 10000)"),
    Column("step_s", "double", "nominal sampling step used for completeness, seconds"),
    Column("expected_n", "double", "readings expected in the period at step_s"),
    Column("completeness", "double", "n / expected_n, capped at 1; null when step is unknown"),
    Column("residual_n", "bigint", "readings with both calibrated value and reference (co/nox/no2)"),
    Column("residual_mean", "double", "mean of calibrated - reference (bias), channel units"),
    Column("residual_mae", "double", "mean absolute error vs reference, channel units"),
    Column("residual_rmse", "double", "root mean square error vs reference, channel units"),
)

ROLLUPS_HOURLY = Table(
    name="rollups_hourly",
    description="Per device, channel and UTC hour: mean, min, max, p95, count, completeness, residuals.",
    location="curated/rollups_hourly/",
    format="parquet",
    columns=_ROLLUP_COLUMNS,
    partition_keys=(_DT_PERIOD,),
)

ROLLUPS_DAILY = Table(
    name="rollups_daily",
    description="Per device, channel and UTC day: mean, min, max, p95, count, completeness, residuals.",
    location="curated/rollups_daily/",
    format="parquet",
    columns=_ROLLUP_COLUMNS,
    partition_keys=(_DT_PERIOD,),
)

AGGREGATES = Table(
    name="aggregates",
    description=(
        "Closed event-time windows written by the aggregate Lambda (hot path), JSON lines gzip: one "
        "document per device and window, its channels' statistics as parallel arrays (position i of "
        "each array is channel i); the aggregate_channels view gives one row per window and channel."
    ),
    location="hot/aggregates/",
    format="json",
    columns=(
        Column("device_id", "string", "device id"),
        Column("window", "string", "window name: tumbling_5m, tumbling_1h or sliding_1h_5m"),
        Column("start", "string", "inclusive window start, ISO-8601 UTC"),
        Column("end", "string", "exclusive window end, ISO-8601 UTC"),
        Column("start_ms", "bigint", "inclusive window start, epoch milliseconds"),
        Column("end_ms", "bigint", "exclusive window end, epoch milliseconds"),
        Column("expected", "bigint", "readings expected in the window at the device's reporting interval"),
        Column("channels", "array<string>", "channel names, sorted"),
        Column("counts", "array<bigint>", "per channel: readings with the channel in the window"),
        Column("means", "array<double>", "per channel: mean value, channel units"),
        Column("mins", "array<double>", "per channel: minimum value, channel units"),
        Column("maxes", "array<double>", "per channel: maximum value, channel units"),
        Column("completeness", "array<double>", "per channel: count / expected, capped at 1"),
    ),
    partition_keys=(_DT_WINDOW,),
)

ALERTS = Table(
    name="alerts",
    description=(
        "Alert documents (air-quality events and device faults) published by the classify Lambda, "
        "JSON lines gzip: one document per transition (raised, updated, cleared)."
    ),
    location="hot/alerts/",
    format="json",
    columns=(
        Column("schema_version", "string", "alert document schema version"),
        Column("alert_id", "string", "stable id of the episode (same across raised/updated/cleared)"),
        Column("transition_id", "string", "id of this document (idempotent publishing)"),
        Column("status", "string", "raised, updated or cleared"),
        Column("event_type", "string", "event or fault type, e.g. high_co2, stuck_sensor"),
        Column("category", "string", "event (air quality) or fault (device)"),
        Column("severity", "string", "info, warning or critical"),
        Column("device_id", "string", "device id"),
        Column("site", "string", "site of the device"),
        Column("channel", "string", "channel the alert is about"),
        Column("episode_start", "string", "start of the episode, ISO-8601 UTC"),
        Column("at", "string", "time of this transition, ISO-8601 UTC"),
        Column("at_ms", "bigint", "time of this transition, epoch milliseconds"),
        Column("value", "double", "value at the transition, channel units"),
        Column("peak", "double", "worst value of the episode so far, channel units"),
        Column("threshold", "double", "threshold crossed, channel units"),
        Column("label", "string", "classifier label, when a model decided"),
        Column("model_version", "string", "classification model version, when a model decided"),
        Column("detail", "string", "human-readable summary"),
    ),
    partition_keys=(_DT_WINDOW,),
)

HOT_QUARANTINE = Table(
    name="hot_quarantine",
    description="Records the hot path quarantined (calibrate and later stages), JSON lines gzip.",
    location="hot/quarantine/",
    format="json",
    columns=(
        Column("stage", "string", "hot-path stage that quarantined the record, e.g. calibrate"),
        Column("reason", "string", "reason code (airlake.contract.Reason)"),
        Column("detail", "string", "human-readable detail"),
        Column("device_id", "string", "device id when known"),
        Column("index", "int", "position in a JSON-array payload, null for a whole record"),
        Column("raw_text", "string", "the record's bytes as text (null when not UTF-8)"),
        Column("raw_b64", "string", "the record's bytes, base64 (only when not UTF-8)"),
        Column("sequence_number", "string", "Kinesis sequence number of the record"),
        Column("shard_id", "string", "Kinesis shard id"),
        Column("arrival", "string", "Kinesis arrival time, ISO-8601 UTC"),
    ),
    partition_keys=(_DT_ARRIVAL,),
)

DEVICES = Table(
    name="devices",
    description="Device registry: where each device is installed (JSON lines, one device per line).",
    location="reference/devices/",
    format="json",
    columns=(
        Column("device_id", "string", "device id"),
        Column("site", "string", "site name"),
        Column("model", "string", "hardware model"),
        Column("installed", "string", "installation date or time, ISO-8601"),
        Column("reference", "boolean", "true when co-located with a reference analyser"),
    ),
)

TABLES: Final[tuple[Table, ...]] = (
    RAW_READINGS,
    READINGS,
    QUARANTINE,
    ROLLUPS_HOURLY,
    ROLLUPS_DAILY,
    AGGREGATES,
    ALERTS,
    HOT_QUARANTINE,
    DEVICES,
)


def table(name: str) -> Table:
    """The table called `name`; KeyError names the known ones."""
    for candidate in TABLES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown table {name!r}; known: {', '.join(t.name for t in TABLES)}")
