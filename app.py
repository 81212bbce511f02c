"""CDK entry point: read the stage's settings from cdk.json, build its stacks, run cdk-nag.

npx cdk synth               # default stage (cdk.json context.stage, "dev")
npx cdk synth -c stage=prod
"""

from __future__ import annotations

from aws_cdk import App

from airlake.settings import load_stage_config
from stacks.nag import enable_nag
from stacks.platform import build_platform

app = App()
build_platform(app, load_stage_config(app.node.try_get_context("stage")))
enable_nag(app)
app.synth()
