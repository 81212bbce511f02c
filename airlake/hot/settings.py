"""Typed settings of the three hot-path Lambdas, parsed once from the environment.

Handlers parse them lazily on the first invocation (importing a handler needs no environment);
a missing variable fails that invocation with a message naming every missing variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self


class SettingsError(RuntimeError):
    pass


def _read(cls: type[Any], environ: Mapping[str, str]) -> dict[str, str]:
    names = {f.name: f.name.upper() for f in fields(cls)}
    missing = [env for env in names.values() if not environ.get(env)]
    if missing:
        raise SettingsError(
            f"{cls.__name__}: missing environment variable(s) {', '.join(missing)}; the stack sets them "
            "on the function (locally, `python -m airlake` sets them or builds the dependencies itself)"
        )
    return {name: environ[env] for name, env in names.items()}


@dataclass(frozen=True, slots=True)
class CalibrateSettings:
    lake_bucket: str
    calibrated_stream_name: str
    models_bucket: str
    model_pointer_parameter: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        return cls(**_read(cls, environ))


@dataclass(frozen=True, slots=True)
class AggregateSettings:
    lake_bucket: str
    state_table_name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        return cls(**_read(cls, environ))


@dataclass(frozen=True, slots=True)
class ClassifySettings:
    lake_bucket: str
    state_table_name: str
    alerts_topic_arn: str
    models_bucket: str
    model_pointer_parameter: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        return cls(**_read(cls, environ))
