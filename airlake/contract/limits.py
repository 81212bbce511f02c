"""Limits and physical ranges of the reading contract (schema version 1).

Ranges bound what a sensor can physically report, not what is healthy: a saturated or
faulty sensor still reads inside them and is flagged downstream by classification, never
quarantined here. Values outside a range cannot be a measurement and are quarantined.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

SCHEMA_VERSION: Final = 1

MAX_PAYLOAD_BYTES: Final = 1_048_576  # a Kinesis record's data blob cap (1 MiB)
MAX_READING_BYTES: Final = 16_384  # one reading; a real one is ~300-500 bytes
MAX_BATCH_READINGS: Final = 500  # elements of one JSON-array payload
MAX_CHANNELS: Final = 64
MAX_DEVICE_ID_LENGTH: Final = 64
MAX_TEXT_LENGTH: Final = 64  # firmware and model strings
MAX_SEQ: Final = 2**63 - 1

# No Airlake device was made before this instant; earlier timestamps are a device whose
# clock reset (1970), or epoch seconds sent where milliseconds belong.
FLEET_EPOCH: Final = datetime(2015, 1, 1, tzinfo=UTC)
FLEET_EPOCH_MS: Final = int(FLEET_EPOCH.timestamp() * 1000)
# A reading may be stamped at most this far after it arrived (device clock skew).
MAX_CLOCK_SKEW_MS: Final = 5 * 60 * 1000

# Physical ranges, inclusive, of the channels we know: (low, high, unit).
# Unknown channels are kept and only checked for being finite numbers.
CHANNEL_RANGES: Final[dict[str, tuple[float, float, str]]] = {
    "co2": (0.0, 40_000.0, "ppm"),  # NDIR sensors top out at 5,000-40,000 ppm
    "pm25": (0.0, 2_000.0, "ug/m3"),  # optical counters saturate at ~1,000-2,000
    "pm10": (0.0, 2_000.0, "ug/m3"),
    "voc": (0.0, 60_000.0, "ppb"),  # TVOC, isobutylene equivalent
    "temperature": (-40.0, 85.0, "degC"),  # operating range of the board
    "humidity": (0.0, 100.0, "%RH"),
    "abs_humidity": (0.0, 100.0, "g/m3"),
    "co": (0.0, 1_000.0, "mg/m3"),
    "no2": (0.0, 10_000.0, "ug/m3"),
    "nox": (0.0, 10_000.0, "ppb"),
    # Raw metal-oxide sensor responses (16-bit converter counts).
    "mox_co": (0.0, 65_535.0, "counts"),
    "mox_nmhc": (0.0, 65_535.0, "counts"),
    "mox_nox": (0.0, 65_535.0, "counts"),
    "mox_no2": (0.0, 65_535.0, "counts"),
    "mox_o3": (0.0, 65_535.0, "counts"),
    # Reference analyser values, present on devices co-located with one.
    "ref_co": (0.0, 1_000.0, "mg/m3"),
    "ref_nox": (0.0, 10_000.0, "ppb"),
    "ref_no2": (0.0, 10_000.0, "ug/m3"),
    "ref_c6h6": (0.0, 1_000.0, "ug/m3"),
}

# Resolution of the known channels: the decimal places devices report them with (the sensors'
# resolution; the calibrated outputs at 10x the reference analysers' resolution). The curated zone
# stores each as an exact decimal at this scale (8-byte doubles of short decimals barely compress;
# scaled integers do). A value sent finer than this is never rounded away: the batch path keeps it,
# exactly, in the reading's `other_channels` instead of the channel's column.
CHANNEL_DECIMALS: Final[dict[str, int]] = {
    "co2": 1,
    "pm25": 2,
    "pm10": 2,
    "voc": 1,
    "temperature": 2,
    "humidity": 2,
    "abs_humidity": 4,
    "co": 2,
    "no2": 1,
    "nox": 1,
    "mox_co": 1,
    "mox_nmhc": 1,
    "mox_nox": 1,
    "mox_no2": 1,
    "mox_o3": 1,
    "ref_co": 1,
    "ref_nox": 1,
    "ref_no2": 1,
    "ref_c6h6": 1,
}

# Any finite number is kept for an unknown channel, within this magnitude.
UNKNOWN_CHANNEL_LIMIT: Final = 1e12
