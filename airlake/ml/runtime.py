"""Hot-path evaluator for Airlake model artifacts (`airlake.model/v1`), standard library only.

The calibration and classification Lambdas load a model on every cold start, so this module imports
nothing but the standard library: no numpy, pandas or scikit-learn (see DESIGN.md: sklearn alone
costs about 1.5 s of cold start). The training side (`airlake.ml.train`) exports every fitted
scikit-learn estimator into `model.json` as plain numbers (linear coefficients, scaler and imputer
parameters, gradient-boosted trees as arrays of nodes) and this module evaluates them exactly; the
tests check that both agree to 1e-6 for every model family we ship.

An artifact is a directory (or, from S3, a mapping of file name to bytes) holding:

* `metadata.json`: format id, kind, version id, target or label, features, classes, training
  window, validation metrics, model comparison, library versions, created_at. For humans and tools.
* `model.json`: what this module evaluates: the raw `inputs`, the feature pipeline (`features`),
  and the `estimator`.

Feature pipeline. Each feature is a small spec evaluated per row. Row-only ops (`raw`, `log`,
`ratio`, `logmul`) read the current row only. Temporal ops (`hour_sin`, `hour_cos`, `weekend`,
`rate`, `ewm`, `ewm_dev`, `ewm_std`, `lag`, `roll_mean`, `min_dev`, `min_logratio`) also read the
event time and a per-group `FeatureState` built from the rows seen *before and including* the
current one, so they are causal by construction: the state has no way to hold a later row (and a
`lag`, `roll_mean`, `min_dev` or `min_logratio` whose duration is not positive is refused when the
artifact loads). Training computes its feature matrix with
this very code, walking each group in event-time order, which is why the hot path and training
cannot disagree and why a feature that peeks at the future cannot be expressed.

How the hot path feeds a temporal model: keep one `model.new_state()` per group (e.g. per device,
in DynamoDB or memory) and call `predict_one(row, ts_ms=..., state=state)` for that group's rows in
event-time order. A row older than the newest one the state has seen is still scored, from the
current state, but does not update it (late data never rewinds a baseline). Row-only models need
neither `ts_ms` nor a state.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

FORMAT_ID = "airlake.model/v1"
METADATA_FILE = "metadata.json"
MODEL_FILE = "model.json"

Kind = Literal["calibration", "classifier"]
Row = Mapping[str, float | int | str | None]

_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 86_400_000
# 1970-01-01 was a Thursday: day index 0 -> weekday 3 (Monday = 0).
_EPOCH_WEEKDAY = 3
TEMPORAL_OPS = frozenset(
    {
        "hour_sin",
        "hour_cos",
        "weekend",
        "rate",
        "ewm",
        "ewm_dev",
        "ewm_std",
        "lag",
        "roll_mean",
        "min_dev",
        "min_logratio",
    }
)
# Baseline removal: the reading minus (`min_dev`) or the log of the reading over (`min_logratio`)
# the lowest reading of the same column in (t - window_s, t], the current reading included.
_MIN_OPS = frozenset({"min_dev", "min_logratio"})
# A lag of L seconds reads the latest reading in (t - L - L * _LAG_TOLERANCE, t - L]; older is missing.
_LAG_TOLERANCE = 0.5
ROW_OPS = frozenset({"raw", "log", "ratio", "logmul"})


class ArtifactError(ValueError):
    """The artifact is missing a file, has an unknown format, or a spec this runtime cannot run."""


def _number(value: object) -> float | None:
    """A finite float, or None for anything missing (None, NaN, inf, empty string, non-numeric)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Feature pipeline
# --------------------------------------------------------------------------------------------


