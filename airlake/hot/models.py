"""Models from S3 behind an SSM pointer: the deployed `ModelSource` of airlake.calibration.

The parameter named by MODEL_POINTER_PARAMETER holds the S3 key of the current registry JSON in
MODELS_BUCKET; artifact directories in the registry are relative to that key's folder, and
`devices.json` sits next to it. Publishing a new model = upload artifacts + registry, then update
the parameter; running functions pick it up at their next pointer check.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from typing import Any

from airlake.calibration import DEVICES_FILE


class S3ModelSource:
    def __init__(self, bucket: str, parameter: str, s3_factory: Callable[[], Any],
                 ssm_factory: Callable[[], Any]) -> None:  # fmt: skip
        self.bucket = bucket
        self.parameter = parameter
        self._s3_factory = s3_factory
        self._ssm_factory = ssm_factory
        self._s3: Any = None
        self._ssm: Any = None
        self._key: str | None = None

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = self._s3_factory()
        return self._s3

    @property
    def ssm(self) -> Any:
        if self._ssm is None:
            self._ssm = self._ssm_factory()
        return self._ssm

    def pointer(self) -> str:
        """The registry key; "none" while no model was ever published (the built-in baseline runs)."""
        try:
            key: str = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            key = "none"
        self._key = key
        return key

    def _registry_key(self) -> str:
        return self._key if self._key is not None else self.pointer()

    def _get(self, key: str) -> bytes | None:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return body

    def registry(self) -> dict[str, Any] | None:
        if self._registry_key() == "none":
            return None
        data = self._get(self._registry_key())
        return None if data is None else dict(json.loads(data))

    def artifact_files(self, relative_dir: str) -> dict[str, bytes]:
        base = posixpath.dirname(self._registry_key())
        prefix = posixpath.normpath(posixpath.join(base, relative_dir)).lstrip("/") + "/"
        files: dict[str, bytes] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name and "/" not in name:
                    files[name] = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
        return files

    def devices(self) -> list[dict[str, Any]]:
        if self._registry_key() == "none":
            return []
        data = self._get(posixpath.join(posixpath.dirname(self._registry_key()), DEVICES_FILE))
        return [] if data is None else list(json.loads(data))
