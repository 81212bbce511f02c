"""Shared pieces of the reliability tests: the bad-input corpus, the Spark session, small fakes.

The corpus (tests/reliability/corpus/) is data: one payload file per case and `manifest.json`
with each case's expected outcome per element (`accepted` with its idempotency key, or
`quarantined` with its reason code). Every test that replays it goes through `load_corpus()`.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True, slots=True)
class Expected:
    outcome: str  # "accepted" | "quarantined"
    reason: str | None = None
    key: tuple[str, int, int] | None = None


@dataclass(frozen=True, slots=True)
class CorpusCase:
    id: str
    category: str
    description: str
    payload: bytes
    expect: tuple[Expected, ...]
    known_issue: str | None = None

    @property
    def accepted_keys(self) -> list[tuple[str, int, int]]:
        return [e.key for e in self.expect if e.outcome == "accepted" and e.key is not None]

    @property
    def quarantine_reasons(self) -> list[str]:
        return [e.reason for e in self.expect if e.outcome == "quarantined" and e.reason is not None]


@dataclass(frozen=True, slots=True)
class Corpus:
    received_ms: int
    cases: tuple[CorpusCase, ...]


def _expected(doc: dict[str, Any]) -> Expected:
    key = doc.get("key")
    return Expected(doc["outcome"], doc.get("reason"), None if key is None else (key[0], key[1], key[2]))


def load_corpus() -> Corpus:
    manifest = json.loads((CORPUS_DIR / "manifest.json").read_text())
    cases = []
    for entry in manifest["cases"]:
        data = (CORPUS_DIR / entry["payload"]).read_bytes()
        if entry["payload"].endswith(".gz"):
            data = gzip.decompress(data)
        assert len(data) == entry["bytes"], f"{entry['id']}: payload file does not match the manifest"
        cases.append(
            CorpusCase(
                entry["id"],
                entry["category"],
                entry["description"],
                data,
                tuple(_expected(e) for e in entry["expect"]),
                entry.get("known_issue"),
            )
        )
    return Corpus(int(manifest["received_ms"]), tuple(cases))


CORPUS = load_corpus()


@pytest.fixture(scope="session")
def spark() -> Any:
    """The one local SparkSession of the test run (getOrCreate: shared with tests/spark)."""
    from pyspark.sql import SparkSession

    from airlake.batch.session import configure

    session = (
        SparkSession.builder.master("local[2]")
        .appName("airlake-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.adaptive.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    configure(session)
    return session
