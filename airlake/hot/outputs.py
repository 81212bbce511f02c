"""Where the hot path writes: the calibrated stream, the lake, and the alerts topic.

Each output is a small protocol with one AWS implementation (clients created on first use, so
`AWS_ENDPOINT_URL` set by the local runtime is honoured) and one in-memory implementation for tests
and benchmarks. Lake objects get deterministic keys (a hash of their content), so a batch that is
redelivered after a partial failure rewrites the same object instead of adding a duplicate one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from isal import igzip

from airlake.producer import Producer

_PUT_RECORDS_ATTEMPTS = 5  # within a Lambda invocation: at most ~1.6 s of backoff in all
_PUT_RECORDS_MAX_DELAY_S = 1.0
_PUBLISH_ATTEMPTS = 4
_PUBLISH_BATCH = 10  # SNS PublishBatch entries per call
# Lake objects are gzip members written by ISA-L (python-isal), which writes the same format as
# zlib about 4x faster: on the aggregate stage's 5 MB of JSON lines per 10,000 readings, level 2
# took 11 ms where zlib's level 3 took 53 ms, for objects 25 % larger (906 KB vs 725 KB; zlib's level
# 1 is both slower and larger than that). The aggregate stage's CPU is what Lambda bills on every
# batch, while 25 % more bytes cost little in S3 and in Athena scans of the hot zones.
_GZIP_LEVEL = 2


class RecordStream(Protocol):
    def put_records(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        """Put (partition key, data) pairs; returns the indexes that still failed after retries."""
        ...


class Lake(Protocol):
    def put_object(self, key: str, body: bytes) -> None: ...


class Notifier(Protocol):
    def publish(self, message: str, attributes: Mapping[str, str]) -> None:
        """Publish one message; raises after retries are exhausted."""
        ...

    def publish_batch(self, entries: Sequence[tuple[str, Mapping[str, str]]]) -> list[bool]:
        """Publish several messages (in order); whether each was accepted, after retries."""
        ...


_DAY_MS = 86_400_000


@functools.lru_cache(maxsize=1024)
def _dt_of_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def dt_of(ts_ms: int) -> str:
    """The `dt=YYYY-MM-DD` partition (UTC) of an epoch-millisecond time."""
    return _dt_of_day(ts_ms // _DAY_MS)


def write_jsonl(lake: Lake, zone: str, docs: Iterable[tuple[int, dict[str, Any]]]) -> list[str]:
    """Write (partition time ms, document) pairs as gzip JSON lines under `hot/<zone>/dt=.../`.

    One object per date partition; its name is the hash of its content, and gzip's mtime is fixed,
    so the same documents always give the same key and bytes. Returns the keys written.
    """
    return write_lines(lake, zone, [(ts_ms, orjson.dumps(doc)) for ts_ms, doc in docs])


def write_lines(lake: Lake, zone: str, lines: Iterable[tuple[int, bytes]]) -> list[str]:
    """`write_jsonl` for documents already serialized: (partition time ms, JSON line) pairs; a
    pair may carry several lines of that day, joined by newlines (`windows.json_lines`)."""
    by_day: dict[int, list[bytes]] = defaultdict(list)
    for ts_ms, line in lines:
        by_day[ts_ms // _DAY_MS].append(line)
    keys = []
    for dt, group in sorted((_dt_of_day(day), group) for day, group in by_day.items()):
        group.append(b"")  # the last line's newline, without copying the body again
        body = b"\n".join(group)
        key = f"hot/{zone}/dt={dt}/{hashlib.sha256(body).hexdigest()[:32]}.json.gz"
        lake.put_object(key, igzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0))
        keys.append(key)
    return keys


@dataclass
class MemoryStream:
    records: list[tuple[str, bytes]] = field(default_factory=list)
    fail_indexes: set[int] = field(default_factory=set)  # to simulate a partial PutRecords failure

    def put_records(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        failed = [i for i in range(len(records)) if i in self.fail_indexes]
        self.records.extend(r for i, r in enumerate(records) if i not in self.fail_indexes)
        return failed


@dataclass
class MemoryLake:
    objects: dict[str, bytes] = field(default_factory=dict)

    def put_object(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def docs(self, zone: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in sorted(self.objects):
            if key.startswith(f"hot/{zone}/"):
                out.extend(orjson.loads(line) for line in gzip.decompress(self.objects[key]).splitlines())
        return out


@dataclass(frozen=True, slots=True)
class LocalLake:
    """The local runtime's lake folder (`.airlake/lake/`)."""

    root: Path

    def put_object(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.replace(path)


@dataclass
class MemoryNotifier:
    messages: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failures_left: int = 0  # to simulate an SNS outage

    def publish(self, message: str, attributes: Mapping[str, str]) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionError("simulated SNS failure")
        self.messages.append((message, dict(attributes)))

    def publish_batch(self, entries: Sequence[tuple[str, Mapping[str, str]]]) -> list[bool]:
        accepted = []
        for message, attributes in entries:
            try:
                self.publish(message, attributes)
            except ConnectionError:
                accepted.append(False)
            else:
                accepted.append(True)
        return accepted


class _Lazy:
    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client


class KinesisStream(_Lazy):
    """The calibrated stream, written through `airlake.producer.Producer.put_batch`: PutRecords in
    calls of <= 500 records and 5 MiB, retrying only the entries that failed (HTTP 200 can still
    carry `FailedRecordCount > 0`) and throttled calls, with jittered exponential backoff. One
    implementation of that logic for the simulator's producer and the hot path."""

    def __init__(
        self, stream_name: str, client_factory: Callable[[], Any], *, backoff_s: float = 0.05
    ) -> None:
        super().__init__(client_factory)
        self.stream_name = stream_name
        self.backoff_s = backoff_s
        self._producer: Producer | None = None

    def put_records(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        if self._producer is None:  # the client is created on first use (AWS_ENDPOINT_URL)
            self._producer = Producer(
                self.client,
                self.stream_name,
                max_attempts=_PUT_RECORDS_ATTEMPTS,
                base_delay_s=self.backoff_s,
                max_delay_s=_PUT_RECORDS_MAX_DELAY_S,
            )
        return self._producer.put_batch(records)


class S3Lake(_Lazy):
    def __init__(self, bucket: str, client_factory: Callable[[], Any]) -> None:
        super().__init__(client_factory)
        self.bucket = bucket

    def put_object(self, key: str, body: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson", ContentEncoding="gzip"
        )


class SnsNotifier(_Lazy):
    """SNS publish with String message attributes, retried with backoff on any error."""

    def __init__(self, topic_arn: str, client_factory: Callable[[], Any], *, backoff_s: float = 0.1) -> None:
        super().__init__(client_factory)
        self.topic_arn = topic_arn
        self.backoff_s = backoff_s

    def publish(self, message: str, attributes: Mapping[str, str]) -> None:
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        for attempt in range(_PUBLISH_ATTEMPTS):
            try:
                self.client.publish(TopicArn=self.topic_arn, Message=message, MessageAttributes=attrs)
                return
            except Exception:
                if attempt == _PUBLISH_ATTEMPTS - 1:
                    raise
                time.sleep(self.backoff_s * 2**attempt)

    def publish_batch(self, entries: Sequence[tuple[str, Mapping[str, str]]]) -> list[bool]:
        """PublishBatch, 10 entries a call (the API limit), retrying only the entries that failed.

        One call per ten alerts instead of one per alert: against the local emulator publishing
        dominated the classify stage. Order within a call is kept; a failed entry is reported,
        the entries after it are still attempted (callers record exactly what was accepted)."""
        accepted = [False] * len(entries)
        pending = list(range(len(entries)))
        for attempt in range(_PUBLISH_ATTEMPTS):
            still: list[int] = []
            for start in range(0, len(pending), _PUBLISH_BATCH):
                chunk = pending[start : start + _PUBLISH_BATCH]
                request = [
                    {
                        "Id": str(i),
                        "Message": entries[i][0],
                        "MessageAttributes": {
                            k: {"DataType": "String", "StringValue": v} for k, v in entries[i][1].items()
                        },
                    }
                    for i in chunk
                ]
                try:
                    reply = self.client.publish_batch(
                        TopicArn=self.topic_arn, PublishBatchRequestEntries=request
                    )
                except Exception:
                    still.extend(chunk)
                    continue
                for item in reply.get("Successful", []):
                    accepted[int(item["Id"])] = True
                still.extend(int(item["Id"]) for item in reply.get("Failed", []))
            pending = sorted(still)
            if not pending:
                break
            if attempt < _PUBLISH_ATTEMPTS - 1:
                time.sleep(self.backoff_s * 2**attempt)
        return accepted
