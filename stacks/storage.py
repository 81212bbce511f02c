"""Buckets: the lake (raw, curated, hot, quarantine), models, Athena results, and access logs.

Every data bucket is KMS-encrypted with the stage key, TLS-only, versioned, blocks public access and
logs server access to a dedicated log bucket. The log bucket itself uses SSE-S3 because S3 server
access logging cannot deliver to a KMS-encrypted target.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from airlake.settings import LakeConfig, ResourceNames
from stacks.nag import acknowledge

LAKE: Final = "lake"
MODELS: Final = "models"
ATHENA_RESULTS: Final = "athena-results"
ACCESS_LOGS: Final = "access-logs"


def bucket_name(names: ResourceNames, purpose: str) -> str:
    """Physical name of a stage bucket in the deploying account and region (CloudFormation tokens)."""
    return names.bucket(purpose, account=Aws.ACCOUNT_ID, region=Aws.REGION)


def nag_bucket_name(names: ResourceNames, purpose: str) -> str:
    """The same name as cdk-nag prints it in findings (pseudo-parameters as `<AWS::...>`)."""
    return names.bucket(purpose, account="<AWS::AccountId>", region="<AWS::Region>")


class LakeBuckets(Construct):
    """The stage's buckets. Attributes: `lake`, `models`, `athena_results`, `access_logs`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        names: ResourceNames,
        key: kms.IKey,
        lake: LakeConfig,
        athena_results_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=bucket_name(names, ACCESS_LOGS),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(lake.access_logs_retention_days),
                    noncurrent_version_expiration=Duration.days(lake.noncurrent_version_expiry_days),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server-access-log target bucket; logging it to itself would loop.",
        )

        raw_tiering = s3.LifecycleRule(
            id="raw-to-cheaper-storage",
            prefix="raw/",
            transitions=[
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=Duration.days(lake.raw_infrequent_access_after_days),
                ),
                s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=Duration.days(lake.raw_glacier_after_days),
                ),
            ],
        )
        self.lake = self._data_bucket(
            "Lake",
            name=bucket_name(names, LAKE),
            key=key,
            log_prefix="lake/",
            rules=[
                raw_tiering,
                self._noncurrent_rule(lake.noncurrent_version_expiry_days),
                s3.LifecycleRule(id="expire-glue-temp", prefix="glue-temp/", expiration=Duration.days(7)),
            ],
            removal_policy=removal_policy,
        )
        self.models = self._data_bucket(
            "Models",
            name=bucket_name(names, MODELS),
            key=key,
            log_prefix="models/",
            # Model versions are immutable objects referenced by registry.json; keep old versions
            # around long enough to roll back.
            rules=[self._noncurrent_rule(max(lake.noncurrent_version_expiry_days, 90))],
            removal_policy=removal_policy,
        )
        self.athena_results = self._data_bucket(
            "AthenaResults",
            name=bucket_name(names, ATHENA_RESULTS),
            key=key,
            log_prefix="athena-results/",
            rules=[
                s3.LifecycleRule(
                    id="expire-query-results",
                    expiration=Duration.days(athena_results_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )

    @staticmethod
    def _noncurrent_rule(days: int) -> s3.LifecycleRule:
        return s3.LifecycleRule(
            id="expire-old-versions",
            noncurrent_version_expiration=Duration.days(days),
            abort_incomplete_multipart_upload_after=Duration.days(7),
        )

    def _data_bucket(
        self,
        id_: str,
        *,
        name: str,
        key: kms.IKey,
        log_prefix: str,
        rules: list[s3.LifecycleRule],
        removal_policy: RemovalPolicy,
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            id_,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            # S3 Bucket Keys cut KMS request costs for Firehose/Glue's many small objects.
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=rules,
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )
