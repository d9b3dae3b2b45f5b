"""The Berkeley Function Calling Leaderboard (BFCL v4) "simple", "multiple", "parallel" and
"irrelevance" categories: the question files, their functions as JSON Schema, and the AST checker.

Each item is a user turn and the functions the model may call; the possible
answer maps each expected call's function name to every argument's acceptable
values (``""`` in a list: the argument may be left out). A call is correct
when it names the right function, gives every required argument, no unknown
argument, and each value is one of the acceptable ones, compared as BFCL's own
checker does (``bfcl_eval/eval_checker/ast_eval/ast_checker.py``): strings
case-insensitively without spaces and ``,./-_*^`` punctuation, an integer is
accepted where a float is expected, lists and dicts element by element. For
parallel items the calls may come in any order; for irrelevance items the
right output is no call.

The function names hold dots (``math.factorial``); OpenAI-style APIs allow only
``[A-Za-z0-9_-]``, so, as BFCL does for those models, dots become underscores
for every system measured and the checker maps them back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter

__all__ = ["BFCLItem", "load_bfcl", "to_json_schema", "check_calls", "CATEGORIES"]

CATEGORIES = {"simple": "BFCL_v4_simple_python.json", "multiple": "BFCL_v4_multiple.json",
              "parallel": "BFCL_v4_parallel.json", "irrelevance": "BFCL_v4_irrelevance.json"}
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer", "bool": "boolean",
          "list": "array", "str": "string"}


@dataclass
class BFCLItem:
    id: str
    category: str
    messages: list[dict]
    #: OpenAI-style tools (names with dots replaced by underscores)
    tools: list[dict]
    #: the possible answer: [{function name: {argument: [acceptable values]}}]; empty for irrelevance
    ground_truth: list[dict]
    #: underscored name -> the original name
    names: dict[str, str]


def to_json_schema(schema: Any) -> Any:
    """BFCL's JSON-Schema-like parameters as JSON Schema: ``dict`` → object, ``float`` → number,
    ``tuple`` → array, ``any`` → no type; the non-standard ``optional`` key dropped."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k == "optional":
            continue
        if k == "type":
            if v == "any":
                continue
            out[k] = [_TYPES.get(t, t) for t in v] if isinstance(v, list) else _TYPES.get(v, v)
        elif k in ("properties", "$defs", "definitions"):
            out[k] = {name: to_json_schema(s) for name, s in v.items()}
        elif k in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[k] = to_json_schema(v)
        else:
            out[k] = v
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
    return out


def load_bfcl(folder: str | Path, category: str, limit: int | None = None) -> list[BFCLItem]:
    folder = Path(folder)
    if category not in CATEGORIES:
        raise InvalidParameter(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
    qpath = folder / CATEGORIES[category]
    if not qpath.is_file():
        raise InvalidParameter(f"{qpath} does not exist (the BFCL question files)")
    answers: dict[str, list] = {}
    apath = folder / "possible_answer" / CATEGORIES[category]
    if category != "irrelevance":
        for line in apath.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
    items = []
    for line in qpath.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        names = {f["name"].replace(".", "_"): f["name"] for f in row["function"]}
        tools = [{"type": "function", "function": {"name": f["name"].replace(".", "_"),
                                                   "description": f.get("description", ""),
                                                   "parameters": to_json_schema(f["parameters"])}}
                 for f in row["function"]]
        items.append(BFCLItem(row["id"], category, row["question"][0], tools, answers.get(row["id"], []), names))
        if limit is not None and len(items) >= limit:
            break
    return items


def _norm(s: str) -> str:
    return re.sub(r"[ ,./\-_*^]", "", s).lower()


def _value_ok(value: Any, allowed: list) -> bool:
    for a in allowed:
        if a == "" and value == "":
            return True
        if isinstance(a, str) and isinstance(value, str):
            if _norm(a) == _norm(value):
                return True
        elif isinstance(a, bool) or isinstance(value, bool):
            if a is value:
                return True
        elif isinstance(a, (int, float)) and isinstance(value, (int, float)):
            if float(a) == float(value):
                return True
        elif isinstance(a, list) and isinstance(value, list):
            if len(a) == len(value) and all(_value_ok(v, [x]) for v, x in zip(value, a)):
                return True
        elif isinstance(a, dict) and isinstance(value, dict):
            if set(value) <= set(a) and all(_value_ok(value.get(k, ""), a[k] if isinstance(a[k], list) else [a[k]])
                                            for k in a):
                return True
    return False


def _call_ok(name: str, arguments: dict, expected: dict, item: BFCLItem) -> bool:
    (fname, args), = expected.items()
    if item.names.get(name, name) != fname:
        return False
    if not isinstance(arguments, dict) or set(arguments) - set(args):
        return False
    for arg, allowed in args.items():
        if arg not in arguments:
            if "" not in allowed:
                return False
        elif not _value_ok(arguments[arg], allowed):
            return False
    return True


def check_calls(item: BFCLItem, calls: list[tuple[str, dict]]) -> bool:
    """Whether ``calls`` ([(name, arguments)]) are a right answer to ``item``."""
    if item.category == "irrelevance":
        return not calls
    expected = item.ground_truth
    if len(calls) != len(expected):
        return False
    if item.category != "parallel":
        return all(_call_ok(n, a, e, item) for (n, a), e in zip(calls, expected))
    left = list(expected)
    for name, args in calls:
        match = next((e for e in left if _call_ok(name, args, e, item)), None)
        if match is None:
            return False
        left.remove(match)
    return True
