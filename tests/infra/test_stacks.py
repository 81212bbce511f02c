"""What the synthesized templates must guarantee. Each test's docstring says why it matters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from airlake.catalog import TABLES
from stacks.analytics import SqlFile, in_dependency_order, sql_files
from stacks.cold_path import GLUE_JOBS
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties", {})


# --- encryption at rest ---------------------------------------------------------------------


def test_every_stream_is_kms_encrypted(dev: Synth) -> None:
    """Readings are personal-ish location data: both streams must use the stage CMK."""
    streams = dev.resources("AWS::Kinesis::Stream")
    assert len(streams) == 2
    for resource in streams.values():
        assert _props(resource)["StreamEncryption"]["EncryptionType"] == "KMS"
        assert "KeyId" in _props(resource)["StreamEncryption"]


def test_every_bucket_is_encrypted_private_versioned_and_logged(dev: Synth) -> None:
    """Lake, models and results hold all data; a public or unencrypted bucket is the classic leak."""
    buckets = dev.resources("AWS::S3::Bucket")
    assert len(buckets) == 4
    kms_buckets = 0
    for name, resource in buckets.items():
        props = _props(resource)
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        if rule["SSEAlgorithm"] == "aws:kms":
            kms_buckets += 1
            assert "KMSMasterKeyID" in rule
            assert "LoggingConfiguration" in props, name
        else:  # only the access-log target, which S3 logging requires to be SSE-S3
            assert rule["SSEAlgorithm"] == "AES256"
            assert "LoggingConfiguration" not in props
    assert kms_buckets == 3


def test_every_bucket_policy_denies_plain_http(dev: Synth) -> None:
    """TLS-only: a policy statement must deny any request with aws:SecureTransport=false."""
    policies = dev.resources("AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for resource in policies.values():
        statements = _props(resource)["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_raw_zone_moves_to_cheaper_storage_and_old_versions_expire(dev: Synth) -> None:
    """Raw is kept for replay but rarely read; old versions would otherwise be paid for forever."""
    dev.template("Data").has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Prefix": "raw/",
                                "Status": "Enabled",
                                "Transitions": [
                                    {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
                                    {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
                                ],
                            }
                        ),
                        Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}}),
                    ]
                )
            }
        },
    )


def test_topics_are_kms_encrypted_and_tls_only(dev: Synth) -> None:
    """Alerts reveal where the air is bad; topics must be encrypted and refuse non-TLS access."""
    topics = dev.resources("AWS::SNS::Topic")
    assert sorted(_props(t)["TopicName"] for t in topics.values()) == [
        "airlake-dev-alerts",
        "airlake-dev-ops",
    ]
    for resource in topics.values():
        assert "KmsMasterKeyId" in _props(resource)
    policies = dev.resources("AWS::SNS::TopicPolicy")
    assert len(policies) == 2
    for resource in policies.values():
        statements = _props(resource)["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in statements)


def test_every_queue_is_kms_encrypted(dev: Synth) -> None:
    """On-failure queues carry shard pointers of failed batches: encrypted like the data."""
    queues = dev.resources("AWS::SQS::Queue")
    assert len(queues) == 3
    for resource in queues.values():
        assert "KmsMasterKeyId" in _props(resource)


def test_state_table_is_encrypted_recoverable_and_expires(dev: Synth) -> None:
    """Window state must survive mistakes (PITR) and not grow forever (TTL)."""
    dev.template("Data").has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "airlake-dev-state",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )


def test_key_rotates(dev: Synth) -> None:
    """A customer-managed key without rotation fails most security reviews."""
    dev.template("Data").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


# --- ingest ---------------------------------------------------------------------------------


def test_firehose_lands_raw_gzip_with_error_prefix_and_no_transformation(dev: Synth) -> None:
    """Raw is the replayable source of truth: unchanged records, gzip, failures kept apart."""
    (stream,) = dev.resources("AWS::KinesisFirehose::DeliveryStream").values()
    props = _props(stream)
    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    s3 = props["ExtendedS3DestinationConfiguration"]
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["Prefix"] == "raw/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    assert s3["ErrorOutputPrefix"].startswith("raw-errors/")
    assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 16}
    assert "KMSEncryptionConfig" in s3["EncryptionConfiguration"]
    # Only newline framing: no Lambda transformation of the records.
    processors = s3["ProcessingConfiguration"]["Processors"]
    assert [p["Type"] for p in processors] == ["AppendDelimiterToRecord"]


# --- hot path -------------------------------------------------------------------------------


def test_event_source_mappings_have_bounded_retries_and_partial_failures(dev: Synth) -> None:
    """Default ESM retries forever: one poison record would block its shard for the retention."""
    mappings = dev.resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 3
    es = dev.config.event_source
    for resource in mappings.values():
        props = _props(resource)
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is True
        assert props["MaximumRetryAttempts"] == es.max_retry_attempts == 3
        assert props["MaximumRecordAgeInSeconds"] == es.max_record_age_seconds == 3600
        assert props["BatchSize"] == es.batch_size
        assert props["MaximumBatchingWindowInSeconds"] == es.max_batching_window_seconds
        assert props["ParallelizationFactor"] == es.parallelization_factor
        assert props["StartingPosition"] == "TRIM_HORIZON"
        assert "OnFailure" in props["DestinationConfig"]


def test_functions_are_arm64_traced_with_settings_and_logs(dev: Synth) -> None:
    """Runtime contract with the handlers: env var names, arm64 wheels, tracing, retained logs."""
    functions = {
        _props(r)["FunctionName"]: _props(r)
        for r in dev.resources("AWS::Lambda::Function").values()
        if _props(r).get("FunctionName", "").startswith("airlake-")
    }
    assert sorted(functions) == ["airlake-dev-aggregate", "airlake-dev-calibrate", "airlake-dev-classify"]
    expected_env = {
        "calibrate": {"CALIBRATED_STREAM_NAME", "MODELS_BUCKET", "MODEL_POINTER_PARAMETER"},
        "aggregate": {"STATE_TABLE_NAME"},
        "classify": {"STATE_TABLE_NAME", "ALERTS_TOPIC_ARN", "MODELS_BUCKET", "MODEL_POINTER_PARAMETER"},
    }
    common = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL", "LAKE_BUCKET"}
    for handler, env_names in expected_env.items():
        props = functions[f"airlake-dev-{handler}"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.14"
        assert props["Handler"] == f"lambdas.{handler}.handler.handler"
        assert props["TracingConfig"] == {"Mode": "Active"}
        variables = props["Environment"]["Variables"]
        assert set(variables) == common | env_names
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Airlake"
        assert variables["POWERTOOLS_SERVICE_NAME"] == handler
        assert "LoggingConfig" in props
    log_groups = {
        _props(r)["LogGroupName"]: _props(r)
        for r in dev.resources("AWS::Logs::LogGroup").values()
        if isinstance(_props(r).get("LogGroupName"), str)
    }
    for handler in expected_env:
        assert log_groups[f"/aws/lambda/airlake-dev-{handler}"]["RetentionInDays"] == 14


def test_model_pointer_parameter_exists(dev: Synth) -> None:
    """The hot path finds the current model through this parameter; its name is a contract."""
    dev.template("Data").has_resource_properties(
        "AWS::SSM::Parameter", {"Name": "/airlake/dev/models/current", "Type": "String"}
    )


def test_lambdas_only_read_models(dev: Synth) -> None:
    """Models are published by training, never by the hot path: no write on the models bucket."""
    for name, policy in dev.resources("AWS::IAM::Policy").items():
        text = json.dumps(_props(policy))
        if "airlake-dev-models-" not in text:
            continue
        for statement in _props(policy)["PolicyDocument"]["Statement"]:
            if "airlake-dev-models-" in json.dumps(statement.get("Resource")):
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert all(a.startswith(("s3:GetObject", "s3:GetBucket", "s3:List")) for a in actions), name


# --- cold path ------------------------------------------------------------------------------


def test_glue_jobs_are_glue5_with_bookmarks_and_domain_package(dev: Synth) -> None:
    """Same Spark line as local tests (3.5), incremental runs, domain code from airlake/."""
    jobs = {_props(r)["Name"]: _props(r) for r in dev.resources("AWS::Glue::Job").values()}
    assert sorted(jobs) == sorted(f"airlake-dev-{j.replace('_', '-')}" for j in GLUE_JOBS)
    for props in jobs.values():
        assert props["GlueVersion"] == "5.0"
        assert props["Command"]["Name"] == "glueetl"
        assert props["Command"]["PythonVersion"] == "3"
        assert "SecurityConfiguration" in props
        args = props["DefaultArguments"]
        assert args["--job-bookmark-option"] == "job-bookmark-enable"
        assert args["--database"] == "airlake_dev"
        assert "--lake_root" in args
        assert args["--additional-python-modules"] == "orjson==3.13.0"
        assert "--extra-py-files" in args


def test_glue_security_configuration_encrypts_logs_bookmarks_and_s3(dev: Synth) -> None:
    """Glue writes data, logs and bookmarks: all three must be KMS-encrypted."""
    dev.template("ColdPath").has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "CloudWatchEncryption": {
                    "CloudWatchEncryptionMode": "SSE-KMS",
                    "KmsKeyArn": Match.any_value(),
                },
                "JobBookmarksEncryption": {
                    "JobBookmarksEncryptionMode": "CSE-KMS",
                    "KmsKeyArn": Match.any_value(),
                },
                "S3Encryptions": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": Match.any_value()}],
            }
        },
    )


def test_workflow_runs_jobs_in_order_on_a_schedule(dev: Synth) -> None:
    """rollups read curated output and compaction rewrites it: order matters."""
    triggers = {_props(r)["Name"]: _props(r) for r in dev.resources("AWS::Glue::Trigger").values()}
    schedule = triggers["airlake-dev-batch-schedule"]
    assert schedule["Type"] == "SCHEDULED"
    assert schedule["Actions"] == [{"JobName": "airlake-dev-raw-to-curated"}]
    chain = [(t["Predicate"]["Conditions"][0]["JobName"], t["Actions"][0]["JobName"])
             for t in triggers.values() if t["Type"] == "CONDITIONAL"]  # fmt: skip
    assert sorted(chain) == [
        ("airlake-dev-raw-to-curated", "airlake-dev-rollups"),
        ("airlake-dev-rollups", "airlake-dev-compaction"),
    ]


def test_every_catalog_table_is_defined_with_projection(dev: Synth) -> None:
    """Tables come from airlake.catalog; projection means no crawler or MSCK REPAIR."""
    tables = {
        _props(r)["TableInput"]["Name"]: _props(r)["TableInput"]
        for r in dev.resources("AWS::Glue::Table").values()
    }
    assert sorted(tables) == sorted(t.name for t in TABLES)
    for table in TABLES:
        parameters = tables[table.name]["Parameters"]
        if table.partition_keys:
            assert parameters["projection.enabled"] == "true"
            assert parameters["storage.location.template"]
        assert [c["Name"] for c in tables[table.name]["PartitionKeys"]] == [
            k.name for k in table.partition_keys
        ]


# --- analytics ------------------------------------------------------------------------------


def test_workgroup_is_enforced_v3_encrypted_with_scan_cutoff(dev: Synth) -> None:
    """Enforcement stops clients from skipping encryption or the per-query cost limit."""
    dev.template("ColdPath").has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "airlake-dev-analytics",
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 1024 * 1024 * 1024,
                "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
                "ResultConfiguration": {
                    "OutputLocation": Match.any_value(),
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()},
                },
            },
        },
    )


def test_named_queries_and_views_come_from_the_sql_files(dev: Synth) -> None:
    """SQL lives in athena/*.sql only: one named query per query file, one view resource per view file."""
    queries = {_props(r)["Name"]: _props(r) for r in dev.resources("AWS::Athena::NamedQuery").values()}
    files = sql_files("queries")
    assert sorted(queries) == sorted(f.name for f in files)
    for file in files:
        assert queries[file.name]["QueryString"] == file.sql
    views = dev.resources("Custom::AWS")
    assert len(views) == len(sql_files("views"))


def test_views_are_created_after_the_views_they_use(dev: Synth) -> None:
    """Each view resource waits for the previous one; `readings` (over curated_readings) must come
    before the views that select from it, whatever the file names' order."""
    views = {key.split("/", 1)[1]: r for key, r in dev.resources("Custom::AWS").items()}  # "Stack/LogicalId"
    name_of = {
        logical: json.loads(_props(r)["Create"])["parameters"]["QueryString"].split("VIEW ", 1)[1].split()[0]
        for logical, r in views.items()
    }
    previous = {
        logical: next((d for d in r.get("DependsOn", []) if d in views), None) for logical, r in views.items()
    }
    order = []
    current = next(logical for logical in views if logical not in set(previous.values()))  # the last one
    while current is not None:
        order.append(name_of[current])
        current = previous[current]
    order.reverse()
    assert len(order) == len(views)
    for user in ("device_lifecycle", "firmware_periods"):
        assert order.index("readings") < order.index(user)


def test_view_dependency_order_and_cycles() -> None:
    def view(name: str, sql: str) -> SqlFile:
        return SqlFile(name=name, description="", sql=sql)

    # Given b uses c (a mention in a comment does not count), and a uses nothing
    files = [view("a", "-- not b\nSELECT 1"), view("b", "SELECT * FROM c"), view("c", "SELECT 2")]
    # Then c comes before b, the rest keeps file-name order
    assert [v.name for v in in_dependency_order(files)] == ["a", "c", "b"]
    # And a cycle is refused
    with pytest.raises(ValueError, match="cycle"):
        in_dependency_order([view("x", "SELECT * FROM y"), view("y", "SELECT * FROM x")])


# --- monitoring -----------------------------------------------------------------------------


def test_alarms_cover_the_pipeline_and_notify_ops(dev: Synth) -> None:
    """Every failure mode named in the runbook has an alarm wired to the ops topic."""
    alarms = dev.resources("AWS::CloudWatch::Alarm")
    metrics = sorted(_props(a).get("MetricName", "") for a in alarms.values())
    assert metrics.count("IteratorAge") == 3
    assert metrics.count("Errors") == 3
    assert metrics.count("Throttles") == 3
    assert metrics.count("ApproximateNumberOfMessagesVisible") == 3
    assert metrics.count("GetRecords.IteratorAgeMilliseconds") == 2
    assert metrics.count("DeliveryToS3.DataFreshness") == 1
    assert metrics.count("DeliveryToS3.Success") == 1
    assert metrics.count("TriggeredRules") == len(GLUE_JOBS)  # Glue job FAILED events
    for alarm in alarms.values():
        assert len(_props(alarm)["AlarmActions"]) == 1
    dev.template("Monitoring").resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_iterator_age_alarm_fires_before_records_expire(dev: Synth) -> None:
    """An alarm at or after MaximumRecordAge would only report data already sent to the DLQ."""
    for alarm in dev.resources("AWS::CloudWatch::Alarm").values():
        if _props(alarm).get("MetricName") == "IteratorAge":
            assert (
                _props(alarm)["Threshold"] == 600_000 < dev.config.event_source.max_record_age_seconds * 1000
            )


# --- IAM ------------------------------------------------------------------------------------

# Actions AWS offers no resource-level permission for, so "Resource": "*" is the only option.
RESOURCE_STAR_ALLOWED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}


def _policy_statements(dev: Synth) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, policy in dev.resources("AWS::IAM::Policy").items():
        found += [(name, s) for s in _props(policy)["PolicyDocument"]["Statement"]]
    for name, role in dev.resources("AWS::IAM::Role").items():
        for inline in _props(role).get("Policies", []):
            found += [(name, s) for s in inline["PolicyDocument"]["Statement"]]
    return found


def test_no_wildcard_iam_actions(dev: Synth) -> None:
    """Least privilege: no `*` or `service:*` action in any identity policy."""
    statements = _policy_statements(dev)
    assert len(statements) > 20
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (name, action)


def test_resource_star_only_for_actions_without_resource_types(dev: Synth) -> None:
    """`Resource: *` is allowed only where AWS has no resource-level permissions."""
    for name, statement in _policy_statements(dev):
        resources = statement.get("Resource")
        if resources == "*" or (isinstance(resources, list) and "*" in resources):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert set(actions) <= RESOURCE_STAR_ALLOWED, (name, actions)


def test_no_aws_managed_policies_on_our_roles(dev: Synth) -> None:
    """AWSLambdaBasicExecutionRole and friends grant more than one log group."""
    for name, role in dev.resources("AWS::IAM::Role").items():
        if "CustomS3AutoDeleteObjects" in name or "AWS679f53fac002430cb0da5b7982bd2287" in name:
            continue  # CDK's own custom-resource providers
        assert "ManagedPolicyArns" not in _props(role), name
