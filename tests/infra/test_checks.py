"""cdk-nag and cfn-lint gates, and the prod stage synth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from stacks.nag import acknowledge, enable_nag
from tests.infra.conftest import PARTS, Synth, synthesize

pytestmark = pytest.mark.infra

# cfn-lint warnings produced by CDK itself, not by our code:
# W3005: CDK adds DependsOn on a role's policy next to a GetAtt of the role (ordering on purpose).
# W7001: the Firehose L2 adds a region CIDR mapping that is only used with VPC destinations.
CDK_GENERATED_WARNINGS = ["W3005", "W7001"]


def test_cdk_nag_reports_no_unacknowledged_findings(dev: Synth) -> None:
    """The session synth ran AwsSolutionsChecks (it raises on errors); no warning may be left either."""
    report = json.loads((dev.outdir / "validation-report.json").read_text())
    nag = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert [v["ruleName"] for p in nag for v in p["violations"]] == []


def test_cdk_nag_fails_the_synth_of_a_non_compliant_construct(tmp_path: Path) -> None:
    """Proves the gate can fail: an unencrypted queue without a DLQ must stop the synth."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Throwaway")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED, enforce_ssl=False)
    enable_nag(app)
    with pytest.raises(RuntimeError, match=r"AwsSolutions-SQS2[\s\S]*Throwaway/Plain"):
        app.synth()


def test_acknowledge_requires_a_rule_id_and_a_reason(tmp_path: Path) -> None:
    """Every suppression must name the rule and say why."""
    stack = Stack(App(outdir=str(tmp_path)), "Throwaway")
    with pytest.raises(ValueError, match="not an AwsSolutions rule"):
        acknowledge(stack, "SQS3", "a long enough reason for the test")
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(stack, "AwsSolutions-SQS3", "because")


@pytest.mark.parametrize("part", PARTS)
def test_cfn_lint_passes(dev: Synth, part: str) -> None:
    """CloudFormation would reject what cfn-lint flags as an error; warnings are ours to fix too."""
    matches = lint(
        json.dumps(dev.templates[part]),
        config=ManualArgs(regions=["us-east-1", "eu-west-1"], ignore_checks=CDK_GENERATED_WARNINGS),
    )
    assert [str(m) for m in matches] == []


def test_prod_stage_synthesizes_with_its_own_settings(tmp_path: Path) -> None:
    """`cdk synth -c stage=prod` must pass cdk-nag too, with provisioned shards and retained data."""
    prod = synthesize("prod", tmp_path)
    streams = prod.resources("AWS::Kinesis::Stream")
    assert sorted((r["Properties"]["StreamModeDetails"]["StreamMode"], r["Properties"]["ShardCount"],
                   r["Properties"]["RetentionPeriodHours"]) for r in streams.values()) == [
        ("PROVISIONED", 4, 168), ("PROVISIONED", 4, 168)
    ]  # fmt: skip
    for bucket in prod.resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
    mappings = prod.resources("AWS::Lambda::EventSourceMapping").values()
    assert {(m["Properties"]["BatchSize"], m["Properties"]["ParallelizationFactor"]) for m in mappings} == {
        (500, 2)
    }
