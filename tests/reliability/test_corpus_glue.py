"""The bad-input corpus through the raw -> curated Glue job on local Spark.

Each case is landed as Firehose would land it (its own gzip object, the record's bytes plus a
newline) in the raw partition of the hour before RECEIVED, so the job judges timestamps against
the same instant as the hot path. The curated quarantine table must hold every quarantined element
with the same reason, and curated readings every accepted reading, exactly once.
"""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airlake.batch.readings import QUARANTINE_SCHEMA, READINGS_SCHEMA
from glue_jobs.raw_to_curated import run_raw_to_curated
from tests.reliability.conftest import CORPUS

pytestmark = pytest.mark.spark

CLEAN = [case for case in CORPUS.cases if case.known_issue is None]
KNOWN_ISSUES = [case for case in CORPUS.cases if case.known_issue is not None]


RAW_HOUR = ("dt=2026-03-10", "hour=12")  # the raw hour ending at RECEIVED


def land(lake: Path, name: str, payloads: list[bytes]) -> None:
    """One raw object as Firehose writes it: gzip, each record's bytes followed by a newline."""
    folder = lake / "raw" / RAW_HOUR[0] / RAW_HOUR[1]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(gzip.compress(b"".join(p + b"\n" for p in payloads), mtime=0))


@pytest.fixture(scope="module")
def glue_run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Clean cases as the lines of one raw object (line n = case n); each known issue in its own."""
    lake = tmp_path_factory.mktemp("corpus-lake")
    land(lake, "corpus.gz", [case.payload for case in CLEAN])
    for case in KNOWN_ISSUES:
        land(lake, f"{case.id}.gz", [case.payload])
    counts = run_raw_to_curated(spark, str(lake), from_dt="2026-03-10")
    readings = spark.read.schema(READINGS_SCHEMA).parquet(str(lake / "curated" / "readings"))
    quarantine = spark.read.schema(QUARANTINE_SCHEMA).parquet(str(lake / "curated" / "quarantine"))

    def case_of(source_file: str, line_no: int) -> tuple[str, int]:
        name = source_file.rsplit("/", 1)[-1]
        if name == "corpus.gz":
            return CLEAN[line_no - 1].id, 1
        return name.removesuffix(".gz"), line_no

    curated: dict[str, list[tuple[str, int, int]]] = {}
    for row in readings.select("source_file", "line_no", "device_id", "ts_ms", "seq", "dt").collect():
        assert row.dt == "2026-03-10"
        case_id, _line = case_of(row.source_file, row.line_no)
        curated.setdefault(case_id, []).append((row.device_id, row.ts_ms, row.seq))
    quarantined: dict[str, list[tuple[int, int | None, str]]] = {}
    for row in quarantine.select("source_file", "line_no", "element_index", "reason", "dt").collect():
        assert row.dt == "2026-03-10"
        case_id, line = case_of(row.source_file, row.line_no)
        quarantined.setdefault(case_id, []).append((line, row.element_index, row.reason))
    return {"counts": counts, "curated": curated, "quarantined": quarantined}


def test_every_corpus_case_is_curated_or_quarantined_as_expected(glue_run: dict[str, Any]) -> None:
    curated, quarantined = glue_run["curated"], glue_run["quarantined"]
    mismatches = {}
    for case in CLEAN:
        got_readings = sorted(curated.get(case.id, []))
        got_reasons = sorted(reason for _line, _index, reason in quarantined.get(case.id, []))
        if (got_readings, got_reasons) != (sorted(case.accepted_keys), sorted(case.quarantine_reasons)):
            mismatches[case.id] = {"readings": got_readings, "reasons": got_reasons}
    assert mismatches == {}


def test_spark_workers_run_the_driver_interpreter(spark: Any) -> None:
    # The cold path must judge records with the same decoder libraries as the hot path
    import orjson

    workers = set(
        spark.sparkContext.parallelize(range(2), 2)
        .map(lambda _: (__import__("sys").executable, __import__("orjson").__version__))
        .collect()
    )
    assert workers == {(sys.executable, orjson.__version__)}


def test_array_elements_are_quarantined_with_their_index(glue_run: dict[str, Any]) -> None:
    assert sorted(glue_run["quarantined"]["array_mixed"]) == [
        (1, 1, "wrong_type"),
        (1, 2, "not_an_object"),
        (1, 3, "not_an_object"),
        (1, 4, "not_an_object"),
    ]
    assert glue_run["quarantined"]["batch_of_501"] == [(1, None, "batch_too_large")]


def test_the_job_counts_conserve_every_record(glue_run: dict[str, Any]) -> None:
    counts = glue_run["counts"]
    fragments = sum(len(glue_run["quarantined"].get(case.id, [])) for case in KNOWN_ISSUES)
    accepted = sum(len(case.accepted_keys) for case in CLEAN)
    quarantined = sum(len(case.quarantine_reasons) for case in CLEAN)
    assert (
        counts["records_in"] == counts["readings_new"] + counts["quarantined"] + counts["duplicates_removed"]
    )
    assert (counts["raw_objects"], counts["readings_new"], counts["duplicates_removed"]) == (
        1 + len(KNOWN_ISSUES),
        accepted,
        0,
    )
    assert counts["quarantined"] == quarantined + fragments
    assert sum(counts["quarantined_by_reason"].values()) == counts["quarantined"]
    expected_reasons = Counter(r for case in CLEAN for r in case.quarantine_reasons)
    expected_reasons["invalid_json"] += fragments
    assert counts["quarantined_by_reason"] == dict(expected_reasons)


def test_a_record_with_raw_newlines_is_accepted_by_neither_path(glue_run: dict[str, Any]) -> None:
    """The contract refuses raw newlines (multi_line) because the raw zone is newline-framed; the
    cold path, which only sees the framed lines, quarantines every fragment line instead."""
    for case in KNOWN_ISSUES:
        assert case.accepted_keys == []
        assert case.quarantine_reasons == ["multi_line"]
        assert glue_run["curated"].get(case.id, []) == []
        fragments = [r for _l, _i, r in glue_run["quarantined"].get(case.id, [])]
        assert len(fragments) == case.payload.count(b"\n") + 1
        assert set(fragments) == {"invalid_json"}
