"""Packaging of the Lambda code and of the Glue jobs' domain code, without Docker.

Lambda: one asset holds `airlake/` (the domain package), `lambdas/` (the three handlers) and the
handlers' third-party dependencies from `lambdas/requirements.txt`, installed by pip as Linux arm64
wheels for the Lambda Python version (`--platform manylinux_2_28_aarch64 --platform
manylinux2014_aarch64 --only-binary=:all:`; the Python 3.12+ runtimes run Amazon Linux 2023, glibc
2.34, and numpy ships arm64 wheels for glibc 2.28 only), so a developer laptop or CI runner of any
architecture builds the right bundle and no Docker is needed.
The three functions share the asset (different handler strings), so it is built and uploaded once.

Glue: `airlake.zip` holds the `airlake/` package at its root, for `--extra-py-files`.

Both implement CDK's `ILocalBundling`; the Docker image in `BundlingOptions` is only a required
placeholder and is never pulled because local bundling always succeeds or raises. The asset hash is
computed from the sources (not the output), so unit tests that skip bundling
(`aws:cdk:bundling-stacks = []`) still get a stable, content-addressed asset.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, BundlingOutput, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from airlake.settings import REPO_ROOT

LAMBDA_PLATFORMS: Final = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
_IGNORED_DIRS: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache"})
_IGNORED_SUFFIXES: Final = frozenset({".pyc", ".pyo"})


def _source_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if (
            path.is_file()
            and not _IGNORED_DIRS.intersection(path.parts)
            and path.suffix not in _IGNORED_SUFFIXES
        ):
            yield path


def source_hash(roots: Iterable[Path], *, salt: str) -> str:
    """sha256 over relative paths and contents of every source file under `roots`, plus `salt`."""
    digest = hashlib.sha256(salt.encode())
    for root in roots:
        for path in _source_files(root):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))


# jsii passes the BundlingOptions struct positionally when it calls back into Python.
@jsii.implements(ILocalBundling)
class LambdaLocalBundler:
    """Builds the Lambda bundle in `output_dir` with pip, for `python_version` on Linux arm64."""

    def __init__(self, *, python_version: str, requirements: Path) -> None:
        self.python_version = python_version
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        if not self.requirements.is_file():
            raise FileNotFoundError(
                f"{self.requirements} is missing: the Lambda bundle's dependencies come from it"
            )
        out = Path(output_dir)
        _copy_tree(REPO_ROOT / "airlake", out / "airlake")
        _copy_tree(REPO_ROOT / "lambdas", out / "lambdas")
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                *(arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)),
                "--only-binary=:all:", "--implementation", "cp",
                "--python-version", self.python_version,
                "-r", str(self.requirements), "-t", str(out),
            ],
            check=True,
        )  # fmt: skip
        return True


# jsii passes the BundlingOptions struct positionally when it calls back into Python.
@jsii.implements(ILocalBundling)
class DomainZipBundler:
    """Writes `airlake.zip` (the domain package at the zip root) for Glue's `--extra-py-files`."""

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        package = REPO_ROOT / "airlake"
        with zipfile.ZipFile(Path(output_dir) / "airlake.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for path in _source_files(package):
                archive.write(path, str(path.relative_to(REPO_ROOT)))
        return True


def lambda_code(runtime: lambda_.Runtime) -> lambda_.Code:
    """The shared hot-path code asset (domain package + handlers + arm64 dependencies)."""
    requirements = REPO_ROOT / "lambdas" / "requirements.txt"
    python_version = runtime.name.removeprefix("python")
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "lambdas"),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(
            [REPO_ROOT / "airlake", REPO_ROOT / "lambdas"],
            salt=f"{runtime.name}/{'+'.join(LAMBDA_PLATFORMS)}",
        ),
        bundling=BundlingOptions(
            image=runtime.bundling_image,
            local=LambdaLocalBundler(python_version=python_version, requirements=requirements),
        ),
    )


def domain_zip_asset(scope: Construct, id_: str) -> s3_assets.Asset:
    """S3 asset `airlake.zip` for Glue jobs."""
    return s3_assets.Asset(
        scope,
        id_,
        path=str(REPO_ROOT / "airlake"),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash([REPO_ROOT / "airlake"], salt="glue-extra-py-files"),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim"),
            local=DomainZipBundler(),
            output_type=BundlingOutput.ARCHIVED,
        ),
    )
