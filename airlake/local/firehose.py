"""Raw landing: what Firehose does between the readings stream and S3 `raw/`, done locally.

moto's Firehose accepts direct puts but cannot read from a Kinesis source, so this forwarder is
a second consumer of the readings stream (like Firehose, independent of the Lambda mapping):

* records are buffered, unchanged, each followed by a newline (the stack configures Firehose's
  AppendDelimiterToRecord processor: no transformation of the payload);
* a buffer is flushed when it reaches `buffer_size_mb` or spans `buffer_interval_s` of arrival
  time, whichever comes first, as one GZIP object;
* the object key uses the arrival-time prefix the stack configures,
  `raw/dt=YYYY-MM-DD/hour=HH/`, and Firehose's object name pattern
  `<delivery-stream>-<n>-YYYY-MM-DD-HH-MM-SS-<uuid>.gz`.
"""

from __future__ import annotations

import gzip
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class LandingStats:
    records: int = 0
    objects: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    keys: list[str] = field(default_factory=list)


class RawLanding:
    def __init__(
        self,
        kinesis: Any,
        s3: Any,
        *,
        stream_name: str,
        bucket: str,
        delivery_stream_name: str,
        buffer_size_mb: int,
        buffer_interval_s: int,
        prefix: str = "raw",
    ) -> None:
        self._kinesis = kinesis
        self._s3 = s3
        self._stream = stream_name
        self._bucket = bucket
        self._delivery = delivery_stream_name
        self._max_bytes = buffer_size_mb * 1024 * 1024
        self._interval_s = buffer_interval_s
        self._prefix = prefix
        self._iterators: dict[str, str] = {}
        self._buffer: list[bytes] = []
        self._buffer_bytes = 0
        self._first_arrival: datetime | None = None
        self.stats = LandingStats()

    def drain(self) -> LandingStats:
        """Read everything now in the stream, land it, and flush the last buffer."""
        for shard in self._kinesis.list_shards(StreamName=self._stream)["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._kinesis.get_shard_iterator(
                    StreamName=self._stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while True:
                reply = self._kinesis.get_records(ShardIterator=self._iterators[shard_id], Limit=10_000)
                self._iterators[shard_id] = reply["NextShardIterator"]
                if not reply["Records"]:
                    break
                for record in reply["Records"]:
                    self._add(record["Data"], record["ApproximateArrivalTimestamp"])
        self.flush()
        return self.stats

    def _add(self, data: bytes, arrival: datetime) -> None:
        arrival = arrival.astimezone(UTC)
        if self._first_arrival is not None and (
            (arrival - self._first_arrival).total_seconds() >= self._interval_s
            or self._buffer_bytes + len(data) + 1 > self._max_bytes
        ):
            self.flush()
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._buffer.append(data)
        self._buffer_bytes += len(data) + 1
        self.stats.records += 1
        self.stats.bytes_in += len(data)

    def flush(self) -> None:
        if not self._buffer or self._first_arrival is None:
            return
        moment = self._first_arrival
        body = gzip.compress(b"".join(record + b"\n" for record in self._buffer), compresslevel=6)
        name = f"{self._delivery}-1-{moment:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}.gz"
        key = f"{self._prefix}/dt={moment:%Y-%m-%d}/hour={moment:%H}/{name}"
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        self.stats.objects += 1
        self.stats.bytes_out += len(body)
        self.stats.keys.append(key)
        self._buffer.clear()
        self._buffer_bytes = 0
        self._first_arrival = None
