"""`python -m airlake` commands as a user runs them."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson

from airlake.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_commands_in_a_fresh_interpreter() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airlake", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for command in ("validate", "simulate"):
        assert command in done.stdout


def test_simulate_then_validate_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    assert (
        main(["simulate", "--devices", "2", "--days", "1", "--seed", "1", "--out", str(out), "--quiet"]) == 0
    )
    assert main(["validate", str(out)]) == 0


def test_validate_counts_reasons_as_json_writes_quarantine_and_exits_one(
    tmp_path: Path, capsys: object
) -> None:
    good = b'{"device_id":"a","ts":"2026-09-01T00:00:00Z","seq":1,"channels":{"co2":500}}'
    data = tmp_path / "mixed.jsonl.gz"
    with gzip.open(data, "wb") as sink:
        sink.write(
            b"\n".join([good, b"{oops", b'{"device_id":"a","seq":2,"channels":{"co2":1}}', good]) + b"\n"
        )
    quarantine = tmp_path / "q.jsonl"

    code = main(["validate", str(data), "--json", "--quarantine-out", str(quarantine)])

    assert code == 1
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert orjson.loads(printed) == {"valid": 2, "quarantined": {"invalid_json": 1, "missing_field": 1}}
    rows = [orjson.loads(line) for line in quarantine.read_bytes().splitlines()]
    assert [(r["line"], r["reason"], r["raw"]) for r in rows] == [
        (2, "invalid_json", "{oops"),
        (3, "missing_field", '{"device_id":"a","seq":2,"channels":{"co2":1}}'),
    ]
