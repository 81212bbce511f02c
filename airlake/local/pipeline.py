"""The whole pipeline on the local runtime: what `make demo` and the integration tests run.

    simulator --PutRecords--> readings stream --ESM--> calibrate handler --> calibrated stream
                                   |                                            |--ESM--> aggregate handler
                                   |                                            '--ESM--> classify handler --> SNS
                                   '--raw landing (Firehose's job)--> s3://lake/raw/dt=/hour=/*.gz
    lake bucket --mirror--> <state>/lake/ --> Glue jobs on local Spark --> curated Parquet --> DuckDB SQL

The data goes through in chunks (produce a chunk, then let every consumer catch up), so this
process holds at most one chunk of records at a time whatever the fleet size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from airlake.local import endpoint as local_endpoint
from airlake.local.esm import EventSourceMapping, MappingSettings, sqs_on_failure
from airlake.local.firehose import RawLanding
from airlake.local.resources import create
from airlake.simulate import FleetConfig, Simulation

ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR: Final = ROOT / ".airlake"
DEFAULT_MODELS_DIR: Final = ROOT / "models"


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    devices: int = 20
    days: float = 60.0
    step_s: int = 1200
    seed: int = 0
    malformed_rate: float = 0.002
    duplicate_rate: float = 0.003
    upload_every: int = 3  # readings per Kinesis record (devices that buffer and upload arrays)
    stage: str = "local"  # cdk.json stage "local": dev settings with 1,000-record batches
    state_dir: Path = DEFAULT_STATE_DIR
    models_dir: Path = DEFAULT_MODELS_DIR
    chunk_records: int = 20_000
    cold_path: bool = True
    progress: bool = True
    endpoint_url: str | None = None  # reuse a running endpoint (`local up`) instead of starting one

    @property
    def lake_dir(self) -> Path:
        return self.state_dir / "lake"


@dataclass(slots=True)
class StageTiming:
    name: str
    seconds: float
    records: int


@dataclass(slots=True)
class PipelineResult:
    manifest: dict[str, Any]
    resources: dict[str, str]
    producer: dict[str, Any]
    mappings: dict[str, dict[str, Any]]
    landing: dict[str, Any]
    cold: dict[str, Any] = field(default_factory=dict)
    timings: list[StageTiming] = field(default_factory=list)
    critical_alerts_received: list[dict[str, Any]] = field(default_factory=list)
    all_alerts_received: int = 0
    lake_dir: Path = DEFAULT_STATE_DIR / "lake"
    labels: list[dict[str, Any]] = field(default_factory=list)
    endpoint_peak_rss_mb: float | None = None


def run(
    options: PipelineOptions,
    *,
    put_records_hook: Callable[[Any], Any] | None = None,
    spark: Any = None,
) -> PipelineResult:
    """Run simulator -> streams -> handlers -> raw lake -> Spark jobs. SQL and reports read the result.

    `put_records_hook` wraps the producer's Kinesis client (fault injection in tests); `spark` is
    an existing SparkSession to use (tests share one), else one is started and stopped here.
    """
    import boto3

    from airlake.producer import Producer
    from airlake.settings import load_stage_config

    config = load_stage_config(options.stage)
    options.state_dir.mkdir(parents=True, exist_ok=True)
    # The local lake mirrors this run's emulated bucket, which starts empty: a previous run's files
    # left in it would be read again by the cold path (its raw objects are other, same-day keys).
    shutil.rmtree(options.lake_dir, ignore_errors=True)
    warm_spark: Future[Any] | None = None
    if options.cold_path and spark is None:
        # The JVM takes seconds to start: start it while the hot path runs.
        from airlake.batch.session import local_spark

        warm_spark = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark").submit(
            local_spark, "airlake-local"
        )
    timings: list[StageTiming] = []
    with _endpoint(options) as url:
        local_endpoint.activate(url)
        simulation = Simulation(
            FleetConfig(devices=options.devices, days=options.days, step_s=options.step_s, seed=options.seed),
            malformed_rate=options.malformed_rate,
            duplicate_rate=options.duplicate_rate,
            upload_every=options.upload_every,
        )
        resources = create(config, models_dir=options.models_dir, devices=simulation.devices())
        os.environ.update(resources.lambda_env())
        handlers = _handlers()
        kinesis = boto3.client("kinesis")
        sqs = boto3.client("sqs")
        settings = MappingSettings.from_stage(config)
        on_failure = sqs_on_failure(sqs, resources.failure_queue_url)
        calibrate = EventSourceMapping(
            kinesis,
            resources.readings_stream,
            resources.readings_stream_arn,
            handlers["calibrate"],
            "calibrate",
            settings,
            on_failure=on_failure,
        )
        aggregate = EventSourceMapping(
            kinesis,
            resources.calibrated_stream,
            resources.calibrated_stream_arn,
            handlers["aggregate"],
            "aggregate",
            settings,
            on_failure=on_failure,
        )
        classify = EventSourceMapping(
            kinesis,
            resources.calibrated_stream,
            resources.calibrated_stream_arn,
            handlers["classify"],
            "classify",
            settings,
            on_failure=on_failure,
        )
        landing = RawLanding(
            kinesis,
            boto3.client("s3"),
            stream_name=resources.readings_stream,
            bucket=resources.lake_bucket,
            delivery_stream_name=config.names.raw_delivery_stream,
            buffer_size_mb=config.firehose.buffer_size_mb,
            buffer_interval_s=config.firehose.buffer_interval_seconds,
        )
        client = kinesis if put_records_hook is None else put_records_hook(kinesis)
        producer = Producer(client, resources.readings_stream)
        clocks: dict[str, float] = dict.fromkeys(
            ("produce", "calibrate", "raw landing", "aggregate", "classify"), 0.0
        )
        total = simulation.config.devices * simulation.config.steps // options.upload_every
        # Lambda's stdout (EMF metrics, logs) goes to a log file, as it would go to CloudWatch Logs.
        # Consumers of different streams run side by side, as separate Lambda functions and
        # Firehose do; each stream's consumers start after the chunk that feeds them is written.
        log_path = options.state_dir / "lambda.log"
        with (
            _bar(total, "stream + hot path", options.progress) as bar,
            log_path.open("a") as lambda_log,
            contextlib.redirect_stdout(lambda_log),
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="consumer") as pool,
        ):
            for chunk in _chunks(simulation, options.chunk_records):
                started = time.perf_counter()
                producer.send(chunk)
                clocks["produce"] += time.perf_counter() - started
                for phase in (
                    (("calibrate", calibrate.drain), ("raw landing", landing.drain)),
                    (("aggregate", aggregate.drain), ("classify", classify.drain)),
                ):
                    futures = [pool.submit(_timed, step) for _, step in phase]
                    for (name, _), future in zip(phase, futures, strict=True):
                        clocks[name] += future.result()
                bar.update(len(chunk))
        manifest = simulation.manifest()
        sent = manifest["elements"]
        timings.extend(StageTiming(name, seconds, sent) for name, seconds in clocks.items())
        critical = _receive_all(sqs, resources.critical_alerts_queue_url)
        everything = int(
            sqs.get_queue_attributes(
                QueueUrl=resources.all_alerts_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        started = time.perf_counter()
        mirrored = mirror_lake(boto3.client("s3"), resources.lake_bucket, options.lake_dir, ("raw/", "hot/"))
        (options.lake_dir / "reference" / "devices").mkdir(parents=True, exist_ok=True)
        (options.lake_dir / "reference" / "devices" / "devices.json").write_bytes(
            b"\n".join(orjson.dumps(device) for device in simulation.devices()) + b"\n"
        )
        timings.append(StageTiming("mirror lake", time.perf_counter() - started, mirrored))
        result = PipelineResult(
            manifest=manifest,
            resources=resources.describe(),
            producer={
                "sent": producer.stats.sent,
                "calls": producer.stats.calls,
                "retried_entries": producer.stats.retried_entries,
                "throttled_calls": producer.stats.throttled_calls,
                "failed": len(producer.stats.failed),
            },
            mappings={
                name: _mapping_summary(m)
                for name, m in (("calibrate", calibrate), ("aggregate", aggregate), ("classify", classify))
            },
            landing={
                "records": landing.stats.records,
                "objects": landing.stats.objects,
                "bytes_in": landing.stats.bytes_in,
                "bytes_out": landing.stats.bytes_out,
            },
            timings=timings,
            critical_alerts_received=critical,
            all_alerts_received=everything,
            lake_dir=options.lake_dir,
            labels=[label.to_dict() for label in simulation.fleet.labels],
        )
        _write_labels(options.state_dir, result.labels)
        result.endpoint_peak_rss_mb = _endpoint_peak_rss_mb(url)
    if options.cold_path:
        if warm_spark is not None:
            spark = warm_spark.result()
            try:
                result.cold = run_cold_path(options, result, spark)
            finally:
                spark.stop()
        else:
            result.cold = run_cold_path(options, result, spark)
    (options.state_dir / "last_run.json").write_bytes(
        orjson.dumps(summary_document(result), option=orjson.OPT_INDENT_2)
    )
    return result


def run_cold_path(options: PipelineOptions, result: PipelineResult, spark: Any = None) -> dict[str, Any]:
    """The Glue jobs, unchanged, on one local SparkSession over the mirrored lake."""
    from airlake.batch.session import local_spark
    from glue_jobs import compaction, raw_to_curated, rollups

    lake_root = str(options.lake_dir)
    raw_dates = sorted(p.name.removeprefix("dt=") for p in (options.lake_dir / "raw").glob("dt=*"))
    counts: dict[str, Any] = {}
    owned = spark is None
    spark = spark or local_spark("airlake-local")
    try:
        with _bar(3, "cold path (Spark)", options.progress) as bar:
            started = time.perf_counter()
            calibrator = raw_to_curated.load_calibrator(str(options.models_dir))
            counts["raw_to_curated"] = raw_to_curated.run_raw_to_curated(
                spark, lake_root, from_dt=raw_dates[0], to_dt=raw_dates[-1], calibrator=calibrator
            )
            result.timings.append(
                StageTiming("raw -> curated", time.perf_counter() - started, result.manifest["elements"])
            )
            bar.update(1)
            event_dates = counts["raw_to_curated"]["readings_partitions"]
            started = time.perf_counter()
            if event_dates:
                counts["rollups"] = rollups.run_rollups(
                    spark,
                    lake_root,
                    from_dt=event_dates[0],
                    to_dt=event_dates[-1],
                    nominal_step_s=float(options.step_s),
                )
            result.timings.append(StageTiming("rollups", time.perf_counter() - started, 0))
            bar.update(1)
            started = time.perf_counter()
            if event_dates:  # readings and rollups are partitioned by event date, quarantine by arrival date
                by_event = [name for name in sorted(compaction.COMPACTABLE) if name != "quarantine"]
                counts["compaction"] = compaction.run_compaction(
                    spark, lake_root, tables=by_event, from_dt=event_dates[0], to_dt=event_dates[-1]
                )
                counts["compaction"].update(
                    compaction.run_compaction(
                        spark, lake_root, tables=["quarantine"], from_dt=raw_dates[0], to_dt=raw_dates[-1]
                    )
                )
            result.timings.append(StageTiming("compaction", time.perf_counter() - started, 0))
            bar.update(1)
    finally:
        if owned:
            spark.stop()
    return counts


def mirror_lake(s3: Any, bucket: str, target: Path, prefixes: tuple[str, ...]) -> int:
    """Copy the lake bucket's objects under `prefixes` to a local folder Spark and DuckDB can read.

    PySpark here has no S3 connector for moto (the hadoop-aws jars are not on a reachable
    registry), so the local lake is a mirror of the bucket with the same keys.
    """
    wanted: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = target / item["Key"]
                if not (path.exists() and path.stat().st_size == item["Size"]):
                    wanted.append(item["Key"])

    def copy(key: str) -> None:
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="mirror") as pool:
        list(pool.map(copy, wanted))
    return len(wanted)


def summary_document(result: PipelineResult) -> dict[str, Any]:
    return {
        "manifest": result.manifest,
        "producer": result.producer,
        "mappings": result.mappings,
        "landing": result.landing,
        "cold": result.cold,
        "timings": [
            {"stage": t.name, "seconds": round(t.seconds, 2), "records": t.records} for t in result.timings
        ],
        "alerts_received": {
            "all": result.all_alerts_received,
            "critical_subscriber": len(result.critical_alerts_received),
        },
        "resources": result.resources,
    }


def _timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def _endpoint_peak_rss_mb(url: str) -> float | None:
    """Peak resident memory of the endpoint process we started (Linux /proc), if we started it."""
    from urllib.parse import urlparse

    port = urlparse(url).port
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"airlake.local.server" in cmdline and str(port).encode() in cmdline:
            for line in (status.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return None


def _handlers() -> dict[str, Callable[[dict[str, Any], Any], Any]]:
    """The real Lambda entry points, imported the way Lambda imports them."""
    from lambdas.aggregate.handler import handler as aggregate
    from lambdas.calibrate.handler import handler as calibrate
    from lambdas.classify.handler import handler as classify

    return {"calibrate": calibrate, "aggregate": aggregate, "classify": classify}


def _mapping_summary(mapping: EventSourceMapping) -> dict[str, Any]:
    stats = mapping.stats
    return {
        "invocations": stats.invocations,
        "records_delivered": stats.records_delivered,
        "records_succeeded": stats.records_succeeded,
        "function_errors": stats.function_errors,
        "partial_failures": stats.partial_failures,
        "bisections": stats.bisections,
        "records_to_on_failure": stats.records_to_on_failure,
    }


def _chunks(simulation: Simulation, size: int) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    for record in simulation.records():
        chunk.append((record.partition_key, record.data))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        reply = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        batch = reply.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            body = orjson.loads(message["Body"])
            messages.append(body)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def _write_labels(state_dir: Path, labels: list[dict[str, Any]]) -> None:
    with (state_dir / "labels.jsonl").open("wb") as sink:
        for label in labels:
            sink.write(orjson.dumps(label) + b"\n")


@contextmanager
def _endpoint(options: PipelineOptions) -> Iterator[str]:
    if options.endpoint_url is not None:
        local_endpoint.assert_loopback(options.endpoint_url)
        yield options.endpoint_url
        return
    running = local_endpoint.start(log_file=options.state_dir / "endpoint.log")
    try:
        yield running.url
    finally:
        running.stop()


@contextmanager
def _bar(total: int, description: str, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=description,
        unit="rec" if total > 10 else "job",
        unit_scale=True,
        disable=not enabled,
        leave=True,
    ) as bar:
        yield bar
