"""Calibration: raw metal-oxide responses -> calibrated CO (mg/m3), NOx (ppb) and NO2 (ug/m3).

Used by the calibrate Lambda, the cold-path Glue job and the local runtime through one API:
`load_calibrator(source)` and `Calibrator.calibrate_channels(device_id, channels, ts_ms)`; the
calibrate stage calibrates a whole batch with `Calibrator.calibrate_batch`, which gives the same
results faster (the fleet's folded models as array code over all the batch's readings).

Models come from a registry (`registry.json`, owned by the ML issue):
`{"version", "calibration": {"fleet": {"co": dir, ...}, "devices": {device_id: {"co": dir}}},
"classifier": dir}`, directories relative to the registry, each an `airlake.model/v1` artifact
evaluated by `airlake.ml.runtime` (standard library only: no sklearn or pandas on the hot path;
numpy only for `calibrate_batch`'s array code, imported on its first use).
A device's own model overrides the fleet model for that target only.

When no registry exists (before the ML issue ships one), the fleet default is `BUILTIN_LINEAR`:
an ordinary least-squares fit on the vendored UCI data (data/uci_air_quality, all 2004-2005 rows
where the target and inputs are present, inputs standardised) of each reference concentration on
its metal-oxide response, temperature and relative humidity:

    target    inputs                               n      RMSE          R^2
    co        mox_co, temperature, humidity        7344   0.67 mg/m3    0.79
    nox       mox_nox, temperature, humidity       7396   137 ppb       0.56
    no2       mox_no2, temperature, humidity       7393   39 ug/m3      0.33

tests/hot/test_calibration.py refits it from the CSV and checks these numbers. It is a baseline,
not a good model: the sensors drift, which is what the ML issue's per-device models fix.

The source's pointer (SSM parameter value, or the registry file's content hash locally) is checked
at most every `refresh_seconds` (injectable clock); when it changes, the models are reloaded, so a
new model version needs no redeploy.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol

from airlake.contract.limits import CHANNEL_DECIMALS, CHANNEL_RANGES
from airlake.ml.runtime import LoadedModel, load_artifact_files

TARGETS: Final = ("co", "nox", "no2")
# Decimals kept in a calibrated value: ten times finer than the reference analysers the models are
# trained against resolve (CO 0.1 mg/m3, NOx 1 ppb, NO2 1 ug/m3), as the contract declares. The digits
# beyond are model noise, and the curated zone stores these outputs as decimals at this scale.
OUTPUT_DECIMALS: Final = {name: CHANNEL_DECIMALS[name] for name in ("co", "nox", "no2")}
REGISTRY_FILE: Final = "registry.json"
DEVICES_FILE: Final = "devices.json"
DEFAULT_MODELS_DIR: Final = Path(__file__).resolve().parent.parent / "models"
BUILTIN_VERSION: Final = "builtin-linear-uci-v1"
REPORT_INTERVAL_FIELD: Final = "report_interval_s"  # devices.json: the device's reporting interval

# UCI column names for the wire channels, so an artifact trained on the raw CSV columns can be fed.
UCI_ALIASES: Final[dict[str, str]] = {
    "mox_co": "PT08.S1(CO)",
    "mox_nmhc": "PT08.S2(NMHC)",
    "mox_nox": "PT08.S3(NOx)",
    "mox_no2": "PT08.S4(NO2)",
    "mox_o3": "PT08.S5(O3)",
    "temperature": "T",
    "humidity": "RH",
    "abs_humidity": "AH",
}

_REVERSE_ALIASES: Final = {uci: wire for wire, uci in UCI_ALIASES.items()}

# target -> (inputs, input means, input scales, intercept, coefficients on standardised inputs)
BUILTIN_LINEAR: Final[dict[str, tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...], float,
                                      tuple[float, ...]]]] = {
    "co": (("mox_co", "temperature", "humidity"), (1110.580746, 17.770425, 49.060076),
           (218.666443, 8.862085, 17.450375), 2.129711, (1.295641, -0.115697, -0.192706)),
    "nox": (("mox_nox", "temperature", "humidity"), (824.533261, 17.96924, 48.768916),
            (256.877362, 9.001759, 17.494505), 242.189292, (-146.87896, -82.412983, -14.442266)),
    "no2": (("mox_no2", "temperature", "humidity"), (1452.011362, 17.964805, 48.77545),
            (353.484087, 9.000539, 17.494177), 112.145137, (31.797466, -43.600394, -28.556157)),
}  # fmt: skip


class ModelSource(Protocol):
    """Where the registry and artifacts live: a local folder, or S3 behind an SSM pointer."""

    def pointer(self) -> str:
        """A cheap identifier of the current registry; a new value means new models."""
        ...

    def registry(self) -> dict[str, Any] | None:
        """The current registry document, or None when none is published."""
        ...

    def artifact_files(self, relative_dir: str) -> dict[str, bytes]:
        """The files of one artifact directory (relative to the registry)."""
        ...

    def devices(self) -> list[dict[str, Any]]:
        """The device registry (`devices.json`), or [] when absent."""
        ...


@dataclass(frozen=True, slots=True)
class DirectorySource:
    """Models in a local folder (the shipped `models/`, or `.airlake/models/`)."""

    root: Path

    def _read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def pointer(self) -> str:
        data = self._read(REGISTRY_FILE)
        return "none" if data is None else hashlib.sha256(data).hexdigest()

    def registry(self) -> dict[str, Any] | None:
        data = self._read(REGISTRY_FILE)
        return None if data is None else dict(json.loads(data))

    def artifact_files(self, relative_dir: str) -> dict[str, bytes]:
        directory = self.root / relative_dir
        return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}

    def devices(self) -> list[dict[str, Any]]:
        data = self._read(DEVICES_FILE)
        return [] if data is None else list(json.loads(data))


def builtin_artifact_files(target: str) -> dict[str, bytes]:
    """BUILTIN_LINEAR[target] as an `airlake.model/v1` artifact, so one evaluator runs everything."""
    inputs, means, scales, intercept, coef = BUILTIN_LINEAR[target]
    model = {
        "format": "airlake.model/v1",
        "kind": "calibration",
        "features": [{"op": "raw", "col": name} for name in inputs],
        "classes": None,
        "target_transform": None,
        "estimator": {
            "type": "linear",
            "fill": list(means),
            "mean": list(means),
            "scale": list(scales),
            "coef": [list(coef)],
            "intercept": [intercept],
        },
    }
    metadata = {
        "format": "airlake.model/v1",
        "kind": "calibration",
        "version": BUILTIN_VERSION,
        "target": target,
        "training": "OLS on data/uci_air_quality, see airlake.calibration",
    }
    return {"model.json": json.dumps(model).encode(), "metadata.json": json.dumps(metadata).encode()}


@dataclass(frozen=True, slots=True)
class FastLinear:
    """A linear model over raw inputs, folded into one weight per input and a bias.

    Equal to the runtime's evaluation (imputer -> scaler -> linear) for rows with every input
    present, which is the only case the calibrator scores, without building a row or vector."""

    inputs: tuple[str, ...]
    terms: tuple[tuple[str, str | None, float], ...]  # (input, its wire-channel alias, weight)
    bias: float

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> FastLinear | None:
        model = json.loads(files["model.json"])
        estimator = model.get("estimator") or {}
        features = model.get("features") or []
        if (
            model.get("kind") != "calibration"
            or model.get("target_transform") is not None
            or estimator.get("type") != "linear"
            or len(estimator.get("coef", [])) != 1
            or not features
            or any(set(f) != {"op", "col"} or f["op"] != "raw" for f in features)
        ):
            return None
        coef, means, scales = estimator["coef"][0], estimator["mean"], estimator["scale"]
        weights = tuple(float(c) / float(s) for c, s in zip(coef, scales, strict=True))
        bias = float(estimator["intercept"][0]) - math.fsum(
            w * float(m) for w, m in zip(weights, means, strict=True)
        )
        inputs = tuple(str(f["col"]) for f in features)
        terms = tuple((name, _REVERSE_ALIASES.get(name), w) for name, w in zip(inputs, weights, strict=True))
        return cls(inputs, terms, bias)


_ROW_FEATURE_OPS: Final = frozenset({"raw", "log", "ratio", "logmul"})


@dataclass(frozen=True, slots=True)
class _FoldedMember:
    """One linear function of the features, scaler folded in: `bias + sum(weight * feature)`, a
    missing feature (log of a non-positive input, ratio over zero) taking its imputer fill value;
    with `clip`, its output is a log1p-scale value: clipped to [lo, hi], then expm1."""

    blend_weight: float
    weights: tuple[float, ...]
    fills: tuple[float, ...]
    bias: float
    clip: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class FoldedFeatureLinear:
    """A linear model (or a blend of linear members) over row-only engineered features (raw, log,
    ratio, logmul), folded into one weight per feature, for the generated calibration plan.

    The shipped fleet calibrations are such models (see airlake.ml.fleet). Equal to the runtime's
    evaluation (features -> imputer -> scaler -> linear, members blended, log1p undone) up to the
    rounding of folding the scaler into the weights, for finite inputs, all present: the only case
    the calibrator scores. `blend` says whether the output is a weighted sum of the members (the
    runtime's `blend`) or the single member itself."""

    inputs: tuple[str, ...]
    features: tuple[tuple[str, str, str | None], ...]  # (op, a, b)
    members: tuple[_FoldedMember, ...]
    blend: bool
    log1p: bool  # the whole model's output is undone with expm1

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], inputs: tuple[str, ...]) -> FoldedFeatureLinear | None:
        model = json.loads(files["model.json"])
        features = model.get("features") or []
        estimator = model.get("estimator") or {}
        if (
            model.get("kind") != "calibration"
            or model.get("target_transform") not in (None, "log1p")
            or not features
            or any(f.get("op") not in _ROW_FEATURE_OPS for f in features)
        ):
            return None
        specs = tuple((str(f["op"]), str(f.get("col") or f["a"]), f.get("b")) for f in features)
        if estimator.get("type") == "linear":
            member = _fold_member(estimator, 1.0, None, len(specs))
            members: tuple[_FoldedMember, ...] = () if member is None else (member,)
            blend = False
        elif estimator.get("type") == "blend":
            folded = [
                _fold_member(m.get("estimator") or {}, m.get("weight"), m, len(specs))
                for m in estimator.get("members") or []
            ]
            members = tuple(m for m in folded if m is not None)
            if len(members) != len(folded):
                return None
            blend = True
        else:
            return None
        if not members:
            return None
        return cls(inputs, specs, members, blend, model.get("target_transform") == "log1p")


