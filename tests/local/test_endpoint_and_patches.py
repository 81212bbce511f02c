"""The local endpoint refuses real AWS; the moto Kinesis patches return what moto would."""

from __future__ import annotations

import random

import pytest

from airlake.local import moto_patches
from airlake.local.endpoint import UnsafeEndpointError, assert_loopback, aws_env


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:4566", "http://127.9.9.9:1", "http://localhost:4566", "http://[::1]:4566"]
)
def test_loopback_endpoints_are_allowed(url: str) -> None:
    assert_loopback(url)
    assert aws_env(url)["AWS_ENDPOINT_URL"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://kinesis.us-east-1.amazonaws.com",
        "http://10.0.0.5:4566",
        "http://192.168.1.2:4566",
        "http://example.com",
    ],
)
def test_any_other_endpoint_is_refused(url: str) -> None:
    with pytest.raises(UnsafeEndpointError, match="loopback"):
        aws_env(url)


def test_the_patched_shard_reads_exactly_what_moto_reads() -> None:
    from moto.kinesis.models import Shard

    original_get, original_max = Shard.get_records, Shard.get_max_sequence_number
    shard = Shard(0, 0, 2**128)
    for i in range(300):
        shard.put_record(f"k{i % 7}", f"data-{i}", None)  # type: ignore[arg-type]
    rng = random.Random(3)
    queries = [(str(rng.randint(0, 320)), rng.choice([None, 1, 5, 100, 1000])) for _ in range(200)]
    expected = [(original_get(shard, last, limit), original_max(shard)) for last, limit in queries]

    moto_patches.apply()
    try:
        got = [(shard.get_records(last, limit), shard.get_max_sequence_number()) for last, limit in queries]
    finally:
        Shard.get_records, Shard.get_max_sequence_number = original_get, original_max  # type: ignore[method-assign]
        moto_patches._applied = False

    def comparable(result: tuple[tuple[list[object], int, int], int]) -> tuple[list[int], int, int]:
        (records, last, _behind), maximum = result
        return [r.sequence_number for r in records], last, maximum  # type: ignore[attr-defined]

    assert [comparable(g) for g in got] == [comparable(e) for e in expected]


def test_the_patched_sqs_attributes_equal_moto_s_own() -> None:
    from moto.sqs import models

    original = models.Queue.attributes
    standard = models.Queue("q", region="us-east-1", account_id="123456789012")
    fifo = models.Queue(
        "q.fifo",
        region="us-east-1",
        account_id="123456789012",
        FifoQueue="true",
        ContentBasedDeduplication="true",
    )
    expected = [dict(standard.attributes), dict(fifo.attributes)]
    moto_patches._patch_sqs_attributes()
    try:
        got = [dict(standard.attributes), dict(fifo.attributes)]
        keys = ("ContentBasedDeduplication", "QueueArn", "Nope")
        gets = [(q.attributes.get(k), q.attributes.get(k, "d")) for q in (standard, fifo) for k in keys]
    finally:
        models.Queue.attributes = original  # type: ignore[method-assign]
    want = [(e.get(k), e.get(k, "d")) for e in expected for k in keys]
    assert got == expected
    assert gets == want
