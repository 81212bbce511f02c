"""`airlake local verify`: recount the last run from the lake itself and check conservation.

Nothing here trusts the jobs' own counters: the raw zone's lines, the curated table's rows and
keys, the quarantine table's reasons and the hot path's alert transitions are counted again with
DuckDB and compared with what the simulator says it sent (`last_run.json`).

Checks:
* every record sent landed in the raw zone, once (raw lines == records sent);
* curated readings have each idempotency key (device_id, ts_ms, seq) exactly once;
* raw lines == curated rows + quarantined rows + duplicates removed, and the duplicates removed
  equal the resends the simulator injected; quarantine reasons equal the injected garbage;
* no alert transition was written twice;
* every injected fault or event was alerted, or is listed as missed.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from airlake.local.summary import alerts, recall


@dataclass(slots=True)
class VerifyReport:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def check(self, passed: bool, text: str) -> None:
        self.lines.append(f"[{'ok' if passed else 'FAIL'}] {text}")
        self.ok = self.ok and passed


def verify(state_dir: Path) -> VerifyReport:
    import duckdb

    report = VerifyReport()
    summary_path = state_dir / "last_run.json"
    if not summary_path.exists():
        report.check(False, f"no run recorded in {state_dir} (run `python -m airlake local run` first)")
        return report
    run = orjson.loads(summary_path.read_bytes())
    manifest = run["manifest"]
    lake = state_dir / "lake"
    records = manifest["records"]
    elements = manifest["elements"]  # readings (and garbage) inside those records

    raw_lines = sum(_count_lines(path) for path in sorted((lake / "raw").rglob("*.gz")))
    report.check(raw_lines == records, f"raw zone holds {raw_lines:,} records; {records:,} were sent")

    con = duckdb.connect()
    readings_glob = str(lake / "curated" / "readings" / "**" / "*.parquet")
    quarantine_glob = str(lake / "curated" / "quarantine" / "**" / "*.parquet")
    rows, keys = 0, 0
    if any((lake / "curated" / "readings").rglob("*.parquet")):
        rows, keys = con.execute(
            f"SELECT count(*), count(DISTINCT (device_id, ts_ms, seq)) FROM read_parquet('{readings_glob}')"
        ).fetchone() or (0, 0)
    report.check(rows == keys, f"curated readings: {rows:,} rows, {keys:,} distinct idempotency keys")
    by_reason: dict[str, int] = {}
    if any((lake / "curated" / "quarantine").rglob("*.parquet")):
        by_reason = dict(
            con.execute(
                f"SELECT reason, count(*) FROM read_parquet('{quarantine_glob}') GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
    quarantined = sum(by_reason.values())
    duplicates = elements - rows - quarantined
    report.check(
        duplicates == manifest["duplicates"],
        f"{elements:,} readings sent = {rows:,} curated + {quarantined:,} quarantined + {duplicates:,} "
        f"duplicates removed ({manifest['duplicates']:,} resent readings injected)",
    )
    report.check(
        by_reason == manifest["malformed"],
        f"quarantine reasons {by_reason} match the injected garbage {manifest['malformed']}",
    )
    expected_readings = manifest["readings"]
    report.check(
        rows == expected_readings,
        f"{rows:,} curated readings; {expected_readings:,} valid readings were sent",
    )

    summary = alerts(lake)
    report.check(
        summary.duplicates == 0,
        f"{sum(summary.transitions.values()):,} alert transitions, {summary.duplicates} written twice",
    )
    labels = [orjson.loads(line) for line in (state_dir / "labels.jsonl").read_bytes().splitlines() if line]
    found = recall(labels, summary.raised)
    injected = {name: total for name, total in found.total.items() if "(" not in name}
    detected = sum(found.detected[name] for name in injected)
    report.check(True, f"injected faults/events alerted: {detected}/{sum(injected.values())}")
    for name in sorted(injected):
        report.lines.append(f"       {name:<28} {found.detected[name]:>4}/{injected[name]}")
    missed = [label for label in found.missed if label.get("source") == "injected"]
    for label in missed[:20]:
        report.lines.append(
            f"       missed: {label['device_id']} {label['kind']}:{label['type']} {label['start']} .. {label['end']}"
        )
    if len(missed) > 20:
        report.lines.append(
            f"       ... and {len(missed) - 20} more missed (all in {state_dir / 'labels.jsonl'})"
        )
    return report


def _count_lines(path: Path) -> int:
    with gzip.open(path, "rb") as stream:
        return sum(1 for _ in stream)
