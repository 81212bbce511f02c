"""The bad-input corpus through the decoder: every case ends exactly as its manifest says."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from airlake.contract import Quarantined, Reading, Reason, decode
from tests.reliability.conftest import CORPUS, CorpusCase

# The list of hostile inputs, as manifest categories: each must have cases.
REQUIRED_CATEGORIES = {
    "invalid_json", "encoding", "nested_garbage", "huge_numbers", "non_finite", "negative_concentration",
    "wrong_type", "missing_null", "duplicate_keys", "channel_map", "size_limit", "timestamps",
    "unknown_devices", "arrays", "empty",
}  # fmt: skip


def test_the_corpus_has_at_least_40_cases_covering_every_category_and_every_decoder_reason() -> None:
    # Given the manifest
    categories = {case.category for case in CORPUS.cases}
    reasons = {reason for case in CORPUS.cases for reason in case.quarantine_reasons}
    # Then it is big enough, covers the list, and exercises every reason the decoder can give
    assert len(CORPUS.cases) >= 40
    assert len({case.id for case in CORPUS.cases}) == len(CORPUS.cases)
    assert categories >= REQUIRED_CATEGORIES
    assert reasons == {str(r) for r in Reason} - {str(Reason.PROCESSING_ERROR)}
    assert any(case.accepted_keys for case in CORPUS.cases)


@pytest.mark.parametrize("case", CORPUS.cases, ids=[c.id for c in CORPUS.cases])
def test_each_corpus_case_decodes_to_its_expected_outcomes(case: CorpusCase) -> None:
    # When the payload is decoded at its arrival time
    results = decode(case.payload, received_ms=CORPUS.received_ms)
    # Then there is one result per expected element, in order, with the expected reason or key
    got = [("accepted", r.key) if isinstance(r, Reading) else ("quarantined", str(r.reason)) for r in results]
    expected = [(e.outcome, e.key if e.outcome == "accepted" else e.reason) for e in case.expect]
    assert got == expected
    # And a quarantined record keeps the bytes it came from: the whole payload, or its array element
    for position, result in enumerate(results):
        if not isinstance(result, Quarantined):
            continue
        if result.index is None:
            assert (len(results), result.raw) == (1, case.payload)
        else:
            elements = orjson.loads(case.payload)
            assert result.index == position
            assert orjson.loads(result.raw) == elements[position]


def test_decoding_the_corpus_twice_gives_identical_results() -> None:
    first = [decode(case.payload, received_ms=CORPUS.received_ms) for case in CORPUS.cases]
    second = [decode(case.payload, received_ms=CORPUS.received_ms) for case in CORPUS.cases]
    assert first == second


def corpus_outcomes() -> Counter[str]:
    """Elements of the corpus by expected outcome (reason code for quarantined ones)."""
    return Counter(e.reason or e.outcome for case in CORPUS.cases for e in case.expect)
