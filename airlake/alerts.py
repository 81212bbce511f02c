"""Alert documents (schemas/alert.v1.json) and their SNS message attributes.

An alert is one lifecycle transition (raised, updated, cleared) of one episode: a device and an
event type from the episode's start. `alert_id` is derived from (device_id, event_type, episode
start), so every transition of an episode shares it, and `transition_id` adds status and time, so a
subscriber can drop the rare duplicate delivery: the classify stage records a transition in its
state only after SNS accepted it, so a crash between the two publishes it again (at-least-once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from airlake.classification import Transition
from airlake.contract.decoder import iso_from_ms

SCHEMA_VERSION: Final = "1"
ATTRIBUTES: Final = ("severity", "event_type", "device_id", "site", "status", "schema_version")


def build_alert(
    transition: Transition,
    *,
    site: str,
    label: str | None = None,
    model_version: str | None = None,
) -> dict[str, Any]:
    """The versioned JSON document for one transition (validates against alert.v1.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "alert_id": transition.alert_id,
        "transition_id": transition.transition_id,
        "status": transition.status,
        "event_type": transition.event_type,
        "category": transition.category,
        "severity": transition.severity,
        "device_id": transition.device_id,
        "site": site,
        "channel": transition.channel,
        "episode_start": iso_from_ms(transition.episode_start_ms),
        "at": iso_from_ms(transition.at_ms),
        "at_ms": transition.at_ms,
        "value": transition.value,
        "peak": transition.peak,
        "threshold": transition.threshold,
        "label": label,
        "model_version": model_version,
        "detail": transition.detail,
    }


def message_attributes(alert: Mapping[str, Any]) -> dict[str, str]:
    """SNS message attributes (all String) so subscribers can filter with a filter policy."""
    return {name: str(alert[name]) for name in ATTRIBUTES}