def _fold_member(
    estimator: Mapping[str, Any], weight: object, member: Mapping[str, Any] | None, n: int
) -> _FoldedMember | None:
    if estimator.get("type") != "linear" or len(estimator.get("coef", [])) != 1:
        return None
    coef, means, scales = estimator["coef"][0], estimator["mean"], estimator["scale"]
    fills = estimator["fill"]
    if not len(coef) == len(means) == len(scales) == len(fills) == n:
        return None
    clip = None
    if member is not None and member.get("target_transform") is not None:
        if member["target_transform"] != "log1p":
            return None
        lo, hi = (float(v) for v in member["clip"])
        clip = (lo, hi)
    weights = tuple(float(c) / float(s) for c, s in zip(coef, scales, strict=True))
    bias = float(estimator["intercept"][0]) - math.fsum(
        w * float(m) for w, m in zip(weights, means, strict=True)
    )
    numbers = (*weights, *(float(f) for f in fills), bias, float(weight), *(clip or ()))  # type: ignore[arg-type]
    if not all(math.isfinite(v) for v in numbers):
        return None  # repr() of a non-finite float is no Python literal
    return _FoldedMember(float(weight), weights, tuple(float(f) for f in fills), bias, clip)  # type: ignore[arg-type]


@dataclass(slots=True)
class ModelSet:
    """One registry version, loaded: fleet and per-device calibration models, the classifier.

    The classifier's files are read with the rest, but it is built (parsed, and its trees
    compiled to Python: most of a model set's load time) on first use of `classifier`, which only
    the classify stage makes; the calibrate stage's cold start does not pay for it."""

    version: str
    fleet: dict[str, LoadedModel]
    devices: dict[str, dict[str, LoadedModel]] = field(default_factory=dict)
    device_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    fast: dict[int, FastLinear | FoldedFeatureLinear] = field(
        default_factory=dict
    )  # id(LoadedModel) -> folded form
    classifier_files: Mapping[str, bytes] | None = None  # the classifier artifact, until built
    _classifier: LoadedModel | None = None

    @property
    def classifier(self) -> LoadedModel | None:
        if self._classifier is None and self.classifier_files is not None:
            self._classifier = load_artifact_files(self.classifier_files)
            self.classifier_files = None
        return self._classifier


