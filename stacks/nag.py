"""cdk-nag wiring and the one way to acknowledge a finding.

cdk-nag 3.x is a CDK policy-validation plugin: findings fail `app.synth()` unless acknowledged with
`Validations.of(construct).acknowledge(...)`. `acknowledge` below insists on a rule id and a reason,
and is applied to the narrowest construct that owns the finding, so every suppression names the rule,
the resource and why.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable_nag(app: App) -> None:
    """Run the AWS Solutions pack on every synth of `app` (errors fail the synth)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge_all(construct: IConstruct, findings: Mapping[str, str]) -> None:
    """Acknowledge several findings on one construct: {rule or rule[finding]: reason}."""
    for rule, reason in findings.items():
        acknowledge(construct, rule, reason)


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (`AwsSolutions-XX` or `AwsSolutions-XX[finding]`) on one construct."""
    if not rule.startswith("AwsSolutions-"):
        raise ValueError(f"not an AwsSolutions rule id: {rule!r}")
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


# Reasons shared by several IAM5 findings that come from CDK's own grant methods.
CDK_GRANT_ACTIONS = {
    "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": (
        "CDK's KMS grant: GenerateDataKey and GenerateDataKeyWithoutPlaintext on the stage key only."
    ),
    "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": (
        "CDK's KMS grant: ReEncryptFrom/To on the stage key only (no other key is reachable)."
    ),
}
S3_READ_ACTIONS = {
    "AwsSolutions-IAM5[Action::s3:GetObject*]": "CDK's S3 read grant (object and version reads), scoped to a prefix.",
    "AwsSolutions-IAM5[Action::s3:GetBucket*]": "CDK's S3 read grant: bucket location/metadata of one bucket.",
    "AwsSolutions-IAM5[Action::s3:List*]": "CDK's S3 read grant: listing one bucket (prefix-scoped objects).",
}
S3_WRITE_ACTIONS = {
    "AwsSolutions-IAM5[Action::s3:Abort*]": "CDK's S3 put grant: abort its own multipart uploads under the prefix.",
}
S3_DELETE_ACTIONS = {
    "AwsSolutions-IAM5[Action::s3:DeleteObject*]": "CDK's S3 write grant: replace or delete objects under the prefix.",
}
XRAY = {
    "AwsSolutions-IAM5[Resource::*]": (
        "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions."
    ),
}
