"""A task from any JSONL file, without code: ``--task-file FILE``.

Each line holds the question, the choices and the index of the right one.
Field names and the prompt format are read from an optional first line
``{"genstack_task": {...}}`` or default to the llm-foundry layout::

    {"genstack_task": {"name": "capitals", "prompt": "Question: {query}\\nAnswer:",
                       "choices": "choices", "gold": "gold"}}
    {"query": "What is the capital of France?", "choices": ["Paris", "Rome"], "gold": 0}

``prompt`` is a format string over the line's fields.
"""

from pathlib import Path

from ...errors import InvalidParameter
from ...prompts.templates import _fields, _render
from .common import Example, Task, read_jsonl


def file_task(path: str | Path) -> Task:
    path = Path(path)
    if not path.is_file():
        raise InvalidParameter(f"task file not found: {path}")
    rows = read_jsonl(path)
    spec = {}
    if rows and "genstack_task" in rows[0]:
        spec = rows.pop(0)["genstack_task"]
    fmt = spec.get("prompt", "{query}\nAnswer:")
    ckey, gkey = spec.get("choices", "choices"), spec.get("gold", "gold")
    try:
        needed = _fields(fmt, str(path))
    except Exception as exc:
        raise InvalidParameter(str(exc)) from None
    examples = []
    for n, r in enumerate(rows, 1):
        missing = (needed | {ckey, gkey}) - r.keys()
        if missing:
            raise InvalidParameter(f"{path} example {n} lacks field(s): {', '.join(sorted(missing))}")
        choices, gold = r[ckey], r[gkey]
        if not (isinstance(choices, list) and len(choices) >= 2 and all(isinstance(c, str) for c in choices)):
            raise InvalidParameter(f"{path} example {n}: '{ckey}' must be a list of at least two strings")
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise InvalidParameter(f"{path} example {n}: '{gkey}' must be the index of the right choice")
        examples.append(Example(_render(fmt, r), choices, gold))
    if not examples:
        raise InvalidParameter(f"{path} holds no examples")
    return Task(spec.get("name", path.stem), "mc", lambda _p: examples, path.name, prompt=lambda ex: ex.context,
                description=f"from {path}", preset=examples)
