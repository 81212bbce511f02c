"""`airlake validate FILE`: judge a JSON-lines file (or a gzip of one) by the reading contract."""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import orjson

from airlake.cli._common import Subparsers, add_command


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "validate", "Check readings (JSON lines, optionally gzip) against the contract"
    )
    parser.add_argument("file", type=Path, help="JSON-lines file, '.gz' for gzip, '-' for stdin")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--quarantine-out", type=Path, help="write each quarantined record with its reason here"
    )
    parser.set_defaults(func=run)


def _open(path: Path) -> BinaryIO:
    if str(path) == "-":
        return sys.stdin.buffer
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def run(args: argparse.Namespace) -> int:
    from airlake.contract import Quarantined, decode

    valid = 0
    reasons: Counter[str] = Counter()
    sink = args.quarantine_out.open("wb") if args.quarantine_out else None
    try:
        with _open(args.file) as stream:
            for line_no, line in enumerate(stream, start=1):
                record = line.rstrip(b"\r\n")
                for result in decode(record):
                    if isinstance(result, Quarantined):
                        reasons[result.reason.value] += 1
                        if sink is not None:
                            entry = {
                                "line": line_no,
                                "index": result.index,
                                "reason": result.reason.value,
                                "detail": result.detail,
                                "raw": result.raw.decode("utf-8", errors="backslashreplace"),
                            }
                            sink.write(orjson.dumps(entry) + b"\n")
                    else:
                        valid += 1
    finally:
        if sink is not None:
            sink.close()
    if args.json:
        print(orjson.dumps({"valid": valid, "quarantined": dict(sorted(reasons.items()))}).decode())
    else:
        print(f"valid        {valid:>10,}")
        for reason, count in sorted(reasons.items()):
            print(f"{reason:<12} {count:>10,}")
        print(f"quarantined  {sum(reasons.values()):>10,}")
    return 1 if reasons else 0
