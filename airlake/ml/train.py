"""Training with honest model selection: calibration regressors and event classifiers.

Selection never uses a random split. Rows of sensor data come in contiguous episodes and sensors
drift, so a random split leaks an episode's neighbours into its validation and rewards memorising:

* with a timestamp: forward chaining in event time (train on the earliest blocks, validate on the
  next one), `N_SPLITS` folds;
* with a group but no timestamp: grouped folds (a device or episode is never on both sides);
* with neither: contiguous blocks in file order (the file order is the only structure we know).

Candidates (all exportable exactly to the hot-path runtime):

* calibration members: `ridge_raw` (ridge on the raw columns: the baseline), `ridge` (ridge on the
  engineered features), `huber` (the same linear model with Huber's robust loss: reference analysers
  have bad hours and a few weeks of data cannot outvote them under a squared loss), `ridge_log`
  (ridge fitted to log1p(y), for skewed non-negative targets; offered only when no target is
  negative), `huber_log` (Huber's loss on log1p(y), same condition), `hgb` (histogram gradient
  boosting on the engineered features, shallower and slower to learn on small windows). Blends
  (equal weights; their fold predictions are the average of their members', so they cost no extra
  fits): `blend` (ridge + hgb), `robust_blend` (huber + hgb), `robust_log_blend` (huber + hgb +
  ridge_log), `robust_huber_log_blend` (huber + hgb + huber_log);
* sub-window ensembling (`<candidate>+recent`, with a timestamp only): the winner's linear members
  fitted twice, on every training row and on the most recent half of the training span only,
  predictions averaged, its boosting member fitted once, on every row (recency without sample
  weights; see `SubWindowEnsemble`), kept only if it beats the plain winner on the same validation
  folds;
* day screening (`<candidate>+screened`, with a timestamp only): the winner (or its `+recent`
  twin) refit on the training rows left after dropping the days whose reference disagrees with the
  sensors as a whole (see `screen_days`), kept only if it beats it on the same validation folds;
* classifier: `logistic` (multinomial, balanced class weights), `hgb` (balanced class weights),
  `blend` (average probabilities); optionally each winner again with self-training over unlabelled
  rows (`self_training`).

The winner (lowest mean validation RMSE, or highest macro F1) is refit on all training rows (all the
unscreened ones); the full comparison goes into the artifact's metadata.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import HuberRegressor, LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from airlake.ml.data import MIN_TRAINING_ROWS, UsageError

N_SPLITS = 3
# Single models, then equal-weight blends of them (name -> members).
CALIBRATION_MEMBERS: tuple[str, ...] = ("ridge_raw", "ridge", "huber", "ridge_log", "huber_log", "hgb")
BLENDS: dict[str, tuple[str, ...]] = {
    "blend": ("ridge", "hgb"),
    "robust_blend": ("huber", "hgb"),
    "robust_log_blend": ("huber", "hgb", "ridge_log"),
    "robust_huber_log_blend": ("huber", "hgb", "huber_log"),
}
# Members fitted to log1p(y): offered only when no training target is negative.
LOG_TARGET_MEMBERS = frozenset({"ridge_log", "huber_log"})
# A candidate refit on the rows left by `screen_days` is named `<candidate>` + SCREENED; a candidate
# whose linear members are also fitted on the most recent part of the training span
# (`SubWindowEnsemble`) `<candidate>` + RECENT; both: `<candidate>+recent+screened`.
SCREENED = "+screened"
RECENT = "+recent"
CALIBRATION_CANDIDATES: tuple[str, ...] = (*CALIBRATION_MEMBERS, *BLENDS)
# One OpenMP thread: training shares small machines (CI, a laptop, 2 vCPUs with other jobs), where
# OpenMP's busy-waiting threads slow gradient boosting down by an order of magnitude; one thread is
# also bit-for-bit reproducible.
TRAINING_THREADS = 1
# Boosting rounds and histogram bins: 150 x 63 keeps a refit on a 4-week hourly window well under a
# second, which walk-forward recalibration needs, at no measurable cost in validation error.
HGB_ITERATIONS = 150
HGB_BINS = 63
# Ridge on the engineered features: dozens of correlated columns from a few weeks of data need more
# shrinkage than the raw baseline (alpha=1); 10 won on the UCI walk-forward for all three targets.
RIDGE_ALPHA = 10.0
# Huber's penalty, relative to the target's spread: alpha = HUBER_STRENGTH / std(y). HuberRegressor's
# loss is in the target's units and its penalty is not, so a fixed alpha would shrink a CO model
# (mg/m3, std ~1.4) a hundred times harder than a NOx one (ppb, std ~200); scaled, one setting fits
# every target (on UCI, 5-100 were within 0.01 R2 of each other for all three). Epsilon 1.35 is the
# usual 95 %-efficiency threshold; max_iter bounds L-BFGS on large inputs.
HUBER_STRENGTH = 20.0
HUBER_EPSILON = 1.35
HUBER_MAX_ITER = 1000
# Huber's L-BFGS needs ~500 iterations whatever the size, ~25 s on 100,000 rows x 45 features: above
# this many rows its coefficients are fitted on evenly spaced rows (every k-th, all devices and times
# kept; the imputer and scaler still see every row). A few dozen coefficients are settled long
# before; on the benchmark's data a full fit is 0.5 % better in held-out RMSE and 5x slower.
HUBER_MAX_ROWS = 20_000
# Boosting on small training sets (a 4-week hourly recalibration window has ~600 rows): fewer leaves,
# more rows per leaf and a smaller step (7 leaves, 10 rows, 0.06 vs 15, 20, 0.08), which on the UCI
# walk-forward added 0.002-0.004 R2 to the blends; from SMALL_TRAINING_ROWS rows on, the larger trees.
SMALL_TRAINING_ROWS = 5_000
# Log-target members: log-scale predictions are clipped to the training range +/- this many log
# units (a factor of e) before expm1, so an input far outside the training data cannot explode.
LOG_TARGET_HEADROOM = 1.0
# Model selection only needs to rank candidates: each fold trains on at most this many rows (the most
# recent ones: with forward chaining those sit right before the validation block). The winner is
# refit on every row. Keeps ~100k-row inputs under a minute on a shared 2-vCPU machine (10,000 since
# the Huber log-target member joined: each Huber fit is ~800 L-BFGS iterations whatever the size).
MAX_FOLD_TRAIN_ROWS = 10_000
SELF_TRAINING_CONFIDENCE = 0.9
# Day screening (`screen_days`): reference analysers fail for hours or days at a time (on UCI, CO
# read 0.5-1 mg/m3 for five days of January while every sensor and NOx read rush-hour levels), and a
# 4-week window cannot outvote a few such days even with Huber's loss: the model trained on them is
# biased for the following weeks. A day whose median residual (against a first Huber fit) sits more
# than SCREEN_MADS robust standard deviations (1.4826 x MAD of the days' medians) from the typical
# day's is left out of the refit; only with at least SCREEN_MIN_DAYS days to compare, and rows
# missing an input are always kept (their residuals say nothing about the reference).
SCREEN_MADS = 3.0
SCREEN_MIN_DAYS = 7
# The first fit only has to tell a failing day from a normal one: on large inputs it is fitted on at
# most this many evenly spaced rows (every day still gets its residuals from all of its rows).
SCREEN_MAX_FIT_ROWS = 5_000
# The screened twin is validated (and can win) only for training sets up to this many rows: it is
# meant for recalibration windows (weeks of one site, where a few failing days weigh), and it costs a
# second round of validation fits, which on ~100k rows would break the one-minute training budget.
SCREEN_MAX_ROWS = 20_000
# Sub-window ensembling (`<candidate>+recent`): the candidate's linear members fitted on all training
# rows and on the rows of the latest RECENT_FRACTION of the training span (by event time: 14 of 28
# days in a 4-week recalibration window), predictions averaged with equal weights. A sensor's
# response drifts within weeks, so the latest days say more about the next week; unlike decay
# weights this keeps every member's own loss and penalty as they are. Validated like the screened
# twin (same folds, same row limit), kept only if it lowers the RMSE.
RECENT_FRACTION = 0.5
# Only the linear members get a recent fit: a penalised linear model is still a stable fit on half
# a window (~300 hourly rows of 4 weeks); boosting already needs its small-window shape on the whole
# 4 weeks (SMALL_TRAINING_ROWS) and, halved, moves furthest from its full fit (UCI, 8 pre-start
# weeks: 20-30 % further than any linear member for NOx and NO2, as far as them for CO). A boosting
# member of a `+recent` candidate is fitted on every row only and keeps its blend weight (on UCI this
# form of the twin replays lower before the start than refitting every member, for every target and
# chosen family; see airlake/ml/README.md).
RECENT_REFIT_MEMBERS = frozenset({"ridge_raw", "ridge", "huber", "ridge_log", "huber_log"})
_DAY_MS = 86_400_000


def linear_pipeline(model: Ridge | LogisticRegression) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )


def hgb_regressor(seed: int, n_rows: int | None = None) -> HistGradientBoostingRegressor:
    small = n_rows is not None and n_rows < SMALL_TRAINING_ROWS
    return HistGradientBoostingRegressor(
        max_iter=HGB_ITERATIONS,
        max_bins=HGB_BINS,
        learning_rate=0.06 if small else 0.08,
        max_leaf_nodes=7 if small else 15,
        min_samples_leaf=10 if small else 20,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )


def huber_pipeline(y: np.ndarray) -> Pipeline:
    """Robust linear regression whose penalty is relative to the target's spread (see HUBER_STRENGTH)."""
    spread = float(np.std(y)) if len(y) else 0.0
    alpha = HUBER_STRENGTH / spread if spread > 0.0 and math.isfinite(spread) else HUBER_STRENGTH
    return linear_pipeline(EvenlySubsampledHuber(alpha=alpha, epsilon=HUBER_EPSILON, max_iter=HUBER_MAX_ITER))


