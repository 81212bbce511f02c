"""`airlake local up|down|run|verify`: the embedded AWS endpoint and the pipeline on it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airlake.cli._common import Subparsers, add_command

DEFAULT_STATE = Path(".airlake")


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "local", "The local runtime: an in-process AWS endpoint and the real pipeline"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    up = verbs.add_parser(
        "up", help="start the local AWS endpoint, create the platform's resources, keep running"
    )
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--stage", default="local")
    up.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    up.set_defaults(func=run_up)

    down = verbs.add_parser("down", help="stop the endpoint started by `local up`")
    down.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    down.set_defaults(func=run_down)

    run = verbs.add_parser("run", help="simulate a fleet and run it through the whole pipeline")
    add_pipeline_arguments(run)
    run.set_defaults(func=run_pipeline)

    verify = verbs.add_parser("verify", help="check conservation of the last run's lake, end to end")
    verify.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    verify.set_defaults(func=run_verify)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--days", type=float, default=60.0)
    parser.add_argument(
        "--step", type=int, default=1200, help="seconds between a device's readings (default 1200)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--malformed-rate", type=float, default=0.002)
    parser.add_argument("--duplicate-rate", type=float, default=0.003)
    parser.add_argument(
        "--upload-every",
        type=int,
        default=3,
        help="readings a device buffers per upload, as one JSON-array record (default 3: hourly uploads)",
    )
    parser.add_argument(
        "--stage", default="local", help="settings from cdk.json context.stages (default local)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        help="lake (replaced on each run), report and logs (default .airlake)",
    )
    parser.add_argument("--endpoint-url", help="use a running `local up` endpoint instead of starting one")
    parser.add_argument("--no-cold-path", action="store_true", help="stop after the hot path and raw landing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from(args: argparse.Namespace) -> object:
    from airlake.local.pipeline import PipelineOptions

    return PipelineOptions(
        devices=args.devices,
        days=args.days,
        step_s=args.step,
        seed=args.seed,
        malformed_rate=args.malformed_rate,
        duplicate_rate=args.duplicate_rate,
        upload_every=args.upload_every,
        stage=args.stage,
        state_dir=args.state_dir.resolve(),
        endpoint_url=args.endpoint_url,
        cold_path=not args.no_cold_path,
        progress=not args.quiet,
    )


def run_up(args: argparse.Namespace) -> int:
    from airlake.local import endpoint
    from airlake.local.resources import create
    from airlake.settings import load_stage_config

    running = endpoint.load(args.state_dir)
    if running is not None and running.alive():
        print(
            f"already running at {running.url} (pid {running.pid}); `python -m airlake local down` stops it"
        )
        return 0
    started = (
        endpoint.start(args.port, log_file=args.state_dir.resolve() / "endpoint.log")
        if args.port
        else endpoint.start()
    )
    endpoint.save(started, args.state_dir)
    endpoint.activate(started.url)
    resources = create(load_stage_config(args.stage), models_dir=Path("models").resolve(), devices=None)
    env = endpoint.aws_env(started.url)
    print(f"Local AWS endpoint running at {started.url} (pid {started.pid}).\n")
    print("Point boto3 or the AWS CLI at it (dummy keys, valid only here):")
    for name, value in env.items():
        print(f"  export {name}={value}")
    print("\nResources:")
    for name, value in resources.describe().items():
        print(f"  {name:<34} {value}")
    print(
        "\nSend readings with the real SDK, e.g.\n"
        f"  python -m airlake simulate --devices 3 --days 1 --stream {resources.readings_stream} "
        f"--endpoint-url {started.url}\n"
        "  aws kinesis put-record --stream-name "
        f"{resources.readings_stream} --partition-key dev-1 --cli-binary-format raw-in-base64-out \\\n"
        '      --data \'{"device_id":"dev-1","ts":"2026-09-01T12:00:00Z","seq":1,"channels":{"co2":812}}\'\n'
        f"then process them: python -m airlake local run --endpoint-url {started.url} ...\n"
        "Stop it with: python -m airlake local down"
    )
    return 0


def run_down(args: argparse.Namespace) -> int:
    from airlake.local import endpoint

    running = endpoint.load(args.state_dir)
    if running is None:
        print("no local endpoint recorded in", args.state_dir)
        return 0
    running.stop()
    (args.state_dir / endpoint.ENDPOINT_FILE).unlink(missing_ok=True)
    print(f"stopped the local endpoint at {running.url}")
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from airlake.local import pipeline
    from airlake.local.demo import print_summary

    result = pipeline.run(options_from(args))  # type: ignore[arg-type]
    ok = print_summary(result)
    return 0 if ok else 1


def run_verify(args: argparse.Namespace) -> int:
    from airlake.local.verify import verify

    report = verify(args.state_dir.resolve())
    for line in report.lines:
        print(line)
    if not report.ok:
        print("verify: FAILED", file=sys.stderr)
        return 1
    print("verify: OK")
    return 0
