"""The BFCL loader and AST checker (genstack.evaluation.bfcl)."""

import json
from pathlib import Path

import jsonschema
import pytest

from genstack.agents.calling import Function
from genstack.errors import InvalidParameter
from genstack.evaluation.bfcl import BFCLItem, check_calls, load_bfcl, to_json_schema

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tools" / "bfcl"


def item(category="simple", truth=None):
    truth = truth if truth is not None else [{"math.hypot": {"x": [3], "y": [4], "z": ["", 0]}}]
    return BFCLItem("t", category, [{"role": "user", "content": "?"}], [], truth, {"math_hypot": "math.hypot"})


def test_schema_conversion_maps_bfcl_types_to_json_schema():
    s = to_json_schema({"type": "dict", "properties": {
        "x": {"type": "float", "optional": True}, "t": {"type": "tuple", "items": {"type": "integer"}},
        "a": {"type": "any"}, "d": {"type": "dict"}}, "required": ["x"]})
    assert s["type"] == "object" and s["properties"]["x"] == {"type": "number"}
    assert s["properties"]["t"] == {"type": "array", "items": {"type": "integer"}}
    assert s["properties"]["a"] == {} and s["properties"]["d"] == {"type": "object", "properties": {}}
    jsonschema.Draft202012Validator.check_schema(s)


def test_checker_accepts_what_bfcl_accepts_and_nothing_else():
    it = item()
    assert check_calls(it, [("math_hypot", {"x": 3, "y": 4})])  # underscored name, optional left out
    assert check_calls(it, [("math_hypot", {"x": 3.0, "y": 4, "z": 0})])  # int where a float is given
    assert not check_calls(it, [("math_hypot", {"x": 3})])  # a required argument missing
    assert not check_calls(it, [("math_hypot", {"x": 3, "y": 5})])  # a wrong value
    assert not check_calls(it, [("math_hypot", {"x": 3, "y": 4, "w": 1})])  # an unknown argument
    assert not check_calls(it, [("other", {"x": 3, "y": 4})])
    assert not check_calls(it, [])
    s = item(truth=[{"f": {"city": ["San Francisco, CA"], "flag": [True]}}])
    assert check_calls(s, [("f", {"city": "san francisco ca", "flag": True})])  # case and punctuation
    assert not check_calls(s, [("f", {"city": "San Francisco", "flag": True})])
    assert not check_calls(s, [("f", {"city": "San Francisco, CA", "flag": 1})])  # 1 is not True


def test_parallel_calls_match_in_any_order_and_irrelevance_wants_none():
    p = item("parallel", [{"f": {"n": [1]}}, {"f": {"n": [2]}}])
    assert check_calls(p, [("f", {"n": 2}), ("f", {"n": 1})])
    assert not check_calls(p, [("f", {"n": 1}), ("f", {"n": 1})])
    irr = item("irrelevance", [])
    assert check_calls(irr, []) and not check_calls(irr, [("f", {})])


def test_an_unknown_category_or_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidParameter, match="category must be one of"):
        load_bfcl(tmp_path, "live")
    with pytest.raises(InvalidParameter, match="does not exist"):
        load_bfcl(tmp_path, "simple")


def _first_acceptable(args: dict) -> dict:
    """One right call from BFCL's lists of acceptable values (nested dicts, also inside lists, hold such lists)."""
    def pick(v):
        if isinstance(v, dict):
            return _first_acceptable(v)
        if isinstance(v, list):
            return [pick(e) for e in v]
        return v
    out = {}
    for k, allowed in args.items():
        v = pick(allowed[0] if isinstance(allowed, list) else allowed)
        if v != "":
            out[k] = v
    return out


@pytest.mark.parametrize("category", ["simple", "multiple", "parallel"])
def test_the_real_answers_pass_their_own_check_and_the_tools_are_valid_functions(category):
    if not DATA.is_dir():
        pytest.skip(f"BFCL data not found at {DATA} (see ../shared/data/README.md)")
    items = load_bfcl(DATA, category)
    assert len(items) >= 200
    for it in items:
        for t in it.tools:
            Function.from_openai(t)  # every converted schema is one genstack accepts
        calls = []
        for expected in it.ground_truth:
            (name, args), = expected.items()
            calls.append((name.replace(".", "_"), _first_acceptable(args)))
        assert check_calls(it, calls), it.id
        assert not check_calls(it, calls[:-1]), it.id
    json.dumps([it.tools for it in items])
