"""The whole flow on the local runtime, as `make demo` runs it, at a small size.

producer -> Kinesis (moto server) -> calibrate/aggregate/classify handlers (local event source
mappings) -> SNS -> SQS subscribers (one with a filter policy) -> raw landing -> Glue jobs on
local Spark -> SQL on DuckDB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from airlake.local.pipeline import PipelineOptions, PipelineResult, run
from airlake.local.summary import alerts, conservation, read_json_lines
from airlake.sql.runner import LocalLake, sql_text

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from airlake.batch.session import local_spark

    return local_spark("airlake-tests")  # getOrCreate: the run's one session, stopped at exit


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> PipelineResult:
    options = PipelineOptions(
        devices=3,
        days=0.25,
        step_s=60,
        seed=4,
        malformed_rate=0.03,
        duplicate_rate=0.03,
        state_dir=tmp_path_factory.mktemp("airlake"),
        progress=False,
    )
    return run(options, spark=spark)


def test_every_record_sent_is_curated_quarantined_or_a_removed_duplicate(result: PipelineResult) -> None:
    check = conservation(result.manifest, result.cold["raw_to_curated"])

    assert result.producer["failed"] == 0
    assert check.sent == result.manifest["elements"] > 900
    assert check.lost == 0
    assert check.quarantined == check.expected_quarantined
    assert sum(check.quarantined.values()) > 0
    assert check.duplicates_removed == check.expected_duplicates > 0


def test_the_hot_path_processed_every_record_without_giving_any_up(result: PipelineResult) -> None:
    manifest = result.manifest
    assert result.mappings["calibrate"]["records_succeeded"] == manifest["records"]
    # both consumers of the calibrated stream took every record of it (a device's calibrated
    # readings of one batch travel as one record, so there are fewer records than readings)
    calibrated = result.mappings["aggregate"]["records_succeeded"]
    assert 0 < calibrated <= manifest["readings"] + manifest["duplicates"]
    assert result.mappings["classify"]["records_succeeded"] == calibrated
    assert all(m["records_to_on_failure"] == 0 for m in result.mappings.values())
    assert result.landing["records"] == manifest["records"]


def test_the_hot_quarantine_holds_what_the_decoder_rejected(result: PipelineResult) -> None:
    reasons = Counter(row["reason"] for row in read_json_lines(result.lake_dir / "hot" / "quarantine"))
    assert dict(reasons) == result.manifest["malformed"]


def test_subscribers_receive_each_alert_transition_once_and_the_filter_policy_holds(
    result: PipelineResult,
) -> None:
    summary = alerts(result.lake_dir)
    transitions = sum(summary.transitions.values())

    assert summary.duplicates == 0
    assert transitions > 0
    assert result.all_alerts_received == transitions
    critical = list(result.critical_alerts_received)
    assert {a["severity"] for a in critical} <= {"critical"}
    expected_critical = sum(
        n for (_, _, severity), n in summary.transitions.items() if severity == "critical"
    )
    assert len(critical) == expected_critical


def test_closed_windows_reach_the_lake(result: PipelineResult) -> None:
    windows = list(read_json_lines(result.lake_dir / "hot" / "aggregates"))
    assert len(windows) > 0
    keys = [(w["device_id"], w["window"], w["start_ms"]) for w in windows]
    assert len(keys) == len(set(keys)), "a window was emitted twice"


def test_the_athena_sql_answers_from_the_curated_lake(result: PipelineResult) -> None:
    lake = LocalLake(result.lake_dir)
    try:
        count = lake.query("SELECT count(*) FROM readings").rows[0][0]
        devices = lake.query("SELECT count(DISTINCT device_id) FROM readings").rows[0][0]
        by_type = lake.query(sql_text(ROOT / "athena/queries/alert_counts_by_type.sql"))
    finally:
        lake.close()
    assert count == result.cold["raw_to_curated"]["readings_new"]
    assert devices == 3
    assert "event_type" in by_type.columns
    assert sum(row[by_type.columns.index("alerts")] for row in by_type.rows) == len(
        alerts(result.lake_dir).raised
    )


def test_local_verify_recounts_the_lake_and_finds_it_conserved(result: PipelineResult) -> None:
    from airlake.local.verify import verify

    report = verify(result.lake_dir.parent)

    assert report.ok, "\n".join(report.lines)
    assert report.lines[0].startswith("[ok] raw zone holds")


def test_local_verify_fails_when_a_curated_file_is_lost(result: PipelineResult, tmp_path: Path) -> None:
    import shutil

    from airlake.local.verify import verify

    copy = tmp_path / "state"
    shutil.copytree(result.lake_dir.parent, copy)
    next((copy / "lake" / "curated" / "readings").rglob("*.parquet")).unlink()

    report = verify(copy)

    assert not report.ok
    assert any(line.startswith("[FAIL]") and "curated readings" in line for line in report.lines)
