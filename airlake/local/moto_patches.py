"""Make moto's Kinesis shard O(1) per put and O(batch) per read, and SQS sends O(1), with
identical results.

moto 5.2 keeps a shard's records in an ordered dict keyed by consecutive integer sequence
numbers, but finds the last one with `list(keys())[-1]` on every put and scans the whole shard
from the start on every GetRecords. That is O(n) per call: a 60-day fleet slows to a crawl.
These replacements use the same data structure and return the same records; a test compares
them with moto's own methods.

moto's SQS `send_message` reads one attribute (ContentBasedDeduplication) through
`Queue.attributes`, which builds every attribute, including three counts that scan the whole
queue: sending to a queue nobody has drained yet is O(queue length). The patched property
returns a mapping that answers that one key directly and builds the full dict on any other use.
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

    _patch_sqs_attributes()
    models.Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    models.Shard.get_records = get_records  # type: ignore[method-assign]
    models.KinesisBackend._send_stream_metrics = no_metrics  # type: ignore[method-assign]
    _applied = True


def _patch_sqs_attributes() -> None:
    from collections.abc import Iterator, Mapping

    from moto.sqs import models as sqs_models

    full = sqs_models.Queue.attributes.fget  # type: ignore[attr-defined]
    assert full is not None

    class LazyAttributes(Mapping[str, Any]):
        def __init__(self, queue: Any) -> None:
            self._queue = queue
            self._all: dict[str, Any] | None = None

        def _everything(self) -> dict[str, Any]:
            if self._all is None:
                self._all = full(self._queue)
            return self._all

        def get(self, key: str, default: Any = None) -> Any:
            if key == "ContentBasedDeduplication" and not self._queue.fifo_queue:
                return default  # only FIFO queues have this attribute in the original dict
            return self._everything().get(key, default)

        def __getitem__(self, key: str) -> Any:
            return self._everything()[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._everything())

        def __len__(self) -> int:
            return len(self._everything())

    sqs_models.Queue.attributes = property(LazyAttributes)  # type: ignore[assignment,method-assign]