class EvenlySubsampledHuber(HuberRegressor):  # type: ignore[misc]
    """HuberRegressor fitted on at most HUBER_MAX_ROWS evenly spaced rows (all of them below that)."""

    def fit(self, x: Any, y: Any, sample_weight: Any = None) -> EvenlySubsampledHuber:
        n = len(y)
        if n > HUBER_MAX_ROWS:
            rows = np.unique(np.linspace(0, n - 1, HUBER_MAX_ROWS).round().astype(np.int64))
            x, y = np.asarray(x)[rows], np.asarray(y)[rows]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[rows]
        super().fit(x, y, sample_weight)
        return self


class Log1pTarget(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A regressor fitted to log1p(y), predicting expm1 of its (clipped) output.

    Exported as a blend member with `target_transform` "log1p" and `clip`, which the runtime applies
    the same way. Needs y > -1 (offered only for non-negative targets).
    """

    def __init__(self, regressor: Any = None, headroom: float = LOG_TARGET_HEADROOM) -> None:
        self.regressor = regressor
        self.headroom = headroom

    def fit(self, x: np.ndarray, y: np.ndarray) -> Log1pTarget:
        y = np.asarray(y, dtype=np.float64)
        if len(y) == 0 or float(y.min()) <= -1.0:
            raise ValueError("log1p target needs every target value > -1")
        z = np.log1p(y)
        self.regressor_ = clone(self.regressor).fit(x, z)
        self.clip_ = (float(z.min()) - self.headroom, float(z.max()) + self.headroom)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(self.regressor_.predict(x), dtype=np.float64)
        return np.expm1(np.clip(z, self.clip_[0], self.clip_[1]))


def log_target_usable(y: np.ndarray) -> bool:
    """Log-target members only for targets with no negative value (concentrations, counts)."""
    return len(y) > 0 and float(np.nanmin(y)) >= 0.0


def split_screened(name: str) -> tuple[str, bool]:
    """(`candidate`, screened?) for `candidate` or `candidate+screened` (`candidate` may end in +recent)."""
    if name.endswith(SCREENED):
        return name[: -len(SCREENED)], True
    return name, False


def split_candidate(name: str) -> tuple[str, bool, bool]:
    """(base candidate, recent?, screened?) for `base[+recent][+screened]`."""
    rest, screened = split_screened(name)
    if rest.endswith(RECENT):
        return rest[: -len(RECENT)], True, screened
    return rest, False, screened


def candidate_members(name: str) -> tuple[str, ...]:
    """The single models a candidate (screened, recent or not) averages."""
    base = split_candidate(name)[0]
    return BLENDS.get(base, (base,))


def recent_rows(timestamp_ms: np.ndarray, fraction: float = RECENT_FRACTION) -> np.ndarray:
    """Which rows lie in the latest `fraction` of the span of `timestamp_ms` (a boolean mask); all
    rows when that part has fewer than MIN_TRAINING_ROWS rows."""
    ts = np.asarray(timestamp_ms, dtype=np.int64)
    if len(ts) == 0:
        return np.ones(0, dtype=bool)
    newest, oldest = int(ts.max()), int(ts.min())
    mask = ts >= newest - fraction * (newest - oldest)
    if int(mask.sum()) < MIN_TRAINING_ROWS:
        return np.ones(len(ts), dtype=bool)
    return np.asarray(mask, dtype=bool)


def refits_on_recent(estimator: Any) -> bool:
    """Whether a (blend member) estimator gets its own fit on the recent rows: linear models (and
    log-target ones) do, gradient boosting does not (see RECENT_REFIT_MEMBERS)."""
    return not isinstance(estimator, HistGradientBoostingRegressor)


class FittedBlend(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Already fitted regressors averaged with fixed weights (what VotingRegressor predicts, for
    members that were fitted elsewhere). Exported as a blend."""

    def __init__(self, members: Sequence[Any] = (), weights: Sequence[float] = ()) -> None:
        self.members = members
        self.weights = weights

    def predict(self, x: np.ndarray) -> np.ndarray:
        preds = np.column_stack([np.asarray(m.predict(x), dtype=np.float64) for m in self.members])
        return np.asarray(np.average(preds, axis=1, weights=np.asarray(self.weights, dtype=np.float64)))


class SubWindowEnsemble(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """The same (unfitted) candidate twice: `full` fitted on every row, `recent` on the rows `fit`
    is told are recent (`recent_rows`); predicts the average of the two.

    Each part is built for its own rows (a Huber penalty relative to their spread, boosting sized for
    their count). Only linear members are refit on the recent rows (`refits_on_recent`): in the
    recent part a boosting member is the full part's own fitted one, so it enters the average with
    its whole blend weight and a candidate with no linear member predicts as its full fit. Exported
    as a blend of the two with weight 1/2 each, which the runtime evaluates as any blend (no new
    estimator kind).
    """

    def __init__(self, full: Any = None, recent: Any = None) -> None:
        self.full = full
        self.recent = recent

    def fit(self, x: np.ndarray, y: np.ndarray, recent: np.ndarray | None = None) -> SubWindowEnsemble:
        if recent is None:
            raise ValueError("SubWindowEnsemble.fit needs the recent-row mask (train.recent_rows)")
        recent = np.asarray(recent, dtype=bool)
        x, y = np.asarray(x), np.asarray(y)
        self.full_ = clone(self.full).fit(x, y)
        if isinstance(self.full_, VotingRegressor):
            members = [
                clone(part).fit(x[recent], y[recent]) if refits_on_recent(fitted) else fitted
                for (_, part), fitted in zip(self.recent.estimators, self.full_.estimators_, strict=True)
            ]
            weights = self.full_.weights if self.full_.weights is not None else [1.0] * len(members)
            self.recent_: Any = FittedBlend(members, [float(w) for w in weights])
        elif refits_on_recent(self.full_):
            self.recent_ = clone(self.recent).fit(x[recent], y[recent])
        else:
            self.recent_ = self.full_
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        full = np.asarray(self.full_.predict(x), dtype=np.float64)
        return 0.5 * full + 0.5 * np.asarray(self.recent_.predict(x), dtype=np.float64)


def usable_candidates(candidates: Sequence[str], y: np.ndarray) -> list[str]:
    """The candidates that can be fitted to these targets (log-target ones need y >= 0)."""
    if log_target_usable(y):
        return list(candidates)
    return [name for name in candidates if not LOG_TARGET_MEMBERS & set(candidate_members(name))]


def fallback_candidate(name: str) -> str:
    """What to fit instead of a log-target candidate on a window with a negative target."""
    base, recent, screened = split_candidate(name)
    plain = {
        "ridge_log": "ridge",
        "huber_log": "huber",
        "robust_log_blend": "robust_blend",
        "robust_huber_log_blend": "robust_blend",
    }.get(base, base)
    return plain + (RECENT if recent else "") + (SCREENED if screened else "")


def screen_days(
    x: np.ndarray,
    y: np.ndarray,
    *,
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    raw_columns: Sequence[int],
) -> np.ndarray:
    """Which training rows to keep: all but the complete-input rows of days whose reference disagrees
    with the sensors as a whole (see SCREEN_MADS). A day is a UTC calendar day (of one group).

    Returns all-True when it does not apply: no timestamp, fewer than SCREEN_MIN_DAYS days, no
    spread between days, or too few rows left.
    """
    keep = np.ones(len(y), dtype=bool)
    if timestamp_ms is None or len(y) < MIN_TRAINING_ROWS:
        return keep
    days = np.asarray(timestamp_ms, dtype=np.int64) // _DAY_MS
    if groups is None:
        _, block = np.unique(days, return_inverse=True)
    else:
        keys = [f"{g}\x00{d}" for g, d in zip(groups.tolist(), days.tolist(), strict=True)]
        _, block = np.unique(np.asarray(keys), return_inverse=True)
    n_blocks = int(block.max()) + 1
    if n_blocks < SCREEN_MIN_DAYS:
        return keep
    fit_rows = np.unique(
        np.linspace(0, len(y) - 1, min(len(y), SCREEN_MAX_FIT_ROWS)).round().astype(np.int64)
    )
    residual = y - huber_pipeline(y[fit_rows]).fit(x[fit_rows], y[fit_rows]).predict(x)
    order = np.argsort(block, kind="stable")
    bounds = np.flatnonzero(np.diff(block[order])) + 1
    medians = np.array([np.median(part) for part in np.split(residual[order], bounds)])
    centre = float(np.median(medians))
    spread = 1.4826 * float(np.median(np.abs(medians - centre)))
    if not spread > 0.0:
        return keep
    bad_day = np.abs(medians - centre) > SCREEN_MADS * spread
    complete = np.isfinite(x[:, list(raw_columns)]).all(axis=1)
    keep = np.asarray(~bad_day[block] | ~complete, dtype=bool)
    if int(keep.sum()) < MIN_TRAINING_ROWS:
        return np.ones(len(y), dtype=bool)
    return keep


def hgb_classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=HGB_ITERATIONS,
        max_bins=HGB_BINS,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        class_weight="balanced",
        early_stopping=False,
        random_state=seed,
    )


# --------------------------------------------------------------------------------------------
# Folds and metrics
# --------------------------------------------------------------------------------------------


def make_folds(
    n_rows: int, *, timestamp_ms: np.ndarray | None, groups: np.ndarray | None, n_splits: int = N_SPLITS
) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(strategy name, [(train positions, validation positions)]) with no random split anywhere."""
    strategy, folds = _folds(n_rows, timestamp_ms=timestamp_ms, groups=groups, n_splits=n_splits)
    return strategy, [(_cap(train, timestamp_ms), valid) for train, valid in folds]


def _cap(train: np.ndarray, timestamp_ms: np.ndarray | None) -> np.ndarray:
    """At most MAX_FOLD_TRAIN_ROWS training rows: the latest in event time, else the last in file order."""
    if len(train) <= MAX_FOLD_TRAIN_ROWS:
        return train
    if timestamp_ms is None:
        return train[-MAX_FOLD_TRAIN_ROWS:]
    latest = np.argsort(timestamp_ms[train], kind="stable")[-MAX_FOLD_TRAIN_ROWS:]
    return np.sort(train[latest])


def _folds(
    n_rows: int, *, timestamp_ms: np.ndarray | None, groups: np.ndarray | None, n_splits: int
) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    positions = np.arange(n_rows)
    if timestamp_ms is not None:
        order = np.argsort(timestamp_ms, kind="stable")
        blocks = np.array_split(order, n_splits + 1)
        folds = [(np.sort(np.concatenate(blocks[: k + 1])), np.sort(blocks[k + 1])) for k in range(n_splits)]
        return "forward-chaining in event time", folds
    if groups is not None:
        n_groups = len(set(groups.tolist()))
        if n_groups >= 2:
            splitter = GroupKFold(n_splits=min(n_splits, n_groups))
            return "grouped k-fold", [(tr, va) for tr, va in splitter.split(positions, groups=groups)]
    blocks = np.array_split(positions, n_splits)
    folds = [
        (np.concatenate([b for j, b in enumerate(blocks) if j != k]), blocks[k]) for k in range(n_splits)
    ]
    return "contiguous blocks in file order", folds


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(math.sqrt(mean_squared_error(y, pred))),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
        "n": len(y),
    }


def classification_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        # A validation block may lack a rare class that the model still predicts: expected, scored as is.
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y, pred))
    return {
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "balanced_accuracy": balanced,
        "accuracy": float(accuracy_score(y, pred)),
        "n": len(y),
    }


def _mean(metrics: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = metrics[0].keys()
    return {k: round(float(np.mean([m[k] for m in metrics])), 6) for k in keys if k != "n"} | {
        "n": int(sum(m["n"] for m in metrics))
    }


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


@dataclass
class Fitted:
    """The refit winner: estimator, which feature columns (positions in the full matrix) it uses."""

    name: str
    estimator: Any
    columns: list[int]
    comparison: dict[str, dict[str, float]]
    validation: str
    # Training rows left out by day screening (`<name>+screened` winners only).
    screened_out: int = 0


def fit_calibration(
    x: np.ndarray,
    y: np.ndarray,
    *,
    raw_columns: Sequence[int],
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    candidates: Sequence[str] = CALIBRATION_CANDIDATES,
) -> Fitted:
    """Select among the calibration candidates by validation RMSE and refit the winner on all rows."""
    with threadpool_limits(limits=TRAINING_THREADS), warnings.catch_warnings():
        # Huber's L-BFGS may stop at HUBER_MAX_ITER on large inputs: deliberate, not worth a warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _fit_calibration(
            x,
            y,
            raw_columns=raw_columns,
            timestamp_ms=timestamp_ms,
            groups=groups,
            seed=seed,
            candidates=candidates,
        )


def _fit_calibration(
    x: np.ndarray,
    y: np.ndarray,
    *,
    raw_columns: Sequence[int],
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    candidates: Sequence[str],
) -> Fitted:
    if len(y) < MIN_TRAINING_ROWS:
        raise UsageError(f"too few training rows with a target: {len(y)} (need {MIN_TRAINING_ROWS})")
    usable = usable_candidates(candidates, y)
    if not usable:  # a single log-target candidate and a negative target: its fallback
        usable = [fallback_candidate(name) for name in candidates]
    candidates = list(dict.fromkeys(usable))
    all_columns = list(range(x.shape[1]))
    member_columns = {
        name: list(raw_columns) if name == "ridge_raw" else all_columns for name in CALIBRATION_MEMBERS
    }

    def screen(rows: np.ndarray) -> np.ndarray:
        """The rows (positions) `screen_days` keeps among `rows`."""
        keep = screen_days(
            x[rows],
            y[rows],
            timestamp_ms=timestamp_ms[rows] if timestamp_ms is not None else None,
            groups=groups[rows] if groups is not None else None,
            raw_columns=raw_columns,
        )
        kept: np.ndarray = rows[keep]
        return kept

    def recent_part(rows: np.ndarray) -> np.ndarray:
        """The rows (positions) among `rows` in the latest part of their span (see `recent_rows`)."""
        if timestamp_ms is None:
            raise ValueError("a +recent candidate needs a timestamp")
        part: np.ndarray = rows[recent_rows(timestamp_ms[rows])]
        return part

    def compare(names: Sequence[str]) -> dict[str, dict[str, float]]:
        """Mean validation metrics of each candidate over `folds` (blends average their members;
        in a `+recent` candidate each linear member is the average of its fits on all rows and on
        the recent ones, as `SubWindowEnsemble` predicts)."""
        fold_metrics: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for train, valid in folds:
            rows = {False: train}
            if any(split_candidate(name)[2] for name in names):
                rows[True] = screen(train)
            preds: dict[tuple[str, bool, bool], np.ndarray] = {}
            for name in names:
                _, recent, screened = split_candidate(name)
                parts = []
                for member in candidate_members(name):
                    member_parts = []
                    for part in (False, True) if recent and member in RECENT_REFIT_MEMBERS else (False,):
                        if (member, screened, part) not in preds:
                            fit_rows = recent_part(rows[screened]) if part else rows[screened]
                            cols = np.asarray(member_columns[member])
                            model = calibration_member(member, y[fit_rows], seed)
                            model.fit(x[np.ix_(fit_rows, cols)], y[fit_rows])
                            preds[(member, screened, part)] = model.predict(x[np.ix_(valid, cols)])
                        member_parts.append(preds[(member, screened, part)])
                    parts.append(np.mean(member_parts, axis=0))
                pred = np.mean(parts, axis=0)
                fold_metrics[name].append(regression_metrics(y[valid], pred))
        return {name: _mean(metrics) for name, metrics in fold_metrics.items() if metrics}

    strategy, folds = make_folds(len(y), timestamp_ms=timestamp_ms, groups=groups)
    if len(candidates) == 1:  # nothing to choose: no validation fits (walk-forward refits use this)
        folds, strategy = [], "none (single candidate)"
    comparison = compare(candidates)
    winner = min(candidates, key=lambda name: (comparison[name]["rmse"], name) if comparison else (0.0, name))
    if folds and timestamp_ms is not None and len(y) <= SCREEN_MAX_ROWS:
        # The winner's twins, each kept only if it lowers the validation RMSE: first fitted on the
        # recent part of the span too (sub-window ensembling), then refit without the days whose
        # reference disagrees with the sensors.
        for suffix in (RECENT, SCREENED):
            if not split_candidate(winner)[2] and not (suffix == RECENT and split_candidate(winner)[1]):
                twin = winner + suffix
                comparison |= compare([twin])
                if comparison[twin]["rmse"] < comparison[winner]["rmse"]:
                    winner = twin
    base, recent, screened = split_candidate(winner)
    rows = screen(np.arange(len(y))) if screened else np.arange(len(y))
    columns = member_columns.get(base, all_columns)
    cols = np.asarray(columns)
    estimator = calibration_estimator(base, y[rows], seed)
    if recent:
        latest = recent_part(rows)
        estimator = SubWindowEnsemble(estimator, calibration_estimator(base, y[latest], seed))
        estimator.fit(x[np.ix_(rows, cols)], y[rows], recent=np.isin(rows, latest))
    else:
        estimator.fit(x[np.ix_(rows, cols)], y[rows])
    return Fitted(winner, estimator, columns, comparison, strategy, screened_out=len(y) - len(rows))


def calibration_member(name: str, y: np.ndarray, seed: int) -> Any:
    """An unfitted single model (`CALIBRATION_MEMBERS`) for training targets `y`."""
    if name == "ridge_raw":
        return linear_pipeline(Ridge(alpha=1.0))
    if name == "ridge":
        return linear_pipeline(Ridge(alpha=RIDGE_ALPHA))
    if name == "huber":
        return huber_pipeline(y)
    if name == "ridge_log":
        return Log1pTarget(linear_pipeline(Ridge(alpha=RIDGE_ALPHA)))
    if name == "huber_log":  # penalty relative to the spread of log1p(y), which it is fitted to
        return Log1pTarget(huber_pipeline(np.log1p(np.asarray(y, dtype=np.float64))))
    if name == "hgb":
        return hgb_regressor(seed, len(y))
    raise ValueError(f"unknown calibration candidate {name!r}")


def calibration_estimator(name: str, y: np.ndarray, seed: int) -> Any:
    """An unfitted candidate: a single model, or an equal-weight VotingRegressor of a blend's members.

    (Screening is not part of the estimator: a `+screened` candidate is this, fitted on fewer rows;
    a `+recent` candidate is a `SubWindowEnsemble` of two of these, built in `fit_calibration`.)
    """
    name = split_candidate(name)[0]
    if name not in BLENDS:
        return calibration_member(name, y, seed)
    members = BLENDS[name]
    return VotingRegressor(
        [(member, calibration_member(member, y, seed)) for member in members],
        weights=[1.0 / len(members)] * len(members),
    )


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _classifier(name: str, seed: int) -> Any:
    if name == "logistic":
        return linear_pipeline(LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    if name == "hgb":
        return hgb_classifier(seed)
    return VotingClassifier(
        [("logistic", _classifier("logistic", seed)), ("hgb", hgb_classifier(seed))], voting="soft"
    )


def _self_train(estimator: Any, x: np.ndarray, y: np.ndarray, unlabelled: np.ndarray) -> Any:
    """Self-training: add confident pseudo-labels from the unlabelled rows, refit once.

    One round, confidence >= `SELF_TRAINING_CONFIDENCE`. The labelled rows are counted twice so the
    real labels keep the upper hand over pseudo-labels (same effect as half weight for the pseudo
    rows, and it works for every estimator family). Whether it helps at all is decided by
    validation, not assumed.
    """
    first = clone(estimator).fit(x, y)
    if len(unlabelled) == 0:
        return first
    proba = first.predict_proba(unlabelled)
    confident = proba.max(axis=1) >= SELF_TRAINING_CONFIDENCE
    if not confident.any():
        return first
    pseudo = first.classes_[proba[confident].argmax(axis=1)]
    x_all = np.vstack([x, x, unlabelled[confident]])
    y_all = np.concatenate([y, y, pseudo])
    return clone(estimator).fit(x_all, y_all)


def fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    unlabelled: np.ndarray | None = None,
    candidates: Sequence[str] = ("logistic", "hgb", "blend"),
) -> Fitted:
    """Select by mean validation macro F1 (classes are imbalanced) and refit the winner."""
    with threadpool_limits(limits=TRAINING_THREADS):
        return _fit_classifier(
            x,
            y,
            timestamp_ms=timestamp_ms,
            groups=groups,
            seed=seed,
            unlabelled=unlabelled,
            candidates=candidates,
        )


def _fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    unlabelled: np.ndarray | None,
    candidates: Sequence[str],
) -> Fitted:
    if len(y) < MIN_TRAINING_ROWS:
        raise UsageError(f"too few labelled rows: {len(y)} (need {MIN_TRAINING_ROWS})")
    if len(set(y.tolist())) < 2:
        raise UsageError("the label has a single class; a classifier needs at least two")
    strategy, folds = make_folds(len(y), timestamp_ms=timestamp_ms, groups=groups)
    usable = [(tr, va) for tr, va in folds if len(set(y[tr].tolist())) >= 2]
    fold_metrics: dict[str, list[dict[str, float]]] = {name: [] for name in candidates}
    for train, valid in usable:
        proba: dict[str, np.ndarray] = {}
        classes: dict[str, np.ndarray] = {}
        for name in ("logistic", "hgb"):
            model = _classifier(name, seed).fit(x[train], y[train])
            proba[name], classes[name] = model.predict_proba(x[valid]), model.classes_
        proba["blend"] = 0.5 * (proba["logistic"] + proba["hgb"])
        classes["blend"] = classes["hgb"]
        for name in candidates:
            pred = classes[name][proba[name].argmax(axis=1)]
            fold_metrics[name].append(classification_metrics(y[valid], pred))
    comparison = {name: _mean(m) for name, m in fold_metrics.items() if m}
    if not comparison:
        raise UsageError("every validation fold has a single class in its training part; add labelled rows")
    winner = max(comparison, key=lambda name: (comparison[name]["macro_f1"], name))
    estimator = _classifier(winner, seed)
    if unlabelled is not None and len(unlabelled):
        self_metrics = [
            classification_metrics(y[va], _self_train(estimator, x[tr], y[tr], unlabelled).predict(x[va]))
            for tr, va in usable
        ]
        comparison[f"{winner}+self_training"] = _mean(self_metrics)
        if comparison[f"{winner}+self_training"]["macro_f1"] > comparison[winner]["macro_f1"]:
            return Fitted(
                f"{winner}+self_training",
                _self_train(estimator, x, y, unlabelled),
                list(range(x.shape[1])),
                comparison,
                strategy,
            )
    return Fitted(winner, estimator.fit(x, y), list(range(x.shape[1])), comparison, strategy)
