"""`airlake simulate`: a fleet from the vendored UCI year, to a file or to a Kinesis stream."""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from airlake.cli._common import Subparsers, add_command

if TYPE_CHECKING:
    from airlake.simulate import Simulation


def register(subparsers: Subparsers) -> None:
    parser = add_command(subparsers, "simulate", "Simulate a fleet of monitors (faults, events, labels)")
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--devices", type=int, default=20)
    fleet.add_argument("--days", type=float, default=60.0)
    fleet.add_argument("--step", type=int, default=300, help="seconds between readings (default 300)")
    fleet.add_argument(
        "--start", default="2026-09-01T00:00:00+00:00", help="ISO-8601 start (UTC if no offset)"
    )
    fleet.add_argument("--seed", type=int, default=0)
    fleet.add_argument("--no-faults", action="store_true", help="inject no device faults")
    fleet.add_argument("--no-events", action="store_true", help="inject no indoor air-quality events")
    fleet.add_argument(
        "--malformed-rate", type=float, default=0.0, help="share of records replaced by garbage"
    )
    fleet.add_argument("--duplicate-rate", type=float, default=0.0, help="share of records resent")
    fleet.add_argument(
        "--upload-every", type=int, default=1, help="readings per record (a JSON array when > 1)"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, help="JSON lines ('-' for stdout, '.gz' to compress)")
    out.add_argument("--labels-out", type=Path, help="ground truth: injected faults/events, JSON lines")
    out.add_argument("--devices-out", type=Path, help="device registry (device_id, site, model, ...), JSON")
    out.add_argument("--manifest-out", type=Path, help="counts of what was produced, JSON")
    out.add_argument("--labeled-csv", type=Path, help="one row per reading with event/fault labels (for ML)")
    kinesis = parser.add_argument_group("kinesis")
    kinesis.add_argument("--stream", help="send to this Kinesis stream with PutRecords")
    kinesis.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:4566 for the local runtime")
    kinesis.add_argument("--region", default="us-east-1")
    kinesis.add_argument("--rate", type=float, help="records per second cap")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _open_out(path: Path) -> IO[bytes]:
    if str(path) == "-":
        return sys.stdout.buffer
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wb")  # type: ignore[return-value]
    return path.open("wb")


def run(args: argparse.Namespace) -> int:
    from airlake.simulate import FleetConfig, Simulation
    from airlake.simulate.fleet import start_from_text

    if args.out is None and args.stream is None and args.labeled_csv is None:
        print("simulate: give --out FILE, --stream NAME or --labeled-csv FILE", file=sys.stderr)
        return 2
    config = FleetConfig(
        devices=args.devices,
        days=args.days,
        step_s=args.step,
        start=start_from_text(args.start),
        seed=args.seed,
        faults=not args.no_faults,
        events=not args.no_events,
    )
    sim = Simulation(
        config,
        malformed_rate=args.malformed_rate,
        duplicate_rate=args.duplicate_rate,
        upload_every=args.upload_every,
    )
    if args.stream:
        _to_stream(sim, args)
    elif args.out is not None:
        total = _expected_records(sim)
        with _open_out(args.out) as sink, _progress(total, args.quiet or str(args.out) == "-") as bar:
            for record in sim.records():
                sink.write(record.data + b"\n")
                bar.update(1)
    if args.labeled_csv is not None:
        from airlake.simulate.labeled import write_labeled_csv

        write_labeled_csv(sim.fleet, args.labeled_csv)
    if args.labels_out is not None:
        _write_lines(args.labels_out, [label.to_dict() for label in sim.fleet.labels])
    if args.devices_out is not None:
        args.devices_out.parent.mkdir(parents=True, exist_ok=True)
        args.devices_out.write_bytes(orjson.dumps(sim.devices(), option=orjson.OPT_INDENT_2))
    manifest = sim.manifest()
    if args.manifest_out is not None:
        args.manifest_out.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    if str(args.out) != "-":
        print(
            orjson.dumps(
                {k: manifest[k] for k in ("records", "elements", "readings", "duplicates", "malformed")}
            ).decode()
        )
    return 0


def _to_stream(sim: Simulation, args: argparse.Namespace) -> None:
    import boto3

    from airlake.producer import Producer

    client = boto3.client("kinesis", endpoint_url=args.endpoint_url, region_name=args.region)
    producer = Producer(client, args.stream, records_per_second=args.rate)
    with _progress(_expected_records(sim), args.quiet) as bar:
        stats = producer.send(((r.partition_key, r.data) for r in sim.records()), progress=bar.update)
    summary = {"sent": stats.sent, "calls": stats.calls, "retried_entries": stats.retried_entries}
    print(orjson.dumps({**summary, "failed": len(stats.failed)}).decode(), file=sys.stderr)
    if stats.failed:
        raise SystemExit(f"simulate: {len(stats.failed)} records could not be delivered")


def _expected_records(sim: Simulation) -> int:
    return sim.config.devices * sim.config.steps


def _progress(total: int, disable: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="rec", unit_scale=True, disable=disable, file=sys.stderr, desc="simulate")


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        for row in rows:
            sink.write(orjson.dumps(row) + b"\n")
