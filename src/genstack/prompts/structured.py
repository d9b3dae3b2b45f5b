"""Structured output: JSON that is valid for a JSON Schema.

The schema is checked before any generation (``load_schema``); backends that
can constrain decoding (llama.cpp, with a grammar built from the schema) only
produce text the schema admits, and :func:`parse_json` validates the result
in every case, so a remote backend or a run cut short by ``max_tokens`` is
reported instead of returning broken JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._files import read_user_text
from ..errors import GenstackError, InvalidParameter

__all__ = ["load_schema", "check_schema", "parse_json", "bounded", "StructuredOutputError", "MAX_STRING", "MAX_ITEMS"]

#: bounds given to free strings and arrays of a schema before it becomes a grammar: a small model
#: asked for an unbounded string or list can fill it forever ("population", "population", …) and
#: never reach the closing brace. Bounds the schema sets itself are kept.
MAX_STRING = 300
MAX_ITEMS = 8

_NESTED = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SINGLE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "unevaluatedItems",
           "unevaluatedProperties", "additionalItems")


def bounded(schema: Any, max_string: int = MAX_STRING, max_items: int = MAX_ITEMS) -> Any:
    """A copy of ``schema`` in which every string without a length bound (and without ``enum``,
    ``const``, ``pattern`` or ``format``) gets ``maxLength`` and every array without ``maxItems``
    gets one, so constrained generation always ends. The output is still validated against the
    original schema."""
    if isinstance(schema, list):
        return [bounded(x, max_string, max_items) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _NESTED:
        if isinstance(out.get(key), dict):
            out[key] = {k: bounded(v, max_string, max_items) for k, v in out[key].items()}
    for key in _LISTS:
        if isinstance(out.get(key), list):
            out[key] = [bounded(v, max_string, max_items) for v in out[key]]
    for key in _SINGLE:
        if isinstance(out.get(key), (dict, list)):
            out[key] = bounded(out[key], max_string, max_items)
    types = out.get("type")
    types = types if isinstance(types, list) else [types]
    free = not any(k in out for k in ("enum", "const", "pattern", "format", "maxLength"))
    if "string" in types and free:
        out["maxLength"] = max(int(out.get("minLength", 0)), max_string)
    if "array" in types and "maxItems" not in out:
        out["maxItems"] = max(int(out.get("minItems", 0)), max_items)
    return out


class StructuredOutputError(GenstackError):
    exit_code = 1


def check_schema(schema: Any, where: str = "the schema") -> dict:
    if not isinstance(schema, dict):
        raise InvalidParameter(f"{where} must be a JSON object, got {type(schema).__name__}")
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path)
        raise InvalidParameter(f"{where} is not a valid JSON Schema: {exc.message}" + (f" (at {path})" if path else "")) from None
    return schema


def load_schema(path: str | Path) -> dict:
    p = Path(path)
    text = read_user_text(p, "schema file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"{p} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return check_schema(data, str(p))


def parse_json(text: str, schema: dict | None = None) -> Any:
    """Parse ``text`` as JSON and validate it against ``schema``; raise StructuredOutputError if it fails."""
    try:  # strict=False: a raw newline or tab inside a string (which grammars can let through) is kept
        value = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(f"the model's output is not valid JSON ({exc.msg} at character {exc.pos}); "
                                    "if it was cut short, raise --max-tokens") from None
    if schema is not None:
        from jsonschema import ValidationError, validate

        try:
            validate(value, schema)
        except ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise StructuredOutputError(f"the model's output does not match the schema at {path}: {exc.message}") from None
    return value
