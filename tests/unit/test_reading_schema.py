"""The published JSON Schema, the pydantic model and the decoder agree on the contract."""

from __future__ import annotations

import json

import jsonschema
import orjson
import pydantic
import pytest

from airlake.contract import Reading, decode
from airlake.contract.model import SCHEMA_PATH, ReadingV1, json_schema, render_schema
from tests.unit.test_decoder import CASES, GOOD, RECEIVED_MS, channels, with_

# Rules a JSON Schema cannot express: they depend on arrival time, byte size or batching.
NOT_EXPRESSIBLE = {
    "multi_line",
    "ts_in_future",
    "too_large",
    "batch_too_large",
    "empty",
    "not_utf8",
    "invalid_json",
    "non_finite",
    "not_an_object",
    "invalid_timestamp",
    "ts_too_old",
}


def test_the_published_schema_file_is_generated_from_the_model() -> None:
    assert SCHEMA_PATH.read_text() == render_schema(), "run: python -m airlake.contract.model"


def test_the_published_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize(
    "data",
    [orjson.dumps(GOOD), channels(humidity=100.0), with_(ts=1_789_999_200_000), with_(firmware=None)],
)
def test_documents_the_decoder_accepts_pass_the_schema_and_the_model(data: bytes) -> None:
    assert isinstance(decode(data, received_ms=RECEIVED_MS)[0], Reading)
    jsonschema.validate(json.loads(data), json.loads(SCHEMA_PATH.read_text()))
    ReadingV1.model_validate_json(data)


# JSON Schema counts 42.0 as an integer; the decoder and the model insist on an integer token.
EXPRESSIBLE = [case for case in CASES if case[2].value not in NOT_EXPRESSIBLE and case[0] != "float seq"]


@pytest.mark.parametrize(("case", "data", "reason"), EXPRESSIBLE, ids=[c[0] for c in EXPRESSIBLE])
def test_documents_the_decoder_rejects_fail_the_model_and_the_schema(
    case: str, data: bytes, reason: object
) -> None:
    with pytest.raises(pydantic.ValidationError):
        ReadingV1.model_validate_json(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(data), json.loads(SCHEMA_PATH.read_text()))
