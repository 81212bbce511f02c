"""Lambda's Kinesis event source mapping, re-implemented to invoke handlers in-process.

moto cannot run Lambda functions without Docker, so the local runtime polls each shard itself and
calls the real `handler(event, context)` with the event JSON Lambda would send. The semantics follow
the Lambda developer guide for Kinesis sources (the settings come from StageConfig.event_source):

* Batches hold up to `batch_size` records of one shard, in order (no more than 6 MB of payload).
  `max_batching_window_s` is honoured while a shard is live: a partial batch waits for more
  records until the window ends. In drain mode (a finite local run) a shard that has no more
  records ends the window at once, since waiting could not fill it.
* Success: the checkpoint moves past the batch.
* Partial failure (`ReportBatchItemFailures`): the checkpoint moves to just before the lowest
  failed sequence number and everything from there is delivered again. A response naming an
  unknown or empty identifier fails the whole batch, as Lambda does.
* Function error (the handler raised, or ran past the function timeout): with bisect on, the batch
  is split in two and each half retried on its own; otherwise the whole batch is retried. Splitting
  does not use up retry attempts here: a record that fails alone is retried `max_retry_attempts`
  times in isolation, so one poison record never takes its neighbours to the on-failure queue.
* Partial failure retries deliver the rest of the same batch again (from the lowest failed record),
  not a batch topped up with newer records.
* A batch that still fails after `max_retry_attempts` retries, or whose records are older than
  `max_record_age_s`, is sent to the on-failure destination as metadata (shard id and sequence
  range, not the records, as in AWS) and the shard moves on. The records stay in the stream and
  in the raw zone to be replayed.
"""

from __future__ import annotations

import base64
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True, slots=True)
class MappingSettings:
    batch_size: int = 100
    max_batching_window_s: float = 0.0
    max_retry_attempts: int = 3
    max_record_age_s: float = 3600.0
    bisect_on_error: bool = True
    function_timeout_s: float = 60.0

    @classmethod
    def from_stage(cls, config: Any) -> MappingSettings:
        source = config.event_source
        return cls(
            batch_size=source.batch_size,
            max_batching_window_s=source.max_batching_window_seconds,
            max_retry_attempts=source.max_retry_attempts,
            max_record_age_s=source.max_record_age_seconds,
            bisect_on_error=source.bisect_batch_on_error,
            function_timeout_s=config.lambdas.timeout_seconds,
        )


@dataclass(slots=True)
class MappingStats:
    invocations: int = 0
    records_delivered: int = 0  # counting redeliveries
    records_succeeded: int = 0  # records the checkpoint moved past as processed
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    records_to_on_failure: int = 0
    on_failure_messages: list[dict[str, Any]] = field(default_factory=list)


class FakeLambdaContext:
    """The attributes Powertools and handlers read from a Lambda context object."""

    def __init__(self, function_name: str, timeout_s: float, memory_mb: int = 512) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(slots=True)
class _Shard:
    shard_id: str
    checkpoint: str | None = None  # last sequence number processed (None: TRIM_HORIZON)
    buffer: list[dict[str, Any]] = field(default_factory=list)  # fetched, not yet delivered
    iterator: str | None = None
    exhausted: bool = False


