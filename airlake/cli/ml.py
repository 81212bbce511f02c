"""`airlake ml ...`: train, evaluate and use calibration and event-classification models.

Sub-commands: train-calibration, train-classifier, predict, backtest-calibration, report,
prepare-uci, build-fleet-models. Bad input (missing column, no numeric feature, too few rows) exits
with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airlake.cli._common import Subparsers, add_command


def _common_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, help="CSV with a header (comma, dot decimals)")
    parser.add_argument("--features", help="comma-separated feature columns (default: every numeric column)")
    parser.add_argument("--na-values", help="extra comma-separated missing-value markers, e.g. -200,NA")
    parser.add_argument("--seed", type=int, default=42, help="random seed (training is deterministic)")


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "ml", "Train, evaluate and apply calibration and event-classification models"
    )
    commands = parser.add_subparsers(title="ml commands", dest="ml_command", metavar="ML_COMMAND")

    cal = commands.add_parser("train-calibration", help="train a calibration regressor into an artifact")
    _common_inputs(cal)
    cal.add_argument("--target", required=True, help="reference column to predict")
    cal.add_argument("--model-out", type=Path, required=True, help="artifact directory to write")
    cal.add_argument("--timestamp", help="ISO-8601 event-time column: enables causal temporal features")
    cal.add_argument("--group", help="group column (e.g. device id): temporal state and folds per group")

    cls = commands.add_parser("train-classifier", help="train an event classifier into an artifact")
    _common_inputs(cls)
    cls.add_argument("--label", required=True, help="class column; empty cells count as unlabelled")
    cls.add_argument("--model-out", type=Path, required=True, help="artifact directory to write")
    cls.add_argument("--timestamp", help="ISO-8601 event-time column: enables causal temporal features")
    cls.add_argument("--group", help="group column (e.g. device id): temporal state and folds per group")
    cls.add_argument("--unlabelled", type=Path, help="CSV of unlabelled readings for self-training")

    pred = commands.add_parser("predict", help="score a CSV with an artifact (adds a 'prediction' column)")
    pred.add_argument("--model", type=Path, required=True, help="artifact directory")
    pred.add_argument("--input", type=Path, required=True, help="CSV with the model's input columns")
    pred.add_argument("--output", type=Path, required=True, help="CSV to write")
    pred.add_argument("--na-values", help="extra comma-separated missing-value markers")

    back = commands.add_parser("backtest-calibration", help="static vs walk-forward recalibration metrics")
    _common_inputs(back)
    back.add_argument("--target", required=True)
    back.add_argument("--timestamp", required=True)
    back.add_argument("--group", help="group column for temporal features and folds")
    back.add_argument("--window", default="28D", help="training window before each step (pandas duration)")
    back.add_argument("--step", default="7D", help="how long each recalibrated model is used")
    back.add_argument("--start", required=True, help="first walk-forward step (ISO date)")
    back.add_argument("--predictions-out", type=Path, required=True, help="CSV of out-of-sample predictions")

    rep = commands.add_parser("report", help="print an artifact's metadata and validation metrics")
    rep.add_argument("--model", type=Path, required=True)

    uci = commands.add_parser("prepare-uci", help="derive data/uci_air_quality/AirQualityUCI_clean.csv")
    uci.add_argument("--original", type=Path, default=Path("data/uci_air_quality/AirQualityUCI.csv"))
    uci.add_argument("--output", type=Path, default=Path("data/uci_air_quality/AirQualityUCI_clean.csv"))

    fleet = commands.add_parser("build-fleet-models", help="train the shipped fleet-default calibrations")
    fleet.add_argument("--input", type=Path, default=Path("data/uci_air_quality/AirQualityUCI_clean.csv"))
    fleet.add_argument("--models-dir", type=Path, default=Path("models"))
    fleet.add_argument("--classifier", type=Path, help="classifier artifact directory to register too")
    fleet.add_argument("--seed", type=int, default=42)
    parser.set_defaults(func=run, ml_parser=parser)


def _list(text: str | None) -> list[str] | None:
    from airlake.ml.data import split_list

    return split_list(text)


def run(args: argparse.Namespace) -> int:
    from airlake.ml import pipeline
    from airlake.ml.data import UsageError
    from airlake.ml.runtime import ArtifactError

    command = args.ml_command
    if command is None:
        args.ml_parser.print_help()
        return 2
    try:
        if command == "train-calibration":
            version = pipeline.train_calibration(
                args.input,
                target=args.target,
                model_out=args.model_out,
                features=_list(args.features),
                timestamp=args.timestamp,
                group=args.group,
                na_values=_list(args.na_values) or (),
                seed=args.seed,
            )
            print(pipeline.report(args.model_out))
            print(f"wrote {args.model_out} ({version})", file=sys.stderr)
        elif command == "train-classifier":
            version = pipeline.train_classifier(
                args.input,
                label=args.label,
                model_out=args.model_out,
                features=_list(args.features),
                timestamp=args.timestamp,
                group=args.group,
                na_values=_list(args.na_values) or (),
                seed=args.seed,
                unlabelled_csv=args.unlabelled,
            )
            print(pipeline.report(args.model_out))
            print(f"wrote {args.model_out} ({version})", file=sys.stderr)
        elif command == "predict":
            n = pipeline.predict(args.model, args.input, args.output, _list(args.na_values) or ())
            print(f"wrote {n} predictions to {args.output}", file=sys.stderr)
        elif command == "backtest-calibration":
            result = pipeline.backtest_calibration(
                args.input,
                target=args.target,
                timestamp=args.timestamp,
                window=args.window,
                step=args.step,
                start=args.start,
                predictions_out=args.predictions_out,
                features=_list(args.features),
                group=args.group,
                na_values=_list(args.na_values) or (),
                seed=args.seed,
            )
            pipeline.print_json(result)
        elif command == "report":
            print(pipeline.report(args.model))
        elif command == "prepare-uci":
            from airlake.ml.uci import write_clean

            print(f"wrote {write_clean(args.original, args.output)} rows to {args.output}", file=sys.stderr)
        elif command == "build-fleet-models":
            from airlake.ml.fleet import build_fleet_models

            registry = build_fleet_models(
                args.input, args.models_dir, seed=args.seed, classifier_dir=args.classifier
            )
            pipeline.print_json(registry)
    except (UsageError, ArtifactError) as error:
        print(f"airlake ml {command}: {error}", file=sys.stderr)
        return 2
    return 0
