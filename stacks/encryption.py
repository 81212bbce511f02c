"""The stage's customer-managed KMS key.

One key per stage encrypts streams, buckets, topics, queues, the state table and Glue output. A
customer-managed key (not an AWS-managed one) is what lets CloudWatch alarms publish to an
encrypted SNS topic and lets Glue encrypt its logs: both need key-policy statements for the service
principals, which only a customer-managed key can carry.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class PlatformKey(Construct):
    """KMS key with rotation, plus the service statements encrypted SNS and Glue logs need."""

    def __init__(self, scope: Construct, id_: str, *, alias: str, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description="Airlake data at rest: streams, lake, topics, queues, state, Glue output",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch alarms publish to the KMS-encrypted ops topic: the alarm service must be able to
        # generate a data key, scoped to SNS in this account.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"StringEquals": {"kms:ViaService": f"sns.{Aws.REGION}.amazonaws.com"}},
            )
        )
        # Glue's security configuration encrypts its CloudWatch log groups with this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForGlue",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                    }
                },
            )
        )
