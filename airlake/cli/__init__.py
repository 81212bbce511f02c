"""`python -m airlake`: one entry point, one sub-command per module in this package.

Each command module exposes `register(subparsers)` that adds its parser and sets
`func=run` (a callable taking the parsed namespace and returning an exit code). Command modules
keep heavy imports (pandas, pyspark, moto, sklearn) inside `run`, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from airlake import __version__

# (module under airlake.cli, in the order `--help` lists them)
COMMANDS: tuple[str, ...] = (
    "demo",
    "local",
    "validate",
    "simulate",
    "sql",
    "ml",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airlake",
        description="Airlake: serverless air-quality data platform. Local tools and the embedded pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"airlake {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"airlake.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result
