"""One synthesis of the whole CDK app per test run (dev stage, cdk-nag on), shared by every test.

The app gets the same context the CDK CLI passes from cdk.json, plus `aws:cdk:bundling-stacks = []`
(CDK's standard switch) so Lambda and Glue assets are not bundled here: tests stay fast and offline.
`cdk synth` / `cdk deploy` bundle for real.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")

from aws_cdk import App
from aws_cdk.assertions import Template

from airlake.settings import DEFAULT_CDK_JSON, StageConfig, load_stage_config
from stacks.nag import enable_nag
from stacks.platform import build_platform

PARTS = ("Data", "HotPath", "ColdPath", "Monitoring")


def cli_context() -> dict[str, Any]:
    """cdk.json context as the CDK CLI would pass it, without bundling."""
    context = json.loads(DEFAULT_CDK_JSON.read_text(encoding="utf-8"))["context"]
    context = {k: v for k, v in context.items() if k != "stages"}
    context["aws:cdk:bundling-stacks"] = []
    return context


@dataclass(frozen=True)
class Synth:
    config: StageConfig
    outdir: Path
    templates: dict[str, dict[str, Any]]  # part -> CloudFormation template

    def template(self, part: str) -> Template:
        return Template.from_json(self.templates[part])

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        """Every resource of `cfn_type` across all stacks, keyed by `<part>/<logical id>`."""
        found: dict[str, dict[str, Any]] = {}
        for part, template in self.templates.items():
            for logical_id, resource in template.get("Resources", {}).items():
                if resource["Type"] == cfn_type:
                    found[f"{part}/{logical_id}"] = resource
        return found


def synthesize(stage: str, outdir: Path) -> Synth:
    config = load_stage_config(stage)
    app = App(context={**cli_context(), "stage": stage}, outdir=str(outdir))
    build_platform(app, config)
    enable_nag(app)
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    templates = {part: assembly.get_stack_by_name(f"Airlake-{stage}-{part}").template for part in PARTS}
    return Synth(config=config, outdir=outdir, templates=templates)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))
