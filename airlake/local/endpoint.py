"""The embedded AWS endpoint: moto's server in a child process, on loopback only.

A child process (not a thread) keeps moto's request handling off the interpreter that runs the
handlers and Spark, so the two use both cores. The endpoint is described by a small JSON file in
the state directory, so `local up` can leave it running and `local down` can stop it.

Credentials are fixed dummy values, used only against this loopback endpoint: `aws_env()` refuses
any endpoint URL that is not a loopback address, so a local run can never write to real AWS.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

LOCAL_REGION: Final = "us-east-1"
LOCAL_ACCOUNT: Final = "123456789012"  # moto's default account
DUMMY_KEY: Final = "airlake-local-only"  # not a credential: moto accepts any key
ENDPOINT_FILE: Final = "endpoint.json"
# Variables that could point boto3 at a real account; cleared for a local run.
_REAL_AWS_VARIABLES: Final = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class UnsafeEndpointError(RuntimeError):
    """The local runtime was pointed at something that is not its own loopback endpoint."""


def assert_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise UnsafeEndpointError(
        f"refusing to use {url!r}: the local runtime only talks to a loopback endpoint "
        "(127.0.0.0/8, ::1 or localhost), never to real AWS"
    )


def aws_env(url: str) -> dict[str, str]:
    """Environment that points boto3 (and the AWS CLI) at the local endpoint with dummy keys."""
    assert_loopback(url)
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }


def activate(url: str) -> None:
    """Point this process's boto3 at the endpoint (and away from any real account)."""
    for name in _REAL_AWS_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(aws_env(url))


@dataclass(frozen=True, slots=True)
class LocalEndpoint:
    url: str
    pid: int

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return _listening(self.url)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    port: int | None = None, *, host: str = "127.0.0.1", timeout_s: float = 60.0, log_file: Path | None = None
) -> LocalEndpoint:
    """Start moto's server in a child process and wait until it answers."""
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    assert_loopback(url)
    log = log_file.open("ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "airlake.local.server", "--host", host, "--port", str(port)],
        stdout=log,
        stderr=log,
        start_new_session=True,  # survives the parent for `local up`
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local AWS endpoint exited with code {process.returncode}")
        if _listening(url):
            return LocalEndpoint(url, process.pid)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the local AWS endpoint did not answer on {url} within {timeout_s:.0f} s")


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            return True
    except OSError:
        return False


def save(endpoint: LocalEndpoint, state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / ENDPOINT_FILE
    path.write_text(json.dumps({"url": endpoint.url, "pid": endpoint.pid}))
    return path


def load(state_dir: Path) -> LocalEndpoint | None:
    path = state_dir / ENDPOINT_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return LocalEndpoint(str(data["url"]), int(data["pid"]))
