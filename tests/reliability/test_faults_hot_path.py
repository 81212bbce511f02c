"""Injected failures on the hot path: nothing lost, no aggregate or alert duplicated.

Each test compares a faulty run with a clean run of the same input through the real handlers and
the local event source mapping (tests/reliability/faults.py): identical aggregates (as a multiset)
and identical alert transitions reaching the subscriber, every reading calibrated.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from tests.reliability.faults import (
    FlakyNotifier,
    MemoryKinesis,
    Run,
    crash_midway,
    outlive_timeout,
    poison,
    reading,
    run_pipeline,
    settings,
    workload,
)

READINGS = workload()
KEYS = sorted((r["device_id"], r["ts"], r["seq"]) for r in READINGS)


@pytest.fixture(scope="module")
def clean() -> Run:
    run = run_pipeline(READINGS)
    # the workload is meaningful: windows closed, alerts raised, updated and cleared
    assert len(run.aggregates()) > 20
    statuses = Counter(orjson.loads(m)["status"] for m, _a in run.notifier.messages)
    assert {"raised", "updated", "cleared"} <= set(statuses)
    assert sorted(run.calibrated_keys()) == KEYS
    assert run.on_failure == []
    return run


def assert_same_outputs(faulty: Run, clean: Run) -> None:
    assert faulty.aggregates() == clean.aggregates()  # no window lost, none emitted twice
    assert faulty.published() == clean.published()  # each transition once, in the same order
    assert len(set(faulty.published())) == len(faulty.published())
    assert sorted(set(faulty.calibrated_keys())) == KEYS  # no reading lost


def test_a_handler_that_crashes_mid_batch_is_retried_without_loss_or_duplicate_outputs(clean: Run) -> None:
    # Given a calibrate function that crashes halfway through its first three multi-record batches
    faulty = run_pipeline(READINGS, wrap_calibrate=crash_midway(3))
    # Then the mapping retried (bisecting), nothing went to the on-failure destination
    stats = faulty.mappings["calibrate"].stats
    assert (stats.function_errors, stats.records_to_on_failure, faulty.on_failure) == (3, 0, [])
    assert stats.records_succeeded == len(READINGS)
    # And the half-done work was written twice to the calibrated stream (at-least-once) ...
    copies = Counter(faulty.calibrated_keys())
    assert sum(copies.values()) > len(READINGS)
    assert set(copies) == set(KEYS)
    # ... which the idempotent stages absorbed: outputs identical to the clean run
    assert faulty.mappings["aggregate"].stats.records_to_on_failure == 0
    assert_same_outputs(faulty, clean)


def test_a_handler_that_outlives_its_timeout_is_retried_and_its_work_is_not_doubled(clean: Run) -> None:
    # Given a classify function whose first two invocations finish their work and then time out
    faulty = run_pipeline(
        READINGS, wrap_classify=outlive_timeout(2, 0.2), mapping=settings(function_timeout_s=0.15)
    )
    stats = faulty.mappings["classify"].stats
    assert (stats.function_errors, stats.records_to_on_failure) == (2, 0)
    # the timed-out batches were delivered again (calibrated records carry a device's readings)
    assert stats.records_delivered > len(faulty.kinesis.streams["calibrated"])
    # Then the redelivered batches published nothing new
    assert_same_outputs(faulty, clean)


def test_a_poison_record_goes_to_the_on_failure_destination_and_the_shard_moves_on() -> None:
    # Given one reading that makes the calibrate function raise every time it sees it
    victim = READINGS[40]
    marker = orjson.dumps({"device_id": victim["device_id"], "ts": victim["ts"], "seq": victim["seq"]})[:-1]
    faulty = run_pipeline(READINGS, wrap_calibrate=poison(marker), mapping=settings(max_retry_attempts=2))
    # Then bisection isolated it, it was retried alone, and only it was given up on
    stats = faulty.mappings["calibrate"].stats
    assert (stats.records_to_on_failure, stats.records_succeeded) == (1, len(READINGS) - 1)
    assert len(faulty.on_failure) == 1
    info = faulty.on_failure[0]["KinesisBatchInfo"]
    assert (info["batchSize"], info["startSequenceNumber"]) == (1, info["endSequenceNumber"])
    assert faulty.on_failure[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # And the metadata is enough to re-read the record from the stream (it is not lost)
    replay = _read_range(faulty.kinesis, "readings", info["startSequenceNumber"], info["batchSize"])
    assert [orjson.loads(r)["seq"] for r in replay] == [victim["seq"]]
    # And every other reading went through exactly as a clean run without the poison record
    without = run_pipeline([r for r in READINGS if r is not victim])
    assert_same_outputs_except(faulty, without, victim)


def _read_range(kinesis: MemoryKinesis, stream: str, start: str, count: int) -> list[bytes]:
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=start,
    )["ShardIterator"]  # fmt: skip
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator, Limit=count)["Records"]]


def assert_same_outputs_except(faulty: Run, clean: Run, victim: dict[str, object]) -> None:
    assert faulty.aggregates() == clean.aggregates()
    assert faulty.published() == clean.published()
    assert sorted(faulty.calibrated_keys()) == sorted(clean.calibrated_keys())
    assert (victim["device_id"], victim["ts"], victim["seq"]) not in set(faulty.calibrated_keys())


def test_sns_outage_alerts_are_retried_and_each_transition_reaches_the_subscriber_once(clean: Run) -> None:
    # Given a topic whose first three publishes fail
    notifier = FlakyNotifier(fail_calls={1, 2, 3})
    faulty = run_pipeline(READINGS, notifier=notifier, mapping=settings(max_retry_attempts=5))
    # Then the failed records were reported (batchItemFailures) and redelivered, none given up
    stats = faulty.mappings["classify"].stats
    assert stats.partial_failures == 3
    assert (stats.records_to_on_failure, faulty.on_failure) == (0, [])
    # And the subscriber got each transition exactly once
    assert_same_outputs(faulty, clean)


def test_a_publish_failure_after_an_accepted_publish_does_not_duplicate_it() -> None:
    # Given one batch in which dev-a's CO2 episode is raised and cleared (two publishes), and a
    # topic that fails the second publish only: the first one already reached the subscriber
    episode = [
        reading("dev-a", m, co2=1500.0 if 1 <= m < 4 else 2500.0 if 4 <= m < 8 else 600.0) for m in range(20)
    ]
    one_batch = settings(batch_size=20, max_retry_attempts=5)
    clean = run_pipeline(episode, mapping=one_batch)
    assert [t.split("-")[1] for t in clean.published()] == ["raised", "cleared"]
    faulty = run_pipeline(episode, notifier=FlakyNotifier(fail_calls={2}), mapping=one_batch)
    # Then after the redelivery the subscriber has each transition once
    assert faulty.mappings["classify"].stats.partial_failures == 1
    assert faulty.published() == clean.published()