class EventSourceMapping:
    """Polls every shard of one stream and feeds one handler, as one Lambda event source mapping."""

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        stream_arn: str,
        handler: Handler,
        function_name: str,
        settings: MappingSettings,
        *,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._kinesis = kinesis
        self._stream = stream_name
        self._arn = stream_arn
        self._handler = handler
        self._function = function_name
        self.settings = settings
        self._on_failure = on_failure
        self._clock = clock
        self._sleep = sleep
        self.stats = MappingStats()
        shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
        self._shards = [_Shard(shard["ShardId"]) for shard in shards]

    # -- polling --------------------------------------------------------------------------------

    def drain(self, max_rounds: int | None = None) -> MappingStats:
        """Deliver everything currently in the stream; return when every shard is caught up."""
        rounds = 0
        while True:
            delivered = sum(self._poll_shard(shard, drain=True) for shard in self._shards)
            rounds += 1
            if delivered == 0 or (max_rounds is not None and rounds >= max_rounds):
                return self.stats

    def poll(self) -> int:
        """One live round over the shards (honours the batching window); records delivered."""
        return sum(self._poll_shard(shard, drain=False) for shard in self._shards)

    def _fetch(self, shard: _Shard, want: int) -> None:
        """Top up the shard's buffer from the stream, up to `want` records."""
        shard.exhausted = False
        while len(shard.buffer) < want:
            if shard.iterator is None:
                args: dict[str, Any] = {"StreamName": self._stream, "ShardId": shard.shard_id}
                last = shard.buffer[-1]["SequenceNumber"] if shard.buffer else shard.checkpoint
                if last is None:
                    args["ShardIteratorType"] = "TRIM_HORIZON"
                else:
                    args["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
                    args["StartingSequenceNumber"] = last
                shard.iterator = self._kinesis.get_shard_iterator(**args)["ShardIterator"]
            reply = self._kinesis.get_records(
                ShardIterator=shard.iterator, Limit=min(10_000, want - len(shard.buffer))
            )
            shard.iterator = reply.get("NextShardIterator")
            records = reply.get("Records", [])
            for record in records:
                record["_shard"] = shard.shard_id
            shard.buffer.extend(records)
            if not records:
                shard.exhausted = True
                return

    def _poll_shard(self, shard: _Shard, *, drain: bool) -> int:
        size = self.settings.batch_size
        self._fetch(shard, size)
        if not shard.buffer:
            return 0
        if len(shard.buffer) < size and not drain and self.settings.max_batching_window_s > 0:
            self._sleep(self.settings.max_batching_window_s)
            self._fetch(shard, size)
        batch = _cap_payload(shard.buffer[:size])
        delivered = len(batch)
        self._deliver(shard, batch, attempt=0)
        return delivered

    # -- delivery -------------------------------------------------------------------------------

    def _deliver(self, shard: _Shard, batch: list[dict[str, Any]], attempt: int) -> None:
        """Invoke until the batch is done, retried out, or aged out; moves the checkpoint."""
        while batch:
            expired = self._expired(batch)
            if expired:
                self._send_on_failure(shard, batch[: len(expired)], "RecordAgeExceeded", attempt)
                self._advance(shard, batch[: len(expired)], succeeded=False)
                batch = batch[len(expired) :]
                continue
            ok, failed_from = self._invoke(batch)
            if ok and failed_from is None:
                self._advance(shard, batch, succeeded=True)
                return
            if ok:  # partial failure: records before the lowest failed one are done
                self.stats.partial_failures += 1
                done, batch = batch[:failed_from], batch[failed_from:]
                self._advance(shard, done, succeeded=True)
            else:
                self.stats.function_errors += 1
                if self.settings.bisect_on_error and len(batch) > 1:
                    self.stats.bisections += 1
                    half = len(batch) // 2
                    self._deliver(shard, batch[:half], attempt)
                    self._deliver(shard, batch[half:], attempt)
                    return
            attempt += 1
            if attempt > self.settings.max_retry_attempts:
                self._send_on_failure(shard, batch, "RetryAttemptsExhausted", attempt)
                self._advance(shard, batch, succeeded=False)
                return

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[bool, int | None]:
        """(function succeeded, index of the lowest failed record or None)."""
        event = self.event(batch)
        context = FakeLambdaContext(self._function, self.settings.function_timeout_s)
        self.stats.invocations += 1
        self.stats.records_delivered += len(batch)
        started = time.monotonic()
        try:
            response = self._handler(event, context)
        except Exception:
            # What Lambda writes to the function's log for an unhandled error.
            print(f"[ERROR] {self._function} invocation failed:\n{traceback.format_exc()}", flush=True)
            return False, None
        if time.monotonic() - started > self.settings.function_timeout_s:
            return False, None  # Lambda would have stopped the function: its result is lost
        failures = (response or {}).get("batchItemFailures") or [] if isinstance(response, dict) else []
        if not failures:
            return True, None
        positions = {record["SequenceNumber"]: i for i, record in enumerate(batch)}
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or identifier not in positions:
                return True, 0  # an invalid identifier fails the whole batch
            indexes.append(positions[identifier])
        return True, min(indexes)

    def event(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        """The Kinesis event JSON Lambda delivers for these GetRecords records."""
        region = self._arn.split(":")[3]
        records = []
        for record in batch:
            arrival = record["ApproximateArrivalTimestamp"]
            arrival_s = arrival.timestamp() if isinstance(arrival, datetime) else float(arrival)
            records.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": record["PartitionKey"],
                        "sequenceNumber": record["SequenceNumber"],
                        "data": base64.b64encode(record["Data"]).decode("ascii"),
                        "approximateArrivalTimestamp": arrival_s,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{self._shard_of(record)}:{record['SequenceNumber']}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": f"arn:aws:iam::123456789012:role/{self._function}-role",
                    "awsRegion": region,
                    "eventSourceARN": self._arn,
                }
            )
        return {"Records": records}

    def _shard_of(self, record: dict[str, Any]) -> str:
        return str(record.get("_shard", "shardId-000000000000"))

    def _expired(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        now = self._clock()
        limit = self.settings.max_record_age_s
        expired = []
        for record in batch:
            arrival = record["ApproximateArrivalTimestamp"]
            arrival_s = arrival.timestamp() if isinstance(arrival, datetime) else float(arrival)
            if now - arrival_s <= limit:
                break
            expired.append(record)
        return expired

    def _advance(self, shard: _Shard, records: list[dict[str, Any]], *, succeeded: bool) -> None:
        if not records:
            return
        count = len(records)
        assert shard.buffer[:count] == records, "deliveries must follow shard order"
        del shard.buffer[:count]
        shard.checkpoint = records[-1]["SequenceNumber"]
        if succeeded:
            self.stats.records_succeeded += count
        else:
            self.stats.records_to_on_failure += count

    def _send_on_failure(
        self, shard: _Shard, batch: list[dict[str, Any]], condition: str, attempts: int
    ) -> None:
        first, last = batch[0], batch[-1]

        def iso(record: dict[str, Any]) -> str:
            arrival = record["ApproximateArrivalTimestamp"]
            moment = arrival if isinstance(arrival, datetime) else datetime.fromtimestamp(float(arrival), UTC)
            return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{self._function}",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "KinesisBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso(first),
                "approximateArrivalOfLastRecord": iso(last),
                "batchSize": len(batch),
                "streamArn": self._arn,
            },
        }
        self.stats.on_failure_messages.append(message)
        if self._on_failure is not None:
            self._on_failure(message)


def _cap_payload(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trim a batch to Lambda's 6 MB invocation payload (base64 grows data by 4/3)."""
    total = 0
    for i, record in enumerate(batch):
        total += len(record["Data"]) * 4 // 3 + 400
        if total > MAX_PAYLOAD_BYTES and i > 0:
            return batch[:i]
    return batch


def sqs_on_failure(sqs: Any, queue_url: str) -> Callable[[dict[str, Any]], None]:
    def send(message: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=orjson.dumps(message).decode())

    return send
