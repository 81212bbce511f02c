"""Printing a local run for a person: conservation, windows, alerts, recall, SQL answers, report."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from airlake.local.pipeline import PipelineResult
from airlake.local.summary import alerts, conservation, recall, windows_emitted

DEMO_QUERIES: Final = (
    "athena/queries/alert_counts_by_type.sql",
    "athena/queries/quarantine_reasons_over_time.sql",
    "athena/queries/calibration_residuals.sql",
    "athena/queries/failed_upgrades.sql",
)


def print_summary(result: PipelineResult, *, sql: bool = True, report: bool = True) -> bool:
    """Print what the run did; return whether its counts are conserved."""
    manifest = result.manifest
    print()
    _title("What was sent")
    cfg = manifest["config"]
    print(
        f"  {cfg['devices']} devices x {cfg['days']:g} days at {cfg['step_s']} s: "
        f"{manifest['records']:,} Kinesis records carrying {manifest['elements']:,} readings = "
        f"{manifest['readings']:,} valid + {manifest['duplicates']:,} resent + "
        f"{sum(manifest['malformed'].values()):,} malformed"
    )
    print(
        f"  producer: {result.producer['sent']:,} acknowledged in {result.producer['calls']:,} PutRecords calls, "
        f"{result.producer['retried_entries']} entries retried, {result.producer['failed']} undeliverable"
    )
    _title("Hot path (Lambda handlers on the local event source mappings)")
    for name, stats in result.mappings.items():
        print(
            f"  {name:<10} {stats['invocations']:>6,} invocations, {stats['records_succeeded']:>9,} records, "
            f"{stats['partial_failures']} partial failures, {stats['records_to_on_failure']} to on-failure queue"
        )
    windows = windows_emitted(result.lake_dir)
    print(
        "  windows emitted: " + (", ".join(f"{n:,} {kind}" for kind, n in sorted(windows.items())) or "none")
    )
    print(
        f"  raw landing: {result.landing['records']:,} records in {result.landing['objects']} gzip objects "
        f"({result.landing['bytes_out'] / 1e6:.1f} MB)"
    )
    ok = True
    if result.cold:
        counts = result.cold["raw_to_curated"]
        check = conservation(manifest, counts)
        _title("Conservation (every record sent is curated, quarantined or a removed duplicate)")
        print(
            f"  sent {check.sent:,} = curated {check.curated:,} + quarantined {sum(check.quarantined.values()):,} "
            f"+ duplicates removed {check.duplicates_removed:,}   lost: {check.lost}"
        )
        reasons = sorted(set(check.quarantined) | set(check.expected_quarantined))
        for reason in reasons:
            got, want = check.quarantined.get(reason, 0), check.expected_quarantined.get(reason, 0)
            print(
                f"    {reason:<18} {got:>6,} quarantined   ({want:,} injected){'' if got == want else '  MISMATCH'}"
            )
        print(
            f"  duplicates removed {check.duplicates_removed:,} ({check.expected_duplicates:,} resends injected)"
        )
        print(f"  conservation: {'OK' if check.ok else 'FAILED'}")
        ok = check.ok
    summary = alerts(result.lake_dir)
    _title("Alerts (raise / update / clear, by type and severity)")
    by_type: dict[tuple[str, str], dict[str, int]] = {}
    for (status, event_type, severity), n in summary.transitions.items():
        by_type.setdefault((event_type, severity), {})[status] = n
    for (event_type, severity), statuses in sorted(by_type.items()):
        print(
            f"  {event_type:<14} {severity:<9} raised {statuses.get('raised', 0):>4}  "
            f"updated {statuses.get('updated', 0):>4}  cleared {statuses.get('cleared', 0):>4}"
        )
    print(f"  duplicate transitions in the lake: {summary.duplicates}")
    print(
        f"  SNS -> SQS: {result.all_alerts_received:,} messages to the unfiltered subscriber, "
        f"{len(result.critical_alerts_received):,} to the one filtering severity=critical"
    )
    found = recall(result.labels, summary.raised)
    _title("Detection of what the simulator injected")
    for name in sorted(found.total):
        total, hit = found.total[name], found.detected[name]
        print(f"  {name:<34} {hit:>4}/{total:<4} detected ({hit / total:.0%})")
    unexplained = sum(found.unexplained_alerts.values())
    print(
        f"  alerts with no injected cause: {unexplained} "
        + (
            f"({', '.join(f'{k} {v}' for k, v in found.unexplained_alerts.most_common())})"
            if unexplained
            else ""
        )
    )
    if sql and result.cold:
        _print_sql(result.lake_dir)
    if report and result.cold:
        from airlake.local.report import write_report

        path = write_report(result.lake_dir, result.lake_dir.parent / "report.html", summary.raised)
        _title("Report")
        print(f"  {path}")
    _title("Timings")
    for timing in result.timings:
        rate = (
            f"{timing.records / timing.seconds:,.0f} records/s" if timing.records and timing.seconds else ""
        )
        print(f"  {timing.name:<18} {timing.seconds:7.1f} s  {rate}")
    print(
        f"\nThe lake stays in {result.lake_dir}; query it with: python -m airlake sql --lake {result.lake_dir} "
        '"SELECT device_id, count(*) FROM readings GROUP BY 1"'
    )
    return ok


def _print_sql(lake_dir: Path) -> None:
    from airlake.sql.runner import LocalLake, sql_text

    root = Path(__file__).resolve().parents[2]
    lake = LocalLake(lake_dir)
    for relative in DEMO_QUERIES:
        path = root / relative
        if not path.exists():
            continue
        _title(f"SQL: {relative}")
        question = next(
            (line[2:].strip() for line in path.read_text().splitlines() if line.startswith("--")), ""
        )
        if question:
            print(f"  -- {question}")
        result = lake.query(sql_text(path))
        print("  " + _table(result.columns, result.rows, max_rows=8).replace("\n", "\n  "))
    lake.close()


def _table(columns: list[str], rows: list[tuple[object, ...]], *, max_rows: int) -> str:
    shown = [[_cell(v) for v in row] for row in rows[:max_rows]]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _title(text: str) -> None:
    print(f"\n== {text}")
