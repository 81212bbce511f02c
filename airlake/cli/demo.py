"""`airlake demo`: the whole pipeline locally on the embedded default, then what it found."""

from __future__ import annotations

import argparse

from airlake.cli._common import Subparsers, add_command
from airlake.cli.local import add_pipeline_arguments, options_from


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers,
        "demo",
        "Simulate a fleet and run it end to end locally (moto endpoint, handlers, Spark, SQL); print a summary",
    )
    add_pipeline_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from airlake.local import pipeline
    from airlake.local.demo import print_summary

    options = options_from(args)
    print(
        f"Airlake demo: {args.devices} devices x {args.days:g} days at {args.step} s, seed {args.seed}. "
        f"State in {args.state_dir}/ (lake, report, logs)."
    )
    result = pipeline.run(options)  # type: ignore[arg-type]
    return 0 if print_summary(result) else 1
