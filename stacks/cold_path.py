"""Cold path: Glue Data Catalog tables, the Glue 5 PySpark jobs and the workflow that orders them.

Tables come from `airlake.catalog` (the single source of truth shared with the local SQL runner),
with partition projection so no crawler or `MSCK REPAIR` is needed. Job scripts come from
`glue_jobs/<name>.py`; their domain code is the same `airlake/` package, zipped for
`--extra-py-files`; third-party modules are pinned from `constraints.txt` for
`--additional-python-modules`, so Glue runs exactly what the tests ran.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aws_cdk import Aws, Duration
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from airlake.catalog import TABLES, Table
from airlake.settings import REPO_ROOT, GlueConfig
from stacks.bundling import domain_zip_asset

# Run order of the batch workflow; each job starts when the previous one succeeded.
GLUE_JOBS: Final = ("raw_to_curated", "rollups", "compaction")
# Third-party modules the domain package imports that Glue 5 does not ship.
GLUE_EXTRA_MODULES: Final = ("orjson",)


def pinned_modules(names: Sequence[str], constraints: str) -> str:
    """`name==version,...` for Glue's --additional-python-modules, from constraints.txt pins."""
    pins: list[str] = []
    for name in names:
        match = re.search(rf"^{re.escape(name)}==(\S+)$", constraints, flags=re.MULTILINE | re.IGNORECASE)
        if match is None:
            raise ValueError(f"{name} is not pinned in constraints.txt")
        pins.append(f"{name}=={match.group(1)}")
    return ",".join(pins)


class LakeCatalog(Construct):
    """Glue database plus one external table per `airlake.catalog.TABLES`. Attributes: `database`, `tables`."""

    def __init__(self, scope: Construct, id_: str, *, database_name: str, lake: s3.IBucket) -> None:
        super().__init__(scope, id_)
        self.database_name = database_name
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description="Airlake lake tables (raw, curated, hot outputs)"
            ),
        )
        lake_root = f"s3://{lake.bucket_name}"
        self.tables: dict[str, glue.CfnTable] = {}
        for table in TABLES:
            cfn_table = self._table(table, lake_root)
            cfn_table.add_resource_dependency(self.database)
            self.tables[table.name] = cfn_table

    def _table(self, table: Table, lake_root: str) -> glue.CfnTable:
        def columns(cols: Sequence[object]) -> list[glue.CfnTable.ColumnProperty]:
            return [
                glue.CfnTable.ColumnProperty(name=c.name, type=c.type, comment=c.comment)  # type: ignore[attr-defined]
                for c in cols
            ]

        return glue.CfnTable(
            self,
            f"Table-{table.name}",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table.name,
                description=table.description,
                table_type="EXTERNAL_TABLE",
                parameters=table.table_parameters(lake_root),
                partition_keys=columns(table.partition_keys),
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=table.location_uri(lake_root),
                    columns=columns(table.columns),
                    input_format=table.input_format,
                    output_format=table.output_format,
                    compressed=table.format != "parquet",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=table.serde_library,
                        parameters=dict(table.serde_parameters) or None,
                    ),
                ),
            ),
        )

    def table_arns(self) -> list[str]:
        base = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        return [
            f"{base}:catalog",
            f"{base}:database/{self.database_name}",
            f"{base}:table/{self.database_name}/*",
        ]


