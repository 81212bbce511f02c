"""DynamoDB: window state of the aggregate Lambda, open events of classify, and idempotency records.

One table, generic keys (`pk`, `sk`), TTL on `expires_at`: the hot path owns its item layout. It is
on-demand (traffic follows the fleet), encrypted with the stage key and has point-in-time recovery,
since losing window state would silently change aggregates.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct


class StateTable(Construct):
    """Attribute: `table`."""

    def __init__(
        self, scope: Construct, id_: str, *, table_name: str, key: kms.IKey, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, id_)
        # Table (not TableV2): TableV2's customer-managed key needs a region-specific stack, and the
        # stacks stay region-agnostic so one synth deploys to any region.
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expires_at",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
        )
