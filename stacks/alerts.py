"""SNS topics: `alerts` for subscribers of air-quality events and device faults, `ops` for alarms.

Message-attribute contract of `alerts` (all String attributes, set by the classify Lambda), so
subscribers filter with SNS filter policies instead of parsing bodies:

=================  ==========================================================
attribute          values
=================  ==========================================================
severity           info | warning | critical
event_type         e.g. high_co2, high_pm25, stuck_sensor, drift, offline
device_id          the device the alert is about
site               the device's site
status             raised | updated | cleared
schema_version     version of the JSON body, e.g. "1"
=================  ==========================================================

Both topics are KMS-encrypted and their policies deny any publish or subscribe without TLS.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

ALERT_MESSAGE_ATTRIBUTES: Final = ("severity", "event_type", "device_id", "site", "status", "schema_version")
SEVERITIES: Final = ("info", "warning", "critical")
STATUSES: Final = ("raised", "updated", "cleared")


class AlertTopics(Construct):
    """Attributes: `alerts` (subscribers' topic) and `ops` (alarm notifications)."""

    def __init__(
        self, scope: Construct, id_: str, *, alerts_topic_name: str, ops_topic_name: str, key: kms.IKey
    ) -> None:
        super().__init__(scope, id_)
        self.alerts = sns.Topic(
            self,
            "Alerts",
            topic_name=alerts_topic_name,
            display_name="Airlake air-quality alerts",
            master_key=key,
            enforce_ssl=True,
        )
        self.ops = sns.Topic(
            self,
            "Ops",
            topic_name=ops_topic_name,
            display_name="Airlake operations alarms",
            master_key=key,
            enforce_ssl=True,
        )
