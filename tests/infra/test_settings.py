"""Stage configuration: cdk.json stages validate, and bad settings fail with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlake.settings import StageConfigError, load_stage_config, stage_config_from_context


def test_default_stage_is_dev_with_its_names() -> None:
    """The local runtime creates resources under these names; they must match the stacks."""
    config = load_stage_config()
    assert config.stage == "dev"
    assert config.names.readings_stream == "airlake-dev-readings"
    assert config.names.calibrated_stream == "airlake-dev-calibrated"
    assert config.names.state_table == "airlake-dev-state"
    assert config.names.model_pointer_parameter == "/airlake/dev/models/current"
    assert config.names.glue_database == "airlake_dev"
    assert config.names.glue_job("raw_to_curated") == "airlake-dev-raw-to-curated"
    assert config.names.bucket("lake", account="123456789012", region="eu-west-1") == (
        "airlake-dev-lake-123456789012-eu-west-1"
    )


def test_prod_stage_loads() -> None:
    config = load_stage_config("prod")
    assert (config.stream.capacity_mode, config.stream.shard_count, config.retain_data) == (
        "provisioned",
        4,
        True,
    )
    assert config.athena.bytes_scanned_cutoff_bytes == 100 * 1024**3


def test_config_is_frozen() -> None:
    config = load_stage_config()
    with pytest.raises(ValueError, match="frozen"):
        config.stage = "prod"  # type: ignore[misc]


def test_unknown_stage_names_the_known_ones() -> None:
    with pytest.raises(StageConfigError, match=r"stage 'qa' is not defined .*\['dev', 'local', 'prod'\]"):
        load_stage_config("qa")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stream": {"shard_count": 0}}, "shard_count"),
        ({"stream": {"shards": 2}}, "Extra inputs are not permitted"),
        ({"firehose": {"buffer_size_mb": 129}}, "buffer_size_mb"),
        ({"event_source": {"batch_size": 10_001}}, "batch_size"),
        ({"log_retention_days": 10}, "log_retention_days=10 is not one of"),
        ({"athena": {"bytes_scanned_cutoff_mb": 5}}, "bytes_scanned_cutoff_mb"),
        ({"alarms": {"iterator_age_seconds": 3600}}, "must be below event_source.max_record_age_seconds"),
        ({"event_source": {"max_record_age_seconds": 86_401}}, "exceeds the stream retention"),
        ({"windows": {"sliding_seconds": 700}}, "multiple of windows.slide_step_seconds"),
        ({"lake": {"raw_glacier_after_days": 30}}, "greater than or equal to 31"),
    ],
)
def test_invalid_settings_fail_with_a_readable_message(settings: dict[str, object], message: str) -> None:
    with pytest.raises(StageConfigError, match=message):
        stage_config_from_context("dev", {"dev": settings})


def test_missing_stages_object(tmp_path: Path) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"app": "x", "context": {}}))
    with pytest.raises(StageConfigError, match=r"no context\.stages"):
        load_stage_config(cdk_json=cdk_json)