@dataclass
class _Ewm:
    """Event-time exponentially weighted mean and variance of one column.

    The decay depends on the elapsed event time (`alpha = 1 - 2**(-dt/halflife)`), not on the
    number of rows, so irregular sampling and gaps are handled: after a long gap the old
    baseline is mostly forgotten.
    """

    mean: float | None = None
    var: float = 0.0
    last_ms: int | None = None

    def update(self, value: float, ts_ms: int, halflife_ms: float) -> None:
        if self.mean is None or self.last_ms is None:
            self.mean, self.var, self.last_ms = value, 0.0, ts_ms
            return
        dt = ts_ms - self.last_ms
        alpha = 1.0 - math.pow(2.0, -dt / halflife_ms)
        delta = value - self.mean
        self.mean += alpha * delta
        self.var = (1.0 - alpha) * (self.var + alpha * delta * delta)
        self.last_ms = ts_ms


@dataclass
class FeatureState:
    """Causal per-group memory of the temporal features: the only place history lives."""

    last_ms: int | None = None
    previous: dict[str, tuple[int, float]] = field(default_factory=dict)
    ewms: dict[tuple[str, float], _Ewm] = field(default_factory=dict)
    # Recent (event time ms, value) readings per column, oldest first, for `lag` and `roll_mean`.
    history: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)
    # Per (column, window ms): the readings that can still be the window's minimum, oldest first
    # with rising values (a monotonic queue: the front is the minimum), for `min_dev`/`min_logratio`.
    minima: dict[tuple[str, float], deque[tuple[int, float]]] = field(default_factory=dict)


def _numbers(row: Row, names: Sequence[str]) -> dict[str, float | None]:
    """{name: _number(row.get(name))}, with a shortcut for a finite float (x - x is 0.0 for exactly
    those), which `_number` returns as it is."""
    out: dict[str, float | None] = {}
    for name in names:
        value = row.get(name)
        out[name] = value if type(value) is float and value - value == 0.0 else _number(value)
    return out


def _history_spans(specs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """How long (ms) each column's readings must be kept for its `lag` and `roll_mean` features.

    A lag or a window that is not a positive duration would read the current row or a later one, so
    it is refused: no artifact can make a feature that peeks at the future.
    """
    spans: dict[str, float] = {}
    for spec in specs:
        op = spec["op"]
        if op not in {"lag", "roll_mean"}:
            continue
        key = "lag_s" if op == "lag" else "window_s"
        seconds = spec.get(key)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0.0:
            raise ArtifactError(f"{op} needs a positive {key} (seconds), got {seconds!r}")
        if not math.isfinite(seconds):
            raise ArtifactError(f"{op} needs a finite {key}, got {seconds!r}")
        span = seconds * 1000.0 * (1.0 + _LAG_TOLERANCE if op == "lag" else 1.0)
        spans[spec["col"]] = max(spans.get(spec["col"], 0.0), span)
    return spans


def _min_windows(specs: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, float], ...]:
    """The (column, window ms) minima that `min_dev` and `min_logratio` read; a window that is not a
    positive finite duration is refused (it would read nothing, or the future)."""
    keys: list[tuple[str, float]] = []
    for spec in specs:
        if spec["op"] not in _MIN_OPS:
            continue
        seconds = spec.get("window_s")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0.0:
            raise ArtifactError(f"{spec['op']} needs a positive window_s (seconds), got {seconds!r}")
        if not math.isfinite(seconds):
            raise ArtifactError(f"{spec['op']} needs a finite window_s, got {seconds!r}")
        keys.append((spec["col"], float(seconds) * 1000.0))
    return tuple(dict.fromkeys(keys))


def _window_min(
    readings: deque[tuple[int, float]] | None, ts_ms: int, window_ms: float, current: float
) -> float:
    """The lowest reading in (t - window, t], the current one included. In event-time order the queue
    already holds exactly that window (its front); a late row (older than the newest seen) takes the
    lowest queued reading inside its own window, or its own value if lower."""
    lowest = current
    if readings:
        start = ts_ms - window_ms
        for t, value in readings:  # values rise from the front: the first one in the window is the lowest
            if start < t <= ts_ms:
                lowest = min(lowest, value)
                break
    return lowest


