"""The reading contract: wire fields, limits, quarantine reasons and the one decoder.

`decode` is the only way bytes become readings, in Lambda, in Glue and in the local runtime.
"""

from __future__ import annotations

from airlake.contract.decoder import Quarantined, Reading, decode, decode_one
from airlake.contract.reasons import Reason

__all__ = ["Quarantined", "Reading", "Reason", "decode", "decode_one"]