class BatchJobs(Construct):
    """Glue 5 PySpark jobs, their role, security configuration and the scheduled workflow.

    Attributes: `jobs` (name -> job), `role`, `workflow`, `security_configuration`.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        job_names: dict[str, str],
        workflow_name: str,
        catalog: LakeCatalog,
        lake: s3.IBucket,
        key: kms.IKey,
        config: GlueConfig,
        scripts_dir: Path = REPO_ROOT / "glue_jobs",
    ) -> None:
        super().__init__(scope, id_)
        missing = [name for name in GLUE_JOBS if not (scripts_dir / f"{name}.py").is_file()]
        if missing:
            raise FileNotFoundError(f"Glue job scripts missing from {scripts_dir}: {missing}")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Airlake Glue jobs: read raw/, write curated/, update the catalog",
        )
        lake.grant_read(self.role, "raw/*")
        lake.grant_read(self.role, "hot/*")
        lake.grant_read(self.role, "reference/*")
        lake.grant_read_write(self.role, "curated/*")
        lake.grant_delete(self.role, "curated/*")  # compaction replaces small files
        lake.grant_read_write(self.role, "glue-temp/*")
        key.grant_encrypt_decrypt(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CatalogOfTheLake",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:BatchCreatePartition",
                    "glue:CreatePartition",
                    "glue:UpdatePartition",
                    "glue:UpdateTable",
                ],
                resources=catalog.table_arns(),
            )
        )
        log_groups = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="GlueJobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[log_groups],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="GlueJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; scoped by namespace below
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )

        self.security_configuration = glue.SecurityConfiguration(
            self,
            "Encryption",
            security_configuration_name=f"{workflow_name}-encryption",
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(key),
            s3_encryption=glue.S3Encryption.kms(key),
        )

        domain = domain_zip_asset(self, "DomainPackage")
        domain.grant_read(self.role)
        constraints = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8")
        common_args = {
            "--lake_root": f"s3://{lake.bucket_name}",
            "--database": catalog.database_name,
            "--job-bookmark-option": "job-bookmark-enable",
            "--additional-python-modules": pinned_modules(GLUE_EXTRA_MODULES, constraints),
            "--TempDir": f"s3://{lake.bucket_name}/glue-temp/",
            "--enable-glue-datacatalog": "true",
        }
        self.jobs: dict[str, glue.PySparkEtlJob] = {}
        for name in GLUE_JOBS:
            self.jobs[name] = glue.PySparkEtlJob(
                self,
                f"Job-{name}",
                job_name=job_names[name],
                description=f"Airlake batch: glue_jobs/{name}.py",
                role=self.role,
                script=glue.Code.from_asset(str(scripts_dir / f"{name}.py")),
                extra_python_files=[glue.Code.from_bucket(domain.bucket, domain.s3_object_key)],
                glue_version=glue.GlueVersion.V5_0,
                worker_configuration=glue.WorkerConfiguration(
                    worker_type=glue.WorkerType(config.worker_type.replace(".", "_")),
                    number_of_workers=config.number_of_workers,
                ),
                timeout=Duration.minutes(config.timeout_minutes),
                max_retries=config.max_retries,
                max_concurrent_runs=1,  # bookmarks assume one run at a time
                security_configuration=self.security_configuration,
                default_arguments=common_args,
            )

        self.workflow = glue.CfnWorkflow(
            self,
            "Workflow",
            name=workflow_name,
            description="raw_to_curated -> rollups -> compaction",
            max_concurrent_runs=1,
        )
        schedule = glue.CfnTrigger(
            self,
            "Schedule",
            name=f"{workflow_name}-schedule",
            workflow_name=workflow_name,
            type="SCHEDULED",
            schedule=config.schedule_cron,
            start_on_creation=True,
            actions=[glue.CfnTrigger.ActionProperty(job_name=job_names[GLUE_JOBS[0]])],
        )
        schedule.add_resource_dependency(self.workflow)
        schedule.node.add_dependency(self.jobs[GLUE_JOBS[0]])
        for previous, following in itertools.pairwise(GLUE_JOBS):
            trigger = glue.CfnTrigger(
                self,
                f"After-{previous}",
                name=f"{workflow_name}-after-{previous.replace('_', '-')}",
                workflow_name=workflow_name,
                type="CONDITIONAL",
                start_on_creation=True,
                predicate=glue.CfnTrigger.PredicateProperty(
                    logical="AND",
                    conditions=[
                        glue.CfnTrigger.ConditionProperty(
                            job_name=job_names[previous], state="SUCCEEDED", logical_operator="EQUALS"
                        )
                    ],
                ),
                actions=[glue.CfnTrigger.ActionProperty(job_name=job_names[following])],
            )
            trigger.add_resource_dependency(self.workflow)
            for job in self.jobs.values():
                trigger.node.add_dependency(job)
