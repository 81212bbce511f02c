"""No credentials in the repository; the local runtime talks only to its own loopback endpoint."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from airlake.local import endpoint

ROOT = Path(__file__).resolve().parents[2]
# AWS access key ids (long-term AKIA, temporary ASIA), secret keys assigned in config or code,
# and PEM private keys. Built from parts so this file does not match itself.
PATTERNS = {
    "aws_access_key_id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "aws_secret_access_key": re.compile(
        rb"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "private_key": re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?" + b"PRIVATE KEY-----"),
}


def findings(data: bytes) -> list[str]:
    return sorted(name for name, pattern in PATTERNS.items() if pattern.search(data))


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_the_scanner_recognises_each_kind_of_credential() -> None:
    # Given planted (fake, well-formed) credentials, assembled at run time
    key_id = b"AKIA" + b"Z7Q2" * 4
    secret = b"aws_secret_access_key = " + b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz" + b"EXAMPLE0"
    pem = b"-----BEGIN RSA " + b"PRIVATE KEY-----\nMIIE\n"
    # Then each is found, and the local runtime's dummy values are not mistaken for one
    assert findings(key_id) == ["aws_access_key_id"]
    assert findings(secret) == ["aws_secret_access_key"]
    assert findings(pem) == ["private_key"]
    assert findings(repr(endpoint.aws_env("http://127.0.0.1:4566")).encode()) == []


def test_no_tracked_file_holds_a_credential() -> None:
    files = tracked_files()
    assert len(files) > 50  # the scan really ran over the repository
    leaks = {}
    for path in files:
        if path.is_file():
            found = findings(path.read_bytes())
            if found:
                leaks[str(path.relative_to(ROOT))] = found
    assert leaks == {}


@pytest.mark.parametrize(
    "url",
    [
        "http://0.0.0.0:4566",  # every interface, not loopback
        "http://localhost.attacker.example:4566",  # a name that starts like localhost
        "http://127.0.0.1.nip.io:4566",  # a public DNS name resolving to loopback today
        "https://kinesis.eu-west-1.amazonaws.com",
        "https://sts.amazonaws.com",
        "",
    ],
)
def test_the_local_runtime_refuses_endpoints_that_only_look_local(url: str) -> None:
    with pytest.raises(endpoint.UnsafeEndpointError, match="loopback"):
        endpoint.aws_env(url)
    with pytest.raises(endpoint.UnsafeEndpointError):
        endpoint.start(
            port=1,
            host=url.rsplit("//", maxsplit=1)[-1].split(":", maxsplit=1)[0] or "0.0.0.0",
            timeout_s=0.1,
        )


def test_activating_the_local_endpoint_drops_real_aws_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a shell configured for a real account
    for name, value in {"AWS_PROFILE": "prod-admin", "AWS_SESSION_TOKEN": "token", "AWS_ROLE_ARN": "arn:x",
                        "AWS_ACCESS_KEY_ID": "real", "AWS_SECRET_ACCESS_KEY": "real"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)  # so monkeypatch restores them after the test
    # When the local endpoint is activated
    endpoint.activate("http://127.0.0.1:4566")
    # Then only dummy keys pointed at loopback remain
    assert [n for n in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN") if n in os.environ] == []
    assert (
        os.environ["AWS_ENDPOINT_URL"],
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
    ) == (
        "http://127.0.0.1:4566",
        endpoint.DUMMY_KEY,
        endpoint.DUMMY_KEY,
    )