def _lagged(readings: deque[tuple[int, float]] | None, ts_ms: int, lag_ms: float) -> float | None:
    """The latest reading in (t - lag - lag * tolerance, t - lag]: the value `lag` ago, or missing."""
    if readings:
        newest, oldest = ts_ms - lag_ms, ts_ms - lag_ms * (1.0 + _LAG_TOLERANCE)
        for t, value in reversed(readings):
            if t <= newest:
                return value if t > oldest else None
    return None


def _window_mean(readings: deque[tuple[int, float]] | None, ts_ms: int, window_ms: float) -> float | None:
    """The mean of the readings in (t - window, t] (exactly rounded sum: order cannot matter)."""
    if not readings:
        return None
    start = ts_ms - window_ms
    picked = [value for t, value in readings if start < t <= ts_ms]
    return math.fsum(picked) / len(picked) if picked else None


def _log(value: float | None) -> float | None:
    return math.log(value) if value is not None and value > 0.0 else None


_ROW_OP_COLUMNS = {"raw": ("col",), "log": ("col",), "ratio": ("a", "b"), "logmul": ("a", "b")}


class FeaturePipeline:
    """Turns one raw row (+ event time + per-group state) into the model's feature vector."""

    def __init__(self, specs: Sequence[Mapping[str, Any]]) -> None:
        self.specs: tuple[dict[str, Any], ...] = tuple(dict(spec) for spec in specs)
        for spec in self.specs:
            op = spec.get("op")
            if op not in ROW_OPS and op not in TEMPORAL_OPS:
                raise ArtifactError(f"unknown feature op {op!r}")
        self.temporal = any(spec["op"] in TEMPORAL_OPS for spec in self.specs)
        columns: list[str] = []
        for spec in self.specs:
            for key in ("col", "a", "b"):
                name = spec.get(key)
                if isinstance(name, str) and name not in columns:
                    columns.append(name)
        self.inputs: tuple[str, ...] = tuple(columns)
        # Equal keys, equal features: row-only pipelines with the same key give the same vector.
        self.key: str = json.dumps(self.specs, sort_keys=True, default=repr)
        # EWM trackers that must be updated once per row, whatever features read them.
        self._ewm_keys: tuple[tuple[str, float], ...] = tuple(
            dict.fromkeys(
                (spec["col"], float(spec["halflife_s"]) * 1000.0)
                for spec in self.specs
                if spec["op"] in {"ewm", "ewm_dev", "ewm_std"}
            )
        )
        self._rate_cols: tuple[str, ...] = tuple(
            dict.fromkeys(spec["col"] for spec in self.specs if spec["op"] == "rate")
        )
        self._history: dict[str, float] = _history_spans(self.specs)
        self._min_keys: tuple[tuple[str, float], ...] = _min_windows(self.specs)
        self._vector = self._compile()
        # The columns the temporal state follows (what `observe` reads).
        followed = [
            *self._rate_cols,
            *(key[0] for key in self._ewm_keys),
            *self._history,
            *(key[0] for key in self._min_keys),
        ]
        self._state_inputs: tuple[str, ...] = tuple(dict.fromkeys(followed))

    def _compile(self) -> Callable[..., list[float | None]] | None:
        """The row-only features as one generated Python function (speed only).

        `vector(row)` (row-only pipelines) reads the inputs from the row itself; `vector(values,
        rates, ts_ms, state)` (temporal ones) from `transform`'s values, and leaves the temporal
        features to `_one`. Either way the arithmetic is `_one`'s, operation for operation: one
        function call per row instead of a call, a dict lookup and an op dispatch per feature.
        """
        temporal = self.temporal
        index = {name: i for i, name in enumerate(self.inputs)}
        for spec in self.specs:
            keys = _ROW_OP_COLUMNS.get(spec["op"], ())
            if not all(isinstance(name := spec.get(key), str) and name in index for key in keys):
                return None  # a malformed spec: left to `_one`, which fails on it as before
        lines = []
        for name, i in index.items():
            if temporal:
                lines.append(f"v{i} = values[{name!r}]")
            else:  # _number(), with a shortcut for a finite float (x - x is 0.0 for exactly those)
                lines.append(f"v{i} = row.get({name!r})")
                lines.append(f"if type(v{i}) is not float or v{i} - v{i} != 0.0: v{i} = _number(v{i})")
        logs = {index[s["col"]] for s in self.specs if s["op"] == "log"}
        logs |= {index[s["a"]] for s in self.specs if s["op"] == "logmul"}
        lines += [f"l{i} = _ln(v{i}) if v{i} is not None and v{i} > 0.0 else None" for i in sorted(logs)]
        items = []
        for k, spec in enumerate(self.specs):
            op = spec["op"]
            if op == "raw":
                items.append(f"v{index[spec['col']]}")
            elif op == "log":
                items.append(f"l{index[spec['col']]}")
            elif op == "ratio":
                a, b = index[spec["a"]], index[spec["b"]]
                ratio = f"v{a} / v{b} if v{a} is not None and v{b} is not None and v{b} != 0.0 else None"
                items.append(f"({ratio})")
            elif op == "logmul":
                a, b = index[spec["a"]], index[spec["b"]]
                items.append(f"(l{a} * v{b} if l{a} is not None and v{b} is not None else None)")
            else:
                items.append(f"_one(_specs[{k}], values, rates, ts_ms, state)")
        signature = "values, rates, ts_ms, state" if temporal else "row"
        body = "".join(f"    {line}\n" for line in lines)
        source = f"def vector({signature}):\n{body}    return [{', '.join(items)}]\n"
        namespace: dict[str, Any] = {"_number": _number, "_ln": math.log, "_one": self._one}
        namespace["_specs"] = self.specs
        exec(compile(source, "<airlake-features>", "exec"), namespace)
        function: Callable[..., list[float | None]] = namespace["vector"]
        return function

    def new_state(self) -> FeatureState | None:
        return FeatureState() if self.temporal else None

    def transform(
        self, row: Row, *, ts_ms: int | None = None, state: FeatureState | None = None
    ) -> list[float | None]:
        vector = self._vector
        if vector is not None and not self.temporal:
            return vector(row)
        values = _numbers(row, self.inputs)
        rates: dict[str, float | None] = {}
        if self.temporal:
            rates = self._advance(values, ts_ms, state)
        if vector is not None:
            return vector(values, rates, ts_ms, state)
        return [self._one(spec, values, rates, ts_ms, state) for spec in self.specs]

    def observe(self, row: Row, *, ts_ms: int | None = None, state: FeatureState | None = None) -> None:
        """What `transform` does to `state`, without building the feature vector (for rows whose
        features are not needed but whose history is: the state ends up exactly the same)."""
        if self.temporal:
            self._advance(_numbers(row, self._state_inputs), ts_ms, state)

    def _advance(
        self, values: Mapping[str, float | None], ts_ms: int | None, state: FeatureState | None
    ) -> dict[str, float | None]:
        """Feed one row's values to the temporal state; returns the rates at this row."""
        if ts_ms is None:
            raise ValueError("this model uses temporal features: pass ts_ms (event time, epoch ms)")
        if state is None:
            raise ValueError("this model uses temporal features: pass state=model.new_state() per group")
        rates: dict[str, float | None] = {}
        in_order = state.last_ms is None or ts_ms >= state.last_ms
        for col in self._rate_cols:
            current = values[col]
            prev = state.previous.get(col)
            rate: float | None = None
            if current is not None and prev is not None and ts_ms > prev[0]:
                rate = (current - prev[1]) / ((ts_ms - prev[0]) / _MS_PER_HOUR)
            rates[col] = rate
            if in_order and current is not None:
                state.previous[col] = (ts_ms, current)
        if in_order:
            ewms = state.ewms
            for key in self._ewm_keys:
                current = values[key[0]]
                if current is not None:
                    ewm = ewms.get(key)
                    if ewm is None:  # (not setdefault: that would build a tracker per call)
                        ewm = ewms[key] = _Ewm()
                    ewm.update(current, ts_ms, key[1])
            history = state.history
            for col, span_ms in self._history.items():
                current = values[col]
                if current is not None:
                    readings = history.get(col)
                    if readings is None:
                        readings = history[col] = deque()
                    readings.append((ts_ms, current))
                    while readings[0][0] <= ts_ms - span_ms:  # no later row can read these
                        readings.popleft()
            minima = state.minima
            for key in self._min_keys:
                current = values[key[0]]
                if current is not None:
                    queue = minima.get(key)
                    if queue is None:
                        queue = minima[key] = deque()
                    while queue and queue[-1][1] >= current:  # never the minimum again
                        queue.pop()
                    queue.append((ts_ms, current))
                    while queue[0][0] <= ts_ms - key[1]:  # out of the window for this and later rows
                        queue.popleft()
            state.last_ms = ts_ms
        return rates

    @staticmethod
    def _one(
        spec: Mapping[str, Any],
        values: Mapping[str, float | None],
        rates: Mapping[str, float | None],
        ts_ms: int | None,
        state: FeatureState | None,
    ) -> float | None:
        op = spec["op"]
        if op == "raw":
            return values[spec["col"]]
        if op == "log":
            return _log(values[spec["col"]])
        if op == "ratio":
            a, b = values[spec["a"]], values[spec["b"]]
            return a / b if a is not None and b is not None and b != 0.0 else None
        if op == "logmul":
            la, b = _log(values[spec["a"]]), values[spec["b"]]
            return la * b if la is not None and b is not None else None
        assert ts_ms is not None  # guaranteed by transform()
        assert state is not None
        if op in {"hour_sin", "hour_cos"}:
            angle = 2.0 * math.pi * (ts_ms % _MS_PER_DAY) / _MS_PER_DAY
            return math.sin(angle) if op == "hour_sin" else math.cos(angle)
        if op == "weekend":
            weekday = (ts_ms // _MS_PER_DAY + _EPOCH_WEEKDAY) % 7
            return 1.0 if weekday >= 5 else 0.0
        if op == "rate":
            return rates[spec["col"]]
        if op == "lag":
            return _lagged(state.history.get(spec["col"]), ts_ms, float(spec["lag_s"]) * 1000.0)
        if op == "roll_mean":
            return _window_mean(state.history.get(spec["col"]), ts_ms, float(spec["window_s"]) * 1000.0)
        if op in _MIN_OPS:
            current = values[spec["col"]]
            if current is None:
                return None
            window_ms = float(spec["window_s"]) * 1000.0
            lowest = _window_min(state.minima.get((spec["col"], window_ms)), ts_ms, window_ms, current)
            if op == "min_dev":
                return current - lowest
            return math.log(current / lowest) if current > 0.0 and lowest > 0.0 else None
        ewm = state.ewms.get((spec["col"], float(spec["halflife_s"]) * 1000.0))
        if ewm is None or ewm.mean is None:
            return None
        if op == "ewm":
            return ewm.mean
        if op == "ewm_std":
            return math.sqrt(ewm.var)
        current = values[spec["col"]]  # ewm_dev: how far the reading sits from its own baseline
        return current - ewm.mean if current is not None else None


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------

Vector = list[float | None]


def _as_float32(values: Sequence[float]) -> list[float]:
    return list(array("f", values))


class _Linear:
    """Imputer (fill values) -> standard scaler -> one linear function per output."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.fill: list[float] = [float(v) for v in spec["fill"]]
        self.mean: list[float] = [float(v) for v in spec["mean"]]
        self.scale: list[float] = [float(v) for v in spec["scale"]]
        coef = spec["coef"]
        self.coef: list[list[float]] = [[float(c) for c in row] for row in coef]
        self.intercept: list[float] = [float(v) for v in spec["intercept"]]
        self.raw: Callable[[Vector], list[float]] = self._compile()

    def _compile(self) -> Callable[[Vector], list[float]]:
        """`_generic` as straight-line generated code (speed only): the same imputation, the same
        `(v - mean) / scale` and `coef * z` per input, and `math.fsum` (exactly rounded, so the order
        of its terms cannot matter). A vector of another length takes `_generic`, which rejects it."""
        n = len(self.fill)
        numbers = [*self.fill, *self.mean, *self.scale, *self.intercept]
        numbers += [c for row in self.coef for c in row]
        if (
            len(self.mean) != n
            or len(self.scale) != n
            or len(self.intercept) != len(self.coef)
            or any(len(row) != n for row in self.coef)
            or not all(math.isfinite(v) for v in numbers)  # repr(inf) is no literal
        ):
            return self._generic
        lines = [f"if len(x) != {n}: return _generic(x)"]
        lines += [f"v = x[{i}]; z{i} = ((v if v is not None else {f!r}) - {m!r}) / {s!r}"
                  for i, (f, m, s) in enumerate(zip(self.fill, self.mean, self.scale, strict=True))]  # fmt: skip
        outputs = [
            "_fsum((" + "".join(f"{c!r} * z{i}, " for i, c in enumerate(row)) + f"{b!r}))"
            for row, b in zip(self.coef, self.intercept, strict=True)
        ]
        source = "def raw(x):\n" + "".join(f"    {line}\n" for line in lines)
        source += f"    return [{', '.join(outputs)}]\n"
        namespace: dict[str, Any] = {"_fsum": math.fsum, "_generic": self._generic}
        exec(compile(source, "<airlake-linear>", "exec"), namespace)
        function: Callable[[Vector], list[float]] = namespace["raw"]
        return function

    def _generic(self, x: Vector) -> list[float]:
        z = [
            ((v if v is not None else f) - m) / s
            for v, f, m, s in zip(x, self.fill, self.mean, self.scale, strict=True)
        ]
        return [
            math.fsum([b, *(c * zi for c, zi in zip(row, z, strict=True))])
            for row, b in zip(self.coef, self.intercept, strict=True)
        ]


class _Trees:
    """Histogram gradient boosting: baseline + sum of leaf values, one tree per output per iteration.

    Nodes are stored column-wise per tree: feature, threshold, missing_left, left, right, leaf
    value (leaf when left == 0). A missing feature follows `missing_left`, exactly like sklearn.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.baseline: list[float] = [float(v) for v in spec["baseline"]]
        self.trees: list[
            list[tuple[list[int], list[float], list[int], list[int], list[int], list[float]]]
        ] = [
            [
                (
                    t["feature"],
                    [float(v) for v in t["threshold"]],
                    t["missing_left"],
                    t["left"],
                    t["right"],
                    [float(v) for v in t["value"]],
                )
                for t in iteration
            ]
            for iteration in spec["trees"]
        ]

        self._compiled = self._compile()

    def _compile(self) -> Callable[[Vector], list[float]]:
        """Turn the trees into one Python function of nested conditional expressions.

        Walking node arrays in a loop costs an interpreted step per node; a compiled expression
        costs one comparison per level, so the same trees evaluate several times faster. The result
        is identical: the same thresholds (repr round-trips floats exactly), the same `<=`, the
        same missing-value direction. Each feature the trees test is read from `x` once, into a
        local variable (a local load is cheaper than a subscript, and each feature is tested many
        times), with a missing value (None) as NaN and a NaN value as +inf, so one comparison per
        node decides: `x <= t` where a missing value goes right (NaN <= t is false), `not x > t`
        where it goes left (NaN > t is false); a NaN value goes right at every node, as `NaN <= t`
        sends it, and for any other value the two comparisons are each other's negation.
        """
        outputs = []
        for k, baseline in enumerate(self.baseline):
            terms = [self._tree_source(tree, 0) for tree in (iteration[k] for iteration in self.trees)]
            outputs.append(" + ".join([repr(baseline), *terms]) if terms else repr(baseline))
        tested = (f for it in self.trees for t in it for f, left in zip(t[0], t[3], strict=True) if left)
        used = sorted({int(f) for f in tested})
        reads = "".join(
            f"    x{f} = x[{f}]\n    if x{f} is None or x{f} != x{f}: x{f} = _NAN if x{f} is None else _INF\n"
            for f in used
        )
        source = "def score(x):\n" + reads + "    return [" + ", ".join(outputs) + "]\n"
        namespace: dict[str, Any] = {"_NAN": math.nan, "_INF": math.inf}
        exec(compile(source, "<airlake-trees>", "exec"), namespace)
        function: Callable[[Vector], list[float]] = namespace["score"]
        return function

    def _tree_source(
        self, tree: tuple[list[int], list[float], list[int], list[int], list[int], list[float]], node: int
    ) -> str:
        feature, threshold, missing_left, left, right, value = tree
        if not left[node]:
            return repr(value[node])
        f, t = int(feature[node]), threshold[node]
        go_left, go_right = self._tree_source(tree, left[node]), self._tree_source(tree, right[node])
        if missing_left[node]:
            return f"({go_right} if x{f} > {t!r} else {go_left})"
        return f"({go_left} if x{f} <= {t!r} else {go_right})"

    def raw(self, x: Vector) -> list[float]:
        return self._compiled(x)


def _softmax(raw: Sequence[float]) -> list[float]:
    top = max(raw)
    exps = [math.exp(r - top) for r in raw]
    total = sum(exps)
    return [e / total for e in exps]


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    e = math.exp(value)
    return e / (1.0 + e)


Scorer = Callable[[Vector], list[float]]


def _member(member: Mapping[str, Any], n_classes: int) -> Scorer:
    """One blend member; a regression member fitted to log1p(y) carries `target_transform` "log1p"
    and `clip` [lo, hi] (its log-scale output is clipped to the range seen in training, then
    expm1), so members on different target scales blend on the original scale."""
    scorer = _build(member["estimator"], n_classes)
    transform = member.get("target_transform")
    if transform is None:
        return scorer
    if transform != "log1p" or n_classes:
        raise ArtifactError(f"unsupported member target_transform {transform!r}")
    lo, hi = (float(v) for v in member["clip"])

    def back(x: Vector) -> list[float]:
        return [math.expm1(min(max(v, lo), hi)) for v in scorer(x)]

    return back


def _build(spec: Mapping[str, Any], n_classes: int) -> Scorer:
    """A function from feature vector to output: one value (regression) or class probabilities."""
    kind = spec["type"]
    if kind == "blend":
        members = [(float(m["weight"]), _member(m, n_classes)) for m in spec["members"]]

        def blend(x: Vector) -> list[float]:
            outputs = [(w, f(x)) for w, f in members]
            width = len(outputs[0][1])
            return [sum(w * out[i] for w, out in outputs) for i in range(width)]

        return blend
    if kind == "linear":
        raw_fn = _Linear(spec).raw
    elif kind == "trees":
        raw_fn = _Trees(spec).raw
    else:
        raise ArtifactError(f"unknown estimator type {kind!r}")
    if n_classes == 0:
        return raw_fn
    if n_classes == 2:  # one decision value for the second class, as sklearn does

        def binary(x: Vector) -> list[float]:
            p = _sigmoid(raw_fn(x)[0])
            return [1.0 - p, p]

        return binary
    return lambda x: _softmax(raw_fn(x))


# --------------------------------------------------------------------------------------------
# Loaded model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """One artifact, ready to score rows one at a time."""

    version: str
    kind: Kind
    inputs: tuple[str, ...]
    metadata: dict[str, Any]
    pipeline: FeaturePipeline
    classes: tuple[str, ...]
    target_transform: str | None
    _scorer: Scorer

    @property
    def temporal(self) -> bool:
        """True when predictions need `ts_ms` and a per-group state."""
        return self.pipeline.temporal

    def new_state(self) -> FeatureState | None:
        """Fresh per-group (e.g. per-device) state; None for row-only models."""
        return self.pipeline.new_state()

    def features(self, row: Row, *, ts_ms: int | None = None, state: object | None = None) -> Vector:
        return self.pipeline.transform(row, ts_ms=ts_ms, state=_state(state))

    def observe(self, row: Row, *, ts_ms: int | None = None, state: object | None = None) -> None:
        """Advance a temporal model's `state` by one row exactly as `features` would, without
        computing the features (nothing to do for a row-only model)."""
        self.pipeline.observe(row, ts_ms=ts_ms, state=_state(state))

    def predict_one(self, row: Row, *, ts_ms: int | None = None, state: object | None = None) -> float | str:
        """A calibrated value (float) or a class label (str) for one row of raw inputs.

        Missing or non-numeric inputs count as missing (the model imputes them), never as zero.
        """
        return self.predict_features(self.features(row, ts_ms=ts_ms, state=state))

    def predict_proba_one(
        self, row: Row, *, ts_ms: int | None = None, state: object | None = None
    ) -> dict[str, float]:
        """Class probabilities of a classifier (for alert severities and confidence)."""
        if self.kind != "classifier":
            raise TypeError("predict_proba_one is for classifiers")
        proba = self._scorer(self.features(row, ts_ms=ts_ms, state=state))
        return dict(zip(self.classes, proba, strict=True))

    def predict_features(self, x: Vector) -> float | str:
        output = self._scorer(x)
        if self.kind == "classifier":
            best = max(range(len(output)), key=output.__getitem__)  # first maximum, like argmax
            return self.classes[best]
        value = output[0]
        if self.target_transform == "log1p":
            return math.expm1(value)
        return value


def _state(state: object | None) -> FeatureState | None:
    if state is None or isinstance(state, FeatureState):
        return state
    raise TypeError("state must come from model.new_state()")


def load_artifact_files(files: Mapping[str, bytes]) -> LoadedModel:
    """Load from file name -> bytes (e.g. the objects under an S3 prefix)."""
    try:
        metadata = json.loads(files[METADATA_FILE])
        model = json.loads(files[MODEL_FILE])
    except KeyError as missing:
        raise ArtifactError(f"artifact has no {missing.args[0]}") from None
    for doc in (metadata, model):
        if doc.get("format") != FORMAT_ID:
            raise ArtifactError(f"unsupported artifact format {doc.get('format')!r}, want {FORMAT_ID}")
    kind = model["kind"]
    if kind not in ("calibration", "classifier"):
        raise ArtifactError(f"unknown model kind {kind!r}")
    classes = tuple(str(c) for c in model.get("classes") or ())
    pipeline = FeaturePipeline(model["features"])
    scorer = _build(model["estimator"], len(classes) if kind == "classifier" else 0)
    return LoadedModel(
        version=str(metadata["version"]),
        kind=kind,
        inputs=pipeline.inputs,
        metadata=metadata,
        pipeline=pipeline,
        classes=classes,
        target_transform=model.get("target_transform"),
        _scorer=scorer,
    )


def load_artifact(path: str | Path) -> LoadedModel:
    """Load an artifact directory written by `airlake ml train-*`."""
    directory = Path(path)
    files = {}
    for name in (METADATA_FILE, MODEL_FILE):
        file = directory / name
        if not file.is_file():
            raise ArtifactError(f"{directory}: no {name}")
        files[name] = file.read_bytes()
    return load_artifact_files(files)
