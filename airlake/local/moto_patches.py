"""Make moto's Kinesis shard O(1) per put and O(batch) per read, with identical results.

moto 5.2 keeps a shard's records in an ordered dict keyed by consecutive integer sequence
numbers, but finds the last one with `list(keys())[-1]` on every put and scans the whole shard
from the start on every GetRecords. That is O(n) per call: a 60-day fleet slows to a crawl.
These replacements use the same data structure and return the same records; a test compares
them with moto's own methods.
"""

from __future__ import annotations

from typing import Any

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.kinesis import models

    def get_max_sequence_number(self: Any) -> int:
        return next(reversed(self.records)) if self.records else 0

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        records = self.records
        if not records:
            return [], int(last_sequence_id), 0
        last = int(last_sequence_id)
        first_key = next(iter(records))
        newest = records[next(reversed(records))]
        start = max(last + 1, first_key)
        stop = next(reversed(records)) + 1
        if limit:
            stop = min(stop, start + limit)
        results = [records[key] for key in range(start, stop) if key in records]
        if not results:
            return [], last, 0
        behind_ms = int((newest.created_at - results[-1].created_at) * 1000)
        return results, results[-1].sequence_number, behind_ms

    def no_metrics(self: Any, stream_name: str, incoming_bytes: int, incoming_records: int) -> None:
        # moto writes two CloudWatch datapoints per call and never trims them: unbounded memory.
        return None

    models.Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    models.Shard.get_records = get_records  # type: ignore[method-assign]
    models.KinesisBackend._send_stream_metrics = no_metrics  # type: ignore[method-assign]
    _applied = True
