"""Schema-constrained generation on the real model ends, for the schema shapes people write (no bounds)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SHAPES = {
    "free string": {"type": "object", "properties": {"answer": {"type": "string"}}},
    "nested object": {"type": "object", "properties": {"name": {"type": "string"}, "address": {
        "type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]}}, "required": ["name", "address"]},
    "array": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["tags"]},
    "enum": {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]},
                                              "reason": {"type": "string"}}, "required": ["sentiment", "reason"]},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_generate_with_an_unbounded_schema_finishes(shape, tmp_path):
    from jsonschema import validate

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SHAPES[shape]))
    p = subprocess.run([sys.executable, "-m", "genstack", "generate", "Describe Paris, France, in JSON.",
                        "--json-schema", str(schema), "--greedy", "--max-tokens", "600"],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    validate(json.loads(p.stdout), SHAPES[shape])
