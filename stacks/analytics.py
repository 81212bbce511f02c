"""Athena: the analysts' workgroup, named queries and views, all SQL read from `athena/*.sql`.

The workgroup enforces its configuration (engine v3, KMS-encrypted results in their own bucket, a
bytes-scanned cutoff per query), so a client cannot opt out of encryption or the cost limit.

Views: `athena/views/*.sql` (one `CREATE OR REPLACE VIEW` each) are executed through Athena itself by
an `AwsCustomResource` after the catalog tables exist. Athena writes the view definition in its own
Presto/Trino encoding; building Glue `VIRTUAL_VIEW` tables by hand would mean duplicating every view's
output column types in Python and re-encoding the SQL, a second source of truth. The trade-off:
`StartQueryExecution` is asynchronous, so a view whose SQL fails at deploy time does not fail the
stack; the SQL is tested locally (DuckDB) and the deploy section says how to check.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CfnResource, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from airlake.settings import REPO_ROOT
from stacks.nag import acknowledge_all

ATHENA_DIR = REPO_ROOT / "athena"
ENGINE_V3 = "Athena engine version 3"
# Construct id CDK gives the Lambda shared by every AwsCustomResource of a stack.
AWS_CUSTOM_RESOURCE_SINGLETON = "AWS679f53fac002430cb0da5b7982bd2287"


@dataclass(frozen=True, slots=True)
class SqlFile:
    """One statement from athena/<kind>/<name>.sql; the first `--` line says what it answers."""

    name: str
    description: str
    sql: str

    @classmethod
    def read(cls, path: Path) -> SqlFile:
        text = path.read_text(encoding="utf-8").strip()
        first = text.splitlines()[0] if text else ""
        if not first.startswith("--"):
            raise ValueError(f"{path} must begin with a `--` comment saying what it answers")
        return cls(
            name=path.stem, description=first.lstrip("- ").strip()[:1024], sql=text.rstrip(";").strip()
        )


def sql_files(kind: str, root: Path = ATHENA_DIR) -> list[SqlFile]:
    """Every `athena/<kind>/*.sql`, in file-name order."""
    return [SqlFile.read(path) for path in sorted((root / kind).glob("*.sql"))]


_COMMENT = re.compile(r"--[^\n]*")


def in_dependency_order(views: list[SqlFile]) -> list[SqlFile]:
    """Views ordered so each comes after the views it names (e.g. `device_lifecycle` after
    `readings`), otherwise in file-name order. A name counts when it appears as a whole word
    outside comments; a cycle is an error, since Athena could create neither view."""
    names = {view.name for view in views}
    needs = {
        view.name: {
            other
            for other in names - {view.name}
            if re.search(rf"\b{re.escape(other)}\b", _COMMENT.sub("", view.sql), re.IGNORECASE)
        }
        for view in views
    }
    ordered: list[SqlFile] = []
    done: set[str] = set()
    pending = list(views)
    while pending:
        ready = [view for view in pending if needs[view.name] <= done]
        if not ready:
            raise ValueError(f"views depend on each other in a cycle: {sorted(v.name for v in pending)}")
        first = ready[0]
        ordered.append(first)
        done.add(first.name)
        pending.remove(first)
    return ordered


class AnalyticsWorkgroup(Construct):
    """Attributes: `workgroup`, `named_queries`, `views` (custom resources)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        workgroup_name: str,
        database_name: str,
        results: s3.IBucket,
        key: kms.IKey,
        bytes_scanned_cutoff_bytes: int,
        tables: list[CfnResource],
        lake: s3.IBucket,
        results_nag_name: str,
    ) -> None:
        super().__init__(scope, id_)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=workgroup_name,
            description="Airlake analysts: enforced engine v3, encrypted results, per-query scan cutoff",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff_bytes,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_V3),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )
        self.named_queries: list[athena.CfnNamedQuery] = []
        for query in sql_files("queries"):
            named = athena.CfnNamedQuery(
                self,
                f"Query-{query.name}",
                name=query.name,
                description=query.description,
                database=database_name,
                work_group=workgroup_name,
                query_string=query.sql,
            )
            named.add_resource_dependency(self.workgroup)
            self.named_queries.append(named)

        self.views: list[cr.AwsCustomResource] = []
        views = in_dependency_order(sql_files("views"))
        if views:
            self._create_views(
                views,
                workgroup_name=workgroup_name,
                database_name=database_name,
                results=results,
                key=key,
                tables=tables,
                lake=lake,
                results_nag_name=results_nag_name,
            )

    def _create_views(
        self,
        views: list[SqlFile],
        *,
        workgroup_name: str,
        database_name: str,
        results: s3.IBucket,
        key: kms.IKey,
        tables: list[CfnResource],
        lake: s3.IBucket,
        results_nag_name: str,
    ) -> None:
        arn = f"arn:{Aws.PARTITION}"
        glue_base = f"{arn}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        statements = [
            iam.PolicyStatement(
                actions=["athena:StartQueryExecution", "athena:GetQueryExecution"],
                resources=[f"{arn}:athena:{Aws.REGION}:{Aws.ACCOUNT_ID}:workgroup/{workgroup_name}"],
            ),
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:DeleteTable",
                ],
                resources=[
                    f"{glue_base}:catalog",
                    f"{glue_base}:database/{database_name}",
                    f"{glue_base}:table/{database_name}/*",
                ],
            ),
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket"],
                resources=[results.bucket_arn, lake.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[results.arn_for_objects("results/*")],
            ),
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
            ),
        ]
        policy = cr.AwsCustomResourcePolicy.from_statements(statements)
        previous: Construct | None = None
        for view in views:
            digest = hashlib.sha256(view.sql.encode()).hexdigest()[:16]
            call = cr.AwsSdkCall(
                service="Athena",
                action="startQueryExecution",
                parameters={
                    "QueryString": view.sql,
                    "WorkGroup": workgroup_name,
                    "QueryExecutionContext": {"Database": database_name},
                },
                # A new physical id per SQL version: an edited view is re-created on update.
                physical_resource_id=cr.PhysicalResourceId.of(f"{database_name}.{view.name}.{digest}"),
            )
            resource = cr.AwsCustomResource(
                self,
                f"View-{view.name}",
                on_create=call,
                on_update=call,
                # A view is a Glue table: deleting it needs no SQL and succeeds if it is already gone.
                on_delete=cr.AwsSdkCall(
                    service="Glue",
                    action="deleteTable",
                    parameters={"DatabaseName": database_name, "Name": view.name},
                    ignore_error_codes_matching="EntityNotFoundException",
                ),
                policy=policy,
                install_latest_aws_sdk=False,
            )
            resource.node.add_dependency(self.workgroup, *tables)
            if previous is not None:
                resource.node.add_dependency(previous)
            previous = resource
            self.views.append(resource)
        findings = {
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{database_name}/*]": (
                "CREATE OR REPLACE VIEW reads the stage database's tables and writes the view (a Glue table)."
            ),
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{results_nag_name}/results/*]": (
                "Athena writes the DDL statement's result object under the workgroup's results/ prefix."
            ),
        }
        for resource in self.views:
            acknowledge_all(resource, findings)
        # AwsCustomResource runs every view through one CDK-managed singleton Lambda.
        provider = Stack.of(self).node.try_find_child(AWS_CUSTOM_RESOURCE_SINGLETON)
        if provider is not None:
            acknowledge_all(
                provider,
                {
                    **findings,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": (
                        "CDK's AwsCustomResource provider role; it only runs at deploy time and needs its own logs."
                    ),
                },
            )