def interval_ms(value: object) -> int | None:
    """A reporting interval in seconds (a registry entry's or a calibrated record's
    `report_interval_s`) as whole milliseconds; None unless it is a positive, finite number, so a
    malformed registry entry falls back to the stages' default instead of breaking a batch."""
    if type(value) is int:
        return value * 1000 if value > 0 else None
    if type(value) is float and math.isfinite(value) and value > 0:
        return max(1, round(value * 1000))
    return None


def load_model_set(source: ModelSource) -> ModelSet:
    registry = source.registry()
    info = {str(d["device_id"]): d for d in source.devices() if "device_id" in d}
    fast: dict[int, FastLinear | FoldedFeatureLinear] = {}
    cache: dict[str, LoadedModel] = {}

    def from_files(files: Mapping[str, bytes]) -> LoadedModel:
        model = load_artifact_files(files)
        folded = FastLinear.from_files(files)
        if folded is not None and folded.inputs == model.inputs:
            fast[id(model)] = folded
        elif not model.temporal:
            general = FoldedFeatureLinear.from_files(files, model.inputs)
            if general is not None:
                fast[id(model)] = general
        return model

    def load(rel: str) -> LoadedModel:
        if rel not in cache:
            cache[rel] = from_files(source.artifact_files(rel))
        return cache[rel]

    if registry is None:
        fleet = {t: from_files(builtin_artifact_files(t)) for t in TARGETS}
        return ModelSet(BUILTIN_VERSION, fleet, device_info=info, fast=fast)
    calibration = registry.get("calibration") or {}
    fleet = {t: load(d) for t, d in (calibration.get("fleet") or {}).items()}
    for target in TARGETS:  # a registry without a fleet model for a target keeps the baseline
        fleet.setdefault(target, from_files(builtin_artifact_files(target)))
    devices = {
        device: {t: load(d) for t, d in targets.items()}
        for device, targets in (calibration.get("devices") or {}).items()
    }
    classifier_dir = registry.get("classifier")
    classifier_files = source.artifact_files(classifier_dir) if classifier_dir else None
    return ModelSet(str(registry["version"]), fleet, devices, info, fast, classifier_files)


