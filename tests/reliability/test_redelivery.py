"""The same batch twice, out of order, or after its window closed: outputs as for one in-order delivery."""

from __future__ import annotations

import random
from typing import Any

import orjson

from airlake.hot.outputs import MemoryLake, MemoryNotifier
from airlake.hot.pipeline import AggregateStage, ClassifyStage, parse_records
from airlake.hot.state import InMemoryStateStore
from tests.hot.conftest import kinesis_event
from tests.reliability.faults import T0_MS, reading, workload

NOW = lambda: T0_MS / 1000 + 3_600  # noqa: E731


class Stages:
    def __init__(self) -> None:
        self.lake, self.notifier = MemoryLake(), MemoryNotifier()
        self.aggregate = AggregateStage(InMemoryStateStore(), self.lake, clock=NOW)
        self.classify = ClassifyStage(InMemoryStateStore(), self.lake, self.notifier, clock=NOW)

    def deliver(self, readings: list[dict[str, Any]]) -> None:
        records = parse_records(kinesis_event(list[bytes | dict[str, Any]](readings)))
        assert self.aggregate.process(records).failed == set()
        assert self.classify.process(records).failed == set()

    def outputs(self) -> tuple[list[bytes], list[str], list[bytes]]:
        def canon(zone: str) -> list[bytes]:
            return sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in self.lake.docs(zone))

        return (
            canon("aggregates"),
            [orjson.loads(m)["transition_id"] for m, _ in self.notifier.messages],
            canon("alerts"),
        )


def batches(readings: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [readings[i : i + size] for i in range(0, len(readings), size)]


READINGS = workload()


def in_order() -> Stages:
    stages = Stages()
    for batch in batches(READINGS, 12):
        stages.deliver(batch)
    return stages


def test_every_batch_delivered_twice_gives_the_outputs_of_one_delivery() -> None:
    expected = in_order().outputs()
    stages = Stages()
    for batch in batches(READINGS, 12):
        stages.deliver(batch)
        stages.deliver(batch)  # Lambda redelivers: at least once
    assert stages.outputs() == expected
    assert len(expected[0]) > 20 and len(expected[1]) >= 4


def test_an_earlier_batch_redelivered_after_later_ones_changes_nothing() -> None:
    expected = in_order().outputs()
    stages = Stages()
    parts = batches(READINGS, 12)
    for i, batch in enumerate(parts):
        stages.deliver(batch)
        if i >= 2:
            stages.deliver(parts[i - 2])  # a stale redelivery, two batches behind
    assert stages.outputs() == expected


def test_records_out_of_order_within_each_batch_give_the_in_order_outputs() -> None:
    expected = in_order().outputs()
    stages = Stages()
    rng = random.Random(7)
    for batch in batches(READINGS, 12):
        shuffled = list(batch)
        rng.shuffle(shuffled)
        stages.deliver(shuffled)
    assert stages.outputs() == expected


def test_a_reading_after_its_window_closed_is_counted_late_and_changes_no_emitted_window() -> None:
    # Given dev-a's readings up to minute 12 (the watermark passed 12:05, so [12:00, 12:05) closed)
    stages = Stages()
    stages.deliver([reading("dev-a", m) for m in range(13)])
    before = stages.outputs()
    # When a reading stamped 12:02 arrives (a straggler with a new seq), twice
    straggler = {**reading("dev-a", 2, co2=900.0), "seq": 5_000}
    outcomes = [stages.aggregate.process(parse_records(kinesis_event([dict(straggler)]))) for _ in range(2)]
    # Then it is late once, a duplicate the second time, routed to hot/late, and no window changed
    assert [(o.counts["late"], o.counts["duplicates"]) for o in outcomes] == [(1, 0), (0, 1)]
    assert [(d["device_id"], d["seq"], d["reason"]) for d in stages.lake.docs("late")] == [
        ("dev-a", 5_000, "too_late")
    ]
    assert stages.outputs()[0] == before[0]
