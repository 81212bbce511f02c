"""What a local run shows: conservation of counts, windows, alerts, and recall of injected labels.

Conservation (checked, not just printed): every record sent is exactly one of
  a curated reading, a quarantined record (per reason), or a duplicate removed by the
  idempotency key,
and the quarantine reasons equal the reasons of the garbage the simulator injected.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson

# Detection slack: an alert counts for a label if it starts within this much of the label's span.
SLACK_MS: Final = 30 * 60 * 1000
# Simulator label kind -> alert category.
CATEGORY: Final = {"event": "air_quality", "fault": "device_fault"}


@dataclass(slots=True)
class Conservation:
    sent: int
    curated: int
    quarantined: dict[str, int]
    duplicates_removed: int
    expected_quarantined: dict[str, int]
    expected_duplicates: int

    @property
    def accounted(self) -> int:
        return self.curated + sum(self.quarantined.values()) + self.duplicates_removed

    @property
    def lost(self) -> int:
        return self.sent - self.accounted

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.quarantined == self.expected_quarantined
            and self.duplicates_removed == self.expected_duplicates
        )


@dataclass(slots=True)
class AlertSummary:
    transitions: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (status, type, severity)
    raised: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0  # the same transition (transition_id) written twice


@dataclass(slots=True)
class Recall:
    detected: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    missed: list[dict[str, Any]] = field(default_factory=list)
    unexplained_alerts: Counter[str] = field(default_factory=Counter)


def read_json_lines(folder: Path) -> Iterator[dict[str, Any]]:
    """Every JSON line of every (gzip) file under a lake folder."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            for line in stream:
                if line.strip():
                    yield orjson.loads(line)


def conservation(manifest: dict[str, Any], curated_counts: dict[str, Any]) -> Conservation:
    return Conservation(
        sent=manifest["elements"],
        curated=curated_counts["readings_new"],
        quarantined=dict(sorted(curated_counts["quarantined_by_reason"].items())),
        duplicates_removed=curated_counts["duplicates_removed"],
        expected_quarantined=dict(sorted(manifest["malformed"].items())),
        expected_duplicates=manifest["duplicates"],
    )


def alerts(lake_dir: Path) -> AlertSummary:
    summary = AlertSummary()
    seen: set[str] = set()
    for alert in read_json_lines(lake_dir / "hot" / "alerts"):
        key = alert["transition_id"]
        if key in seen:
            summary.duplicates += 1
            continue
        seen.add(key)
        summary.transitions[(alert["status"], alert["event_type"], alert["severity"])] += 1
        if alert["status"] == "raised":
            summary.raised.append(alert)
    return summary


def windows_emitted(lake_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for window in read_json_lines(lake_dir / "hot" / "aggregates"):
        counts[str(window["window"])] += 1
    return counts


def recall(labels: list[dict[str, Any]], raised: list[dict[str, Any]]) -> Recall:
    """Which injected labels got an alert of their category on their device, near their span."""
    result = Recall()
    by_device: dict[str, list[tuple[int, str, str]]] = {}
    for alert in raised:
        by_device.setdefault(alert["device_id"], []).append(
            (_ms(alert["episode_start"]), alert["category"], alert["event_type"])
        )
    explained: set[tuple[str, int, str]] = set()
    for label in labels:
        name = f"{label['kind']}:{label['type']}"
        if label.get("source") != "injected":
            name += f" ({label['source']})"
        start, end = _ms(label["start"]), _ms(label["end"])
        result.total[name] += 1
        hits = [
            (ts, category, kind)
            for ts, category, kind in by_device.get(label["device_id"], [])
            if category == CATEGORY[label["kind"]] and start - SLACK_MS <= ts <= end + SLACK_MS
        ]
        if hits:
            result.detected[name] += 1
            explained.update((label["device_id"], ts, kind) for ts, _, kind in hits)
        else:
            result.missed.append(label)
    for alert in raised:
        if (alert["device_id"], _ms(alert["episode_start"]), alert["event_type"]) not in explained:
            result.unexplained_alerts[alert["event_type"]] += 1
    return result


def _ms(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