class ModelProvider:
    """The current ModelSet, reloaded when the source's pointer changes (checked every N seconds)."""

    def __init__(
        self,
        source: ModelSource,
        *,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._pointer = source.pointer()
        self._models = load_model_set(source)
        self._checked_at = clock()

    @property
    def models(self) -> ModelSet:
        now = self._clock()
        if now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            pointer = self._source.pointer()
            if pointer != self._pointer:
                self._models = load_model_set(self._source)
                self._pointer = pointer
        return self._models


class Calibrator:
    """Applies the current calibration models; per-device overrides over the fleet default."""

    def __init__(self, provider: ModelProvider) -> None:
        self.provider = provider
        self._states: dict[tuple[str, str, str], object] = {}
        self._plan_models: ModelSet | None = None  # the model set `_plans` were made for
        # device (None: the fleet) -> its plan, and the plan as one function when every model is folded
        self._plans: dict[str | None, _PlanEntry] = {}

    @property
    def version(self) -> str:
        return self.provider.models.version

    def report_interval_s(self, device_id: str) -> int | float | None:
        """The device's reporting interval from the device registry (`devices.json`), as written
        there; None for a device the registry does not know or gives no valid interval for."""
        value = self.provider.models.device_info.get(device_id, {}).get(REPORT_INTERVAL_FIELD)
        return value if interval_ms(value) is not None else None

    def calibrate_channels(
        self, device_id: str, channels: Mapping[str, float], ts_ms: int
    ) -> tuple[dict[str, float], str]:
        """Calibrated `co`, `nox`, `no2` for one reading, and the model version used.

        A target is omitted when any input of its model is missing. Results are clipped to the
        physical range of the output channel (a linear model can go below zero in clean air),
        then rounded to OUTPUT_DECIMALS.
        """
        calibrated, version = self.calibrate_device(device_id, ((channels, ts_ms),))
        return calibrated[0], version

    def calibrate_device(
        self, device_id: str, readings: Iterable[tuple[Mapping[str, float], int]]
    ) -> tuple[list[dict[str, float]], str]:
        """`calibrate_channels` for several (channels, ts_ms) of one device, in order (a temporal
        model's state advances reading by reading), with the models looked up once for all."""
        models = self.provider.models
        return self._calibrate(models, device_id, self._entry(models, device_id), readings), models.version

    def calibrate_batch(
        self, batch: Mapping[str, Sequence[tuple[Mapping[str, float], int]]]
    ) -> tuple[dict[str, list[dict[str, float]]], str]:
        """`calibrate_device` for every device of a batch, with one model set; the same results.

        The readings of devices that share a plan of folded models (devices without overrides
        share the fleet's) are calibrated together as arrays when there are at least
        VECTOR_MIN_READINGS of them: one generated array expression per feature and target for the
        whole batch instead of per reading (numpy, imported then)."""
        models = self.provider.models
        results: dict[str, list[dict[str, float]]] = {}
        groups: dict[int, tuple[_VectorPlan, _Folded, list[str]]] = {}
        for device_id, readings in batch.items():
            entry = self._entry(models, device_id)
            _steps, folded, vector = entry
            if vector is None or folded is None:
                results[device_id] = self._calibrate(models, device_id, entry, readings)
            else:
                groups.setdefault(id(entry), (vector, folded, []))[2].append(device_id)
        for vector, folded, devices in groups.values():
            if sum(len(batch[d]) for d in devices) < VECTOR_MIN_READINGS:
                for device_id in devices:
                    results[device_id] = [folded(channels) for channels, _ts_ms in batch[device_id]]
                continue
            calibrated = _calibrate_arrays(vector, folded, [c for d in devices for c, _ts_ms in batch[d]])
            start = 0
            for device_id in devices:
                end = start + len(batch[device_id])
                results[device_id] = calibrated[start:end]
                start = end
        return results, models.version

    def _entry(self, models: ModelSet, device_id: str) -> _PlanEntry:
        """The device's plan (per model set; devices without overrides share the fleet's)."""
        if models is not self._plan_models:  # a new model set: the plans are rebuilt as needed
            self._plan_models, self._plans = models, {}
        overrides = models.devices.get(device_id)
        plan_key = device_id if overrides else None
        entry = self._plans.get(plan_key)
        if entry is None:
            steps = _plan(models, overrides)
            entry = self._plans[plan_key] = (steps, _compile_folded(steps), _compile_vector(steps))
        return entry

    def _calibrate(
        self,
        models: ModelSet,
        device_id: str,
        entry: _PlanEntry,
        readings: Iterable[tuple[Mapping[str, float], int]],
    ) -> list[dict[str, float]]:
        plan, folded_plan, _vector = entry
        if folded_plan is not None:
            return [folded_plan(channels) for channels, _ts_ms in readings]
        # Target by target over all the readings (not reading by reading over the targets): each
        # model's code (hundreds of trees, for the shipped ones) then stays hot in the CPU caches
        # while it runs; every reading's calibrated dict still gets its targets in plan order.
        items = list(readings)
        results: list[dict[str, float]] = [{} for _ in items]
        vectors: dict[str, list[list[float | None] | None]] = {}  # row-only features by feature specs
        for target, model, folded, low, high, decimals in plan:
            if type(folded) is FastLinear:
                for out, (channels, _ts_ms) in zip(results, items, strict=True):
                    value = folded.bias
                    for name, alias, weight in folded.terms:
                        x = channels.get(name)
                        if x is None and (alias is None or (x := channels.get(alias)) is None):
                            break
                        value += weight * x
                    else:  # min(max(value, low), high), spelled out: builtin calls cost more here
                        value = low if low > value else value
                        out[target] = round(high if high < value else value, decimals)
                continue
            state = None
            if model.temporal:  # per-device causal feature state, kept for this container's life
                state_key = (device_id, target, model.version)
                state = self._states.get(state_key)
                if state is None:
                    state = self._states[state_key] = model.new_state()
            # Row-only features depend on the row alone: the targets whose models share them (the
            # fleet's usually do) compute them once per reading.
            shared = None if model.temporal else vectors.setdefault(model.pipeline.key, [None] * len(items))
            for k, (out, (channels, ts_ms)) in enumerate(zip(results, items, strict=True)):
                row: dict[str, float] = {}
                for name in model.inputs:
                    x = channels.get(name)
                    if x is None:
                        x = _aliased(channels, name)
                        if x is None:
                            break
                    row[name] = x
                else:
                    if shared is None:
                        value = float(model.predict_one(row, ts_ms=ts_ms, state=state))
                    else:
                        vector = shared[k]
                        if vector is None:
                            vector = shared[k] = model.features(row)
                        value = float(model.predict_features(vector))
                    value = low if low > value else value
                    out[target] = round(high if high < value else value, decimals)
        return results


# One target of a device's calibration plan: its model (and folded form), output range and decimals.
_Step = tuple[str, LoadedModel, FastLinear | FoldedFeatureLinear | None, float, float, int]


def _plan(models: ModelSet, overrides: Mapping[str, LoadedModel] | None) -> tuple[_Step, ...]:
    """What `calibrate_channels` looks up per target, resolved once per device and model set:
    the device's own model else the fleet's, its folded form, the clip range and the decimals."""
    steps = []
    for target in TARGETS:
        model = (overrides or {}).get(target) or models.fleet.get(target)
        if model is not None:
            low, high, _unit = CHANNEL_RANGES[target]
            steps.append((target, model, models.fast.get(id(model)), low, high, OUTPUT_DECIMALS[target]))
    return tuple(steps)


_Folded = Callable[[Mapping[str, float]], dict[str, float]]  # a folded plan: channels -> calibrated
# A device's plan: its steps, and the plan as one generated function (scalar and over arrays) when
# every model is folded.
_PlanEntry = tuple[tuple[_Step, ...], "_Folded | None", "_VectorPlan | None"]
# Readings of one plan in a batch from which `calibrate_batch` uses arrays: below it, setting the
# arrays up costs more than the per-reading function (measured with benchmarks/bench_handlers.py).
VECTOR_MIN_READINGS: Final = 64


def _calibrate_arrays(
    vector: _VectorPlan, folded: _Folded, channels: Sequence[Mapping[str, float]]
) -> list[dict[str, float]]:
    """`folded(c)` for every `c`, the readings the array plan can take computed as arrays (each
    input present under its own name, no log of a non-positive and no division by zero; nearly
    all of them), the others one by one. Equal to `[folded(c) for c in channels]` to the bit."""
    import numpy as np

    names = vector.names
    getter = itemgetter(*names) if len(names) != 1 else (lambda c: (c[names[0]],))
    taken: list[int] | None = None  # None: every reading
    rows: Iterable[Any] = map(getter, channels)
    try:
        try:
            flat = np.fromiter(chain.from_iterable(rows), np.float64, len(channels) * len(names))
        except KeyError:  # an input missing (or under its wire alias) somewhere: find which
            rows, taken = [], []
            for i, c in enumerate(channels):
                try:
                    rows.append(getter(c))
                except KeyError:
                    continue
                taken.append(i)
            flat = np.fromiter(chain.from_iterable(rows), np.float64, len(taken) * len(names))
    except (TypeError, ValueError, OverflowError):  # not all float64s: left to the per-reading function
        return [folded(c) for c in channels]
    columns = flat.reshape(-1, len(names)).T
    safe = np.ones(columns.shape[1], dtype=bool)
    for index in vector.positive:
        safe &= columns[index] > 0.0
    for index in vector.nonzero:
        safe &= columns[index] != 0.0
    if taken is None and safe.all():
        return vector.function(tuple(columns))
    chosen = np.flatnonzero(safe)
    out: list[dict[str, float] | None] = [None] * len(channels)
    if len(chosen):
        indexes = chosen.tolist() if taken is None else np.asarray(taken)[chosen].tolist()
        for i, result in zip(indexes, vector.function(tuple(columns[:, chosen])), strict=True):
            out[i] = result
    return [folded(c) if result is None else result for c, result in zip(channels, out, strict=True)]


_Target = tuple[str, Any, float, float, int]  # (target, folded model, low, high, decimals)
# A plan cut into segments: a FastLinear target alone (None), or consecutive feature models over
# the same inputs (those inputs), which share their features.
_Segment = tuple[tuple[str, ...] | None, list[_Target]]


def _segments(steps: Sequence[_Step]) -> list[_Segment] | None:
    """The plan's segments, or None when a model is not folded (or not expressible as literals)."""
    segments: list[_Segment] = []
    for target, _model, folded, low, high, decimals in steps:
        if folded is None or not all(math.isfinite(v) for v in (low, high)):
            return None
        if type(folded) is FastLinear:
            if not all(math.isfinite(v) for v in (folded.bias, *(w for *_, w in folded.terms))):
                return None  # repr() of a non-finite float is no Python literal
            segments.append((None, [(target, folded, low, high, decimals)]))
        elif not segments or segments[-1][0] != folded.inputs:
            segments.append((folded.inputs, [(target, folded, low, high, decimals)]))
        else:
            segments[-1][1].append((target, folded, low, high, decimals))
    return segments


def _compile_folded(steps: Sequence[_Step]) -> _Folded | None:
    """A plan whose every model is folded (FastLinear or FoldedFeatureLinear), as one generated
    function of the channels (speed only): each input read once, each log and feature computed
    once however many targets use it, then per target its folded sum(s), blend, expm1, clip and
    rounding, as `calibrate_device`'s loop and the runtime do; a target with an input missing is
    left out. None when the plan has another kind of model.

    Consecutive feature models over the same inputs form one block with two bodies. When every
    log's argument is positive and every ratio's divisor non-zero (nearly every reading), the
    features are computed and summed without a missing-value test; otherwise a feature may be
    missing and each member's fill value stands in for it. Where both apply they do the same
    arithmetic in the same order, so they agree to the bit."""
    segments = _segments(steps)
    if segments is None:
        return None
    inputs: dict[tuple[str, str | None], str] = {}
    lines = ["get = channels.get", "out = {}"]

    def read(name: str) -> str:
        alias = _REVERSE_ALIASES.get(name)
        var = inputs.get((name, alias))
        if var is None:
            var = inputs[(name, alias)] = f"x{len(inputs)}"
            lines.append(f"{var} = get({name!r})")
            if alias is not None:
                lines.append(f"if {var} is None: {var} = get({alias!r})")
        return var

    for group_inputs, targets in segments:
        if group_inputs is None:
            ((target, fast, low, high, decimals),) = targets
            names = [read(name) for name, _alias, _weight in fast.terms]
            present = " and ".join(f"{var} is not None" for var in names) or "True"
            body = [f"v = {_linear_sum(fast, names)}", *_finish(target, low, high, decimals, vector=False)]
            lines += [f"if {present}:", *(f"    {line}" for line in body)]
            continue
        reads = {name: read(name) for name in group_inputs}
        present = " and ".join(f"{var} is not None" for var in reads.values()) or "True"
        lines += [
            f"if {present}:",
            f"    if {' and '.join(_no_missing_features(targets, reads)) or 'True'}:",
            *(f"        {line}" for line in _block(targets, reads, safe=True, vector=False)),
            "    else:",
            *(f"        {line}" for line in _block(targets, reads, safe=False, vector=False)),
        ]
    source = "def calibrate(channels):\n" + "".join(f"    {line}\n" for line in lines) + "    return out\n"
    namespace: dict[str, Any] = {"_round": round, "_abs": abs, "_ln": math.log, "_expm1": math.expm1}
    exec(compile(source, "<airlake-calibration>", "exec"), namespace)
    function: _Folded = namespace["calibrate"]
    return function


@dataclass(frozen=True, slots=True)
class _VectorPlan:
    """A folded plan over columns (numpy arrays, one per input of `names`) of readings that have
    every input under its own name, positive where a log is taken and non-zero where divided by.
    `function(columns)` returns each reading's outputs as `{target: value}`, in `targets` order."""

    names: tuple[str, ...]
    positive: tuple[int, ...]  # column indexes that must be > 0
    nonzero: tuple[int, ...]  # column indexes that must be != 0
    targets: tuple[str, ...]
    function: Callable[..., list[dict[str, float]]]


def _compile_vector(steps: Sequence[_Step]) -> _VectorPlan | None:
    """The plan of `_compile_folded`, as array code for many readings at once (speed only).

    The same generated expressions, on numpy float64 arrays: IEEE-754 makes each elementwise
    +, *, / and comparison give the bits the scalar code gives, evaluated in the same order. Logs
    and expm1 are taken with `math` (numpy's may differ in the last bit), and rounding is the
    scalar code's, so every output equals `_compile_folded`'s to the bit (tested)."""
    segments = _segments(steps)
    if segments is None:
        return None
    columns: dict[str, str] = {}
    positive: dict[int, None] = {}
    nonzero: dict[int, None] = {}

    def read(name: str) -> str:
        return columns.setdefault(name, f"x{len(columns)}")

    body: list[str] = []
    targets: list[str] = []
    for group_inputs, group in segments:
        if group_inputs is None:
            ((target, fast, low, high, decimals),) = group
            if not fast.terms:
                return None  # a constant: not an array expression
            names = [read(name) for name, _alias, _weight in fast.terms]
            body += [f"v = {_linear_sum(fast, names)}", *_finish(target, low, high, decimals, vector=True)]
        else:
            reads = {name: read(name) for name in group_inputs}
            for test in _no_missing_features(group, reads):
                var, op, _zero = test.split(" ")
                (positive if op == ">" else nonzero)[int(var[1:])] = None
            body += _block(group, reads, safe=True, vector=True)
        targets += [target for target, *_ in group]
    unpack = f"    {', '.join(columns.values())}, = columns\n" if columns else ""
    source = (
        "def calibrate(columns):\n"
        + unpack
        + "    out = {}\n"
        + "".join(f"    {line}\n" for line in body)
        + f"    return [{{{', '.join(f'{t!r}: v{k}' for k, t in enumerate(targets))}}}"
        + f" for {', '.join(f'v{k}' for k in range(len(targets)))}, in zip({', '.join(f'out[{t!r}]' for t in targets)})]\n"
    )
    namespace: dict[str, Any] = {"_vector_ops": _VectorOps()}
    namespace.update(namespace["_vector_ops"].names())
    exec(compile(source, "<airlake-calibration-vector>", "exec"), namespace)
    return _VectorPlan(
        tuple(columns), tuple(positive), tuple(nonzero), tuple(targets), namespace["calibrate"]
    )


class _VectorOps:
    """The helpers the array code calls; numpy is imported on first use, never at module import
    (a handler's cold start does not pay for it unless a batch is large enough to use it).

    Logs and expm1 must be the ones `math` takes, bit for bit, for the array code to equal the
    per-reading code. numpy's float64 log and expm1 call the C library's, as `math` does, except
    where numpy has its own vectorized versions (x86-64 with AVX-512), which may differ in the
    last bit. So numpy's are used only if they agree with `math` on 20,000 probe values spread over
    the range of sensor readings (a differing implementation disagrees on a good share of them);
    otherwise `math`'s, mapped over the values (slower)."""

    _numpy_agrees: ClassVar[dict[str, bool]] = {}  # function name -> numpy's agrees with math's

    def names(self) -> dict[str, Callable[..., Any]]:
        return {"_ln": self.ln, "_expm1": self.expm1, "_where": self.where, "_vround": self.round}

    @classmethod
    def _agrees(cls, name: str) -> bool:
        agrees = cls._numpy_agrees.get(name)
        if agrees is None:
            import numpy as np

            if name == "log":  # sensor responses and their ratios
                probe = np.concatenate([np.geomspace(1e-3, 1e6, 10_000), np.linspace(1.0, 5_000.0, 10_000)])
            else:  # log-scale model outputs
                probe = np.concatenate([np.geomspace(1e-6, 20.0, 10_000), np.linspace(-2.0, 12.0, 10_000)])
            exact = np.fromiter(map(getattr(math, name), probe.tolist()), np.float64, len(probe))
            agrees = cls._numpy_agrees[name] = bool(np.array_equal(getattr(np, name)(probe), exact))
        return agrees

    @classmethod
    def ln(cls, x: Any) -> Any:
        import numpy as np

        if cls._agrees("log"):
            return np.log(x)
        return np.fromiter(map(math.log, x.tolist()), np.float64, len(x))

    @classmethod
    def expm1(cls, x: Any) -> Any:
        import numpy as np

        if cls._agrees("expm1"):
            return np.expm1(x)
        return np.fromiter(map(math.expm1, x.tolist()), np.float64, len(x))

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        import numpy as np

        return np.where(condition, a, b)

    @staticmethod
    def round(v: Any, decimals: int, fast: bool) -> list[float]:
        """`_finish`'s rounding: k = rint(v * 10**d) / 10**d, and round() near a .5."""
        import numpy as np

        if not fast:
            return [round(x, decimals) for x in v.tolist()]
        scale = float(10**decimals)
        y = v * scale
        k = np.rint(y)  # half to even, as round(); unlike int, a float k keeps the sign of a zero
        out: list[float] = (k / scale).tolist()
        for i in np.flatnonzero(np.abs(y - k) >= 0.499999).tolist():
            out[i] = round(float(v[i]), decimals)
        return out


def _linear_sum(fast: FastLinear, names: Sequence[str]) -> str:
    products = (f"{w!r} * {var}" for (*_, w), var in zip(fast.terms, names, strict=True))
    return " + ".join([repr(fast.bias), *products])


def _finish(target: str, low: float, high: float, decimals: int, *, vector: bool) -> list[str]:
    """Clip `v` to the target's range and round it to `decimals` into the output, as `round()`.

    `round(v, d)` formats v in decimal, which costs more than the rest of a target's arithmetic.
    Spelled out instead: k = v * 10**d rounded to an integer, then k / 10**d (a correctly rounded
    division, so the double nearest k * 10**-d, which is what round() returns). The product's
    rounding error can move it across a .5 only when it lies within 1e-6 of one, given the range
    bound below; then (and for k = 0, which keeps -0.0's sign) round() itself decides.
    tests/hot/test_calibration.py checks the two agree on ties, near-ties and random values."""
    scale = 10 ** int(decimals)
    fast = 0 <= decimals <= 15 and max(abs(low), abs(high)) * scale < _EXACT_ROUNDING_BOUND
    if vector:
        return [
            f"v = _where({low!r} > v, {low!r}, v)",
            f"v = _where({high!r} < v, {high!r}, v)",
            f"out[{target!r}] = _vround(v, {int(decimals)}, {fast})",
        ]
    clip = [f"v = {low!r} if {low!r} > v else v", f"v = {high!r} if {high!r} < v else v"]
    if not fast:
        return [*clip, f"out[{target!r}] = _round(v, {int(decimals)})"]
    return [
        *clip,
        f"y = v * {float(scale)!r}",
        "k = _round(y)",
        f"out[{target!r}] = k / {scale} if k and _abs(y - k) < 0.499999 else _round(v, {int(decimals)})",
    ]


# |v * 10**d| below this: the product's error (half an ulp, < 1e-6 here) cannot carry it across
# the 1e-6 margin around a .5 that `_finish` leaves to round().
_EXACT_ROUNDING_BOUND: Final = 2.0**32


def _no_missing_features(targets: Sequence[_Target], reads: Mapping[str, str]) -> list[str]:
    """The tests under which no feature of a block is missing: logs of positive numbers and
    ratios to non-zero ones (the inputs themselves are present inside the block)."""
    tests: dict[str, None] = {}  # ordered, without repeats
    for _target, folded, *_ in targets:
        for op, a, b in folded.features:
            if op in ("log", "logmul"):
                tests[f"{reads[a]} > 0.0"] = None
            elif op == "ratio":
                tests[f"{reads[b or '']} != 0.0"] = None
    return list(tests)


def _block(targets: Sequence[_Target], reads: Mapping[str, str], *, safe: bool, vector: bool) -> list[str]:
    """The code of a block of feature-model targets over the same inputs (present). `safe`: no
    feature can be missing, so none is tested; else a missing one is None and its fill stands in.
    `vector`: the variables are arrays (always safe)."""
    cache: dict[tuple[str, ...], str] = {}  # (op, a, b) or ("filled", var, fill) -> its variable
    body: list[str] = []

    def define(key: tuple[str, ...], expression: str, guarded: str) -> str:
        var = cache[key] = f"f{len(cache)}"
        body.append(f"{var} = {expression}" if safe else f"{var} = {expression} if {guarded} else None")
        return var

    def feature(op: str, a: str, b: str | None) -> str:
        var = cache.get((op, a, b or ""))
        if var is not None:
            return var
        xa = reads[a]
        if op == "raw":
            return xa
        if op == "ratio":
            xb = reads[b or ""]
            return define((op, a, b or ""), f"{xa} / {xb}", f"{xb} != 0.0")
        log_var = cache.get(("log", a, "")) or define(("log", a, ""), f"_ln({xa})", f"{xa} > 0.0")
        if op == "log":
            return log_var
        return define((op, a, b or ""), f"{log_var} * {reads[b or '']}", f"{log_var} is not None")

    for target, folded, low, high, decimals in targets:
        variables = [feature(op, a, b) for op, a, b in folded.features]
        outputs: list[str] = []
        for member in folded.members:
            terms = []
            for var, (op, _a, _b), w, fill in zip(
                variables, folded.features, member.weights, member.fills, strict=True
            ):
                term = var
                if op != "raw" and not safe:  # the feature, or its fill value when missing: once per block
                    term = cache.get(("filled", var, repr(fill))) or ""
                    if not term:
                        term = cache[("filled", var, repr(fill))] = f"f{len(cache)}"
                        body.append(f"{term} = {var} if {var} is not None else {fill!r}")
                terms.append(f"{w!r} * {term}")
            m = f"m{len(outputs)}"
            body.append(f"{m} = " + " + ".join([repr(member.bias), *terms]))
            if member.clip is not None:
                lo, hi = member.clip
                if vector:
                    body.append(
                        f"{m} = _expm1(_where({hi!r} < {m}, {hi!r}, _where({lo!r} > {m}, {lo!r}, {m})))"
                    )
                else:
                    body.append(
                        f"{m} = _expm1({hi!r} if {hi!r} < {m} else ({lo!r} if {lo!r} > {m} else {m}))"
                    )
            outputs.append(f"{member.blend_weight!r} * {m}" if folded.blend else m)
        total = "0 + " + " + ".join(outputs) if folded.blend else outputs[0]
        body += [
            f"v = {f'_expm1({total})' if folded.log1p else total}",
            *_finish(target, low, high, decimals, vector=vector),
        ]
    return body


def _aliased(channels: Mapping[str, float], name: str) -> float | None:
    wire = _REVERSE_ALIASES.get(name)
    return None if wire is None else channels.get(wire)


def load_calibrator(
    source: ModelSource | str | Path | None = None,
    *,
    refresh_seconds: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> Calibrator:
    """A Calibrator over a models folder (default: the repo's `models/`) or any ModelSource."""
    if source is None:
        source = DirectorySource(DEFAULT_MODELS_DIR)
    elif isinstance(source, str | Path):
        source = DirectorySource(Path(source))
    return Calibrator(ModelProvider(source, refresh_seconds=refresh_seconds, clock=clock))
