"""Where the hot path finds the current model version.

The SSM parameter holds the S3 key (in the models bucket) of the current `registry.json`. Publishing a
model is: upload the artifacts and a new registry object, then update the parameter; the Lambdas
pick it up on their next refresh without a redeploy. The stack only creates the parameter with a
placeholder value and never overwrites later updates (CloudFormation only changes it when this
initial value changes).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_ssm as ssm
from constructs import Construct

INITIAL_REGISTRY_KEY: Final = "registry.json"


class ModelPointer(Construct):
    """Attribute: `parameter` (String, value = S3 key of the current registry JSON)."""

    def __init__(self, scope: Construct, id_: str, *, parameter_name: str) -> None:
        super().__init__(scope, id_)
        self.parameter = ssm.StringParameter(
            self,
            "Current",
            parameter_name=parameter_name,
            string_value=INITIAL_REGISTRY_KEY,
            description="S3 key (models bucket) of the current model registry JSON; update to roll models",
            tier=ssm.ParameterTier.STANDARD,
        )
