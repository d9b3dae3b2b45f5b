import json

import pytest

from genstack.errors import InvalidParameter
from genstack.generation import GenerationRequest
from genstack.models.fake import FakeChatModel
from genstack.prompts import StructuredOutputError, check_schema, load_schema, parse_json
from genstack.rag.tasks import extract

pytestmark = pytest.mark.unit

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def test_schema_checks(tmp_path):
    assert check_schema(SCHEMA) is SCHEMA
    with pytest.raises(InvalidParameter, match="not a valid JSON Schema"):
        check_schema({"type": "banana"})
    with pytest.raises(InvalidParameter, match="must be a JSON object"):
        check_schema([1])
    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidParameter, match="not valid JSON"):
        load_schema(bad)
    with pytest.raises(InvalidParameter, match="not found"):
        load_schema(tmp_path / "missing.json")


def test_parse_json_validates():
    assert parse_json('{"name": "Bo", "age": 3}', SCHEMA) == {"name": "Bo", "age": 3}
    with pytest.raises(StructuredOutputError, match="at age"):
        parse_json('{"name": "Bo", "age": "three"}', SCHEMA)
    with pytest.raises(StructuredOutputError, match="not valid JSON"):
        parse_json('{"name": "Bo", "ag', SCHEMA)
    # a raw newline or tab inside a string (a grammar can let one through) is kept, not an error
    assert parse_json('{"name": "Bo\n\tJr", "age": 3}', SCHEMA)["name"] == "Bo\n\tJr"


def test_request_carries_the_schema():
    r = GenerationRequest(prompt="x", json_schema=SCHEMA)
    assert r.json_schema == SCHEMA
    with pytest.raises(InvalidParameter):
        GenerationRequest(prompt="x", json_schema="{}")  # type: ignore[arg-type]


def test_extract_returns_valid_json_or_fails_clearly():
    good = FakeChatModel(['{"name": "Maria", "age": 34}'])
    value, prompt = extract("Maria is 34.", SCHEMA, good)
    assert value == {"name": "Maria", "age": 34}
    assert json.dumps(SCHEMA) in prompt and good.requests[-1].json_schema == SCHEMA
    with pytest.raises(StructuredOutputError):
        extract("Maria is 34.", SCHEMA, FakeChatModel(['{"name": "Maria"}']))


def test_free_strings_and_arrays_get_bounds_and_set_bounds_are_kept():
    from genstack.prompts.structured import MAX_ITEMS, MAX_STRING, bounded

    schema = {"type": "object", "properties": {
        "answer": {"type": "string"},
        "short": {"type": "string", "maxLength": 5},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "few": {"type": "array", "maxItems": 2, "items": {"type": ["string", "null"]}},
        "nested": {"type": "object", "properties": {"city": {"type": "string", "minLength": 400}}},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    }, "$defs": {"x": {"type": "string"}}}
    b = bounded(schema)
    p = b["properties"]
    assert p["answer"]["maxLength"] == MAX_STRING and p["short"]["maxLength"] == 5
    assert "maxLength" not in p["kind"]
    assert p["tags"]["maxItems"] == MAX_ITEMS and p["tags"]["items"]["maxLength"] == MAX_STRING
    assert p["few"]["maxItems"] == 2 and p["few"]["items"]["maxLength"] == MAX_STRING
    assert p["nested"]["properties"]["city"]["maxLength"] == 400  # never below the schema's own minimum
    assert p["either"]["anyOf"][0]["maxLength"] == MAX_STRING and "maxLength" not in p["either"]["anyOf"][1]
    assert b["$defs"]["x"]["maxLength"] == MAX_STRING
    assert "maxLength" not in schema["properties"]["answer"]  # the caller's schema is not changed
