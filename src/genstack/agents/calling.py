"""OpenAI-style function calling on any genstack model.

The model sees the functions in its system prompt (a template kept as data,
``prompts/data/tools.toml``) and calls one by answering
``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` (a JSON array of such
objects for parallel calls), the format Hermes- and Qwen-style models are
trained on. How a call is produced:

* ``tool_choice="auto"``: the model writes freely and so decides itself. Its
  text is held back only while it could still be the start of ``<tool_call>``;
  once it is plain text it streams as an answer. When it does open a call, the
  call is generated again from there under the JSON Schema of the calls, which
  backends that declare ``json_schema`` enforce (llama.cpp: a grammar), so every
  call parses and validates against its function's parameters. This is the
  "lazy grammar" of llama.cpp's own server: free text costs nothing extra.
  Small models trained on little tool use almost never open a call by
  themselves (SmolLM2-135M: 0 of 120 BFCL items), although the probability
  they give ``<tool_call>`` as the opening is clearly higher when a function
  fits the request. So a model may declare a calibrated ``tool_call_threshold``
  (a log-probability; see benchmarks/bfcl.py --calibrate): when
  log P(``<tool_call>`` | prompt) reaches it, the call is made, under the
  schema; otherwise the model writes freely as above.
* ``"required"`` or a named function: the call is generated under the schema
  at once (only that function's, when named).
* ``"none"``: a plain answer; the functions are not shown.

A backend that does function calling itself (capability ``native_tools``: a
remote OpenAI-compatible server) gets the tools and the history in OpenAI's
format instead, and its calls are validated here against the functions'
schemas like generated ones (:func:`_native_turn`).

Tool results come back as ``role: "tool"`` messages. Templates of small chat
models know only system/user/assistant turns, so an assistant turn with calls
is rendered as its ``<tool_call>`` text and tool results as a user turn of
``<tool_response>`` blocks; consecutive turns of one role are merged, which
keeps templates that insist on alternating roles (Gemma's) working.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from ..errors import GenstackError, InvalidParameter
from ..generation import Completion, Message, SamplingParams

__all__ = ["Function", "ToolCall", "ToolTurn", "ToolCallError", "call_schema", "tool_messages", "respond",
           "call_logprob", "OPEN", "CLOSE", "MODEL_DEFAULT"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: at most this many calls in one parallel turn
MAX_PARALLEL = 8
#: ``respond(threshold=MODEL_DEFAULT)``: the model's declared ``tool_call_threshold``
MODEL_DEFAULT = "model"


class ToolCallError(GenstackError):
    """The model's call could not be read as a call of one of the functions."""
    exit_code = 1


@dataclass(frozen=True)
class Function:
    """A function the model may call: a name, what it does, and a JSON Schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidParameter(f"function names are 1 to 64 letters, digits, '_', '-' or '.', got {self.name!r}")
        if not isinstance(self.description, str):
            raise InvalidParameter(f"the description of function {self.name!r} must be a string")
        from ..prompts.structured import check_schema

        check_schema(self.parameters, f"the parameters of function {self.name!r}")
        if self.parameters.get("type", "object") != "object":
            raise InvalidParameter(f"the parameters of function {self.name!r} must be a JSON Schema of type object")

    @classmethod
    def from_openai(cls, tool: Any, where: str = "tools") -> "Function":
        """A function from OpenAI's ``{"type": "function", "function": {"name", "description", "parameters"}}``."""
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
            raise InvalidParameter(f"{where} must be an object {{\"type\": \"function\", \"function\": {{...}}}}")
        f = tool["function"]
        params = f.get("parameters")
        return cls(f.get("name"), f.get("description") or "",
                   params if params is not None else {"type": "object", "properties": {}})

    def to_openai(self) -> dict:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:24])

    def to_openai(self) -> dict:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)}}

    def text(self) -> str:
        return json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)


@dataclass
class ToolTurn:
    """One assistant turn: either ``content`` (an answer) or ``calls``."""

    content: str
    calls: list[ToolCall]
    completion: Completion
    #: the exact prompt text the model saw (the call pass's, when a call was made)
    prompt: str | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.calls else self.completion.finish_reason

    @property
    def usage(self):
        return self.completion.usage

    def to_message(self) -> dict:
        """The turn as an OpenAI assistant message (what a client sends back with the results)."""
        if self.calls:
            return {"role": "assistant", "content": None, "tool_calls": [c.to_openai() for c in self.calls]}
        return {"role": "assistant", "content": self.content}


def call_schema(functions: Sequence[Function], parallel: bool = True) -> dict:
    """The JSON Schema of what a call turn may hold: one call of one of ``functions``, or (``parallel``)
    a list of up to MAX_PARALLEL calls. ``name`` comes first, so the model picks the function before
    writing its arguments."""
    if not functions:
        raise InvalidParameter("no functions to call")
    one = [{"type": "object",
            "properties": {"name": {"const": f.name}, "arguments": f.parameters},
            "required": ["name", "arguments"], "additionalProperties": False} for f in functions]
    call = one[0] if len(one) == 1 else {"anyOf": one}
    if not parallel:
        return call
    return {"anyOf": [call, {"type": "array", "items": call, "minItems": 2, "maxItems": MAX_PARALLEL}]}


def parse_calls(text: str, functions: Sequence[Function], parallel: bool = True, strict: bool = True) -> list[ToolCall]:
    """The calls in a call turn's JSON (without the tags), validated against the functions' schemas;
    ``strict=False`` only checks the shape (the agent loop refuses unknown names and bad arguments
    itself, as results the model sees)."""
    from ..prompts.structured import StructuredOutputError, parse_json

    body = text.strip()
    if body.endswith(CLOSE):
        body = body[: -len(CLOSE)].rstrip()
    shape = {"type": "object", "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
             "required": ["name", "arguments"]}
    schema = call_schema(functions, parallel) if strict else {"anyOf": [shape, {"type": "array", "items": shape,
                                                                                  "minItems": 1}]}
    try:
        value = parse_json(body, schema)
    except StructuredOutputError as exc:
        raise ToolCallError(f"the model's tool call is not a valid call of the given functions: {exc}") from None
    items = value if isinstance(value, list) else [value]
    return [ToolCall(item["name"], item["arguments"]) for item in items]


def _tools_block(functions: Sequence[Function]) -> str:
    return "\n".join(json.dumps(f.to_openai()["function"], ensure_ascii=False) for f in functions)


def tool_messages(messages: Sequence[Any], functions: Sequence[Function] = (), template=None) -> list[Message]:
    """Chat messages a model can read, from OpenAI-style messages (dicts or Messages) that may hold
    assistant ``tool_calls`` and ``role: "tool"`` results; ``functions`` (when given) are described in
    the system turn, using ``template`` (default: the ``tools.hermes`` template)."""
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            turns.append((m.role, m.content))
            continue
        if not isinstance(m, dict):
            raise InvalidParameter(f"messages[{i}] is not a chat message: {m!r}")
        role = m.get("role")
        content = m.get("content") or ""
        if role == "developer":
            role = "system"
        if role == "tool":
            name = m.get("name") or m.get("tool_call_id") or "tool"
            payload = json.dumps({"name": name, "content": content}, ensure_ascii=False)
            turns.append(("user", f"<tool_response>\n{payload}\n</tool_response>"))
        elif role == "assistant" and m.get("tool_calls"):
            calls = [_call_text(c, i) for c in m["tool_calls"]]
            text = f"{OPEN}{calls[0]}{CLOSE}" if len(calls) == 1 else f"{OPEN}[{', '.join(calls)}]{CLOSE}"
            turns.append(("assistant", (content + "\n" if content else "") + text))
        elif role in ("system", "user", "assistant"):
            turns.append((role, content))
        else:
            raise InvalidParameter(f"messages[{i}].role must be system, user, assistant or tool, got {role!r}")
    if functions:
        from ..prompts.templates import load_templates

        t = template or load_templates().get("tools.hermes")
        system = "\n\n".join(c for r, c in turns if r == "system")
        rendered = t.render(tools=_tools_block(functions), system=system)
        turns = [("system", rendered[0].content.strip())] + [(r, c) for r, c in turns if r != "system"]
    merged: list[tuple[str, str]] = []
    for role, content in turns:
        if merged and merged[-1][0] == role and role != "system":
            merged[-1] = (role, merged[-1][1] + "\n\n" + content)
        else:
            merged.append((role, content))
    return [Message(r, c) for r, c in merged]


class _BadCall(ValueError):
    """An OpenAI tool call without a function name (``name`` None) or with arguments that are not JSON."""

    def __init__(self, name: str | None):
        super().__init__(name)
        self.name = name


def _call_parts(call: Any) -> tuple[str, Any]:
    """(function name, arguments) of an OpenAI tool call, the arguments decoded when sent as a string."""
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _BadCall(None)
    args = fn.get("arguments") or "{}"
    try:
        return fn["name"], json.loads(args) if isinstance(args, str) else args
    except json.JSONDecodeError:
        raise _BadCall(fn["name"]) from None


def _call_text(call: Any, i: int) -> str:
    try:
        name, args = _call_parts(call)
    except _BadCall as bad:
        if bad.name is None:
            raise InvalidParameter(f"messages[{i}].tool_calls must hold {{\"function\": {{\"name\", \"arguments\"}}}} objects") from None
        raise InvalidParameter(f"messages[{i}].tool_calls: the arguments of {bad.name!r} are not valid JSON") from None
    return json.dumps({"name": name, "arguments": args}, ensure_ascii=False)


def _choice(tool_choice: Any, functions: Sequence[Function]) -> tuple[str, list[Function]]:
    """("auto" | "required" | "none", the functions the call may use)."""
    if tool_choice in (None, "auto"):
        return "auto", list(functions)
    if tool_choice in ("required", "none"):
        return tool_choice, list(functions)
    if isinstance(tool_choice, dict) and isinstance(tool_choice.get("function"), dict):
        name = tool_choice["function"].get("name")
        named = [f for f in functions if f.name == name]
        if not named:
            raise InvalidParameter(f"tool_choice names {name!r}, which is not one of the tools")
        return "required", named
    raise InvalidParameter("tool_choice must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": …}}")


def respond(model, messages: Sequence[Any], functions: Sequence[Function], *, tool_choice: Any = "auto",
            parallel: bool = True, params: SamplingParams | None = None, template=None,
            on_overflow: str = "error", prepare=None, strict: bool = True,
            threshold: float | str | None = MODEL_DEFAULT) -> Iterator[str | ToolTurn]:
    """One assistant turn with tools: yields answer text as it becomes safe to show (never a piece of a
    call), then the :class:`ToolTurn`. ``prepare`` (the guard's) may rewrite the messages the model sees.
    ``threshold`` (auto only): call when log P(``<tool_call>``) reaches it; the default is the model's
    declared ``tool_call_threshold``, None leaves the decision to free generation alone."""
    params = (params or SamplingParams()).with_seed()
    mode, usable = _choice(tool_choice, functions)
    from ..models.capabilities import supports

    if mode != "none" and usable and supports(model, "native_tools"):
        yield from _native_turn(model, messages, usable, tool_choice, parallel, params, prepare, strict)
        return
    msgs = tool_messages(messages, usable if mode != "none" and usable else (), template)
    if prepare is not None:
        msgs = prepare(msgs)
    if threshold == MODEL_DEFAULT:
        threshold = getattr(model, "tool_call_threshold", None)
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        raise InvalidParameter(f"threshold must be a log-probability (a number) or None, got {threshold!r}")
    if mode == "auto" and threshold is not None and call_logprob(model, msgs) >= threshold:
        mode = "required"
    if mode == "required":
        yield _call_turn(model, msgs, usable, parallel, params, on_overflow, strict)
        return
    ts = model.stream(messages=msgs, params=params, on_overflow=on_overflow)
    held, deciding = "", mode == "auto"
    sent: list[str] = []
    try:
        for piece in ts:
            if not deciding:
                sent.append(piece)
                yield piece
                continue
            held += piece
            lead = held.lstrip()
            if lead.startswith(OPEN):
                break  # a call: generate it under the schema
            if not OPEN.startswith(lead):  # it is an answer
                deciding = False
                sent.append(held)
                yield held
                held = ""
        else:
            if held:
                sent.append(held)
                yield held
            yield ToolTurn("".join(sent), [], ts.completion, ts.prompt)
            return
    finally:
        ts.close()
    yield _call_turn(model, msgs, usable, parallel, params, on_overflow, strict)


def _wire(m: Any) -> dict:
    """A chat message in the OpenAI wire format, tool calls and tool results kept as such."""
    if isinstance(m, Message):
        return {"role": m.role, "content": m.content}
    out = {k: m[k] for k in ("role", "content", "name", "tool_call_id") if m.get(k) is not None}
    if m.get("tool_calls"):
        out["tool_calls"] = [{"id": c.get("id") or f"call_{i}", "type": "function",
                              "function": {"name": c["function"]["name"],
                                           "arguments": c["function"]["arguments"] if isinstance(c["function"].get("arguments"), str)
                                           else json.dumps(c["function"].get("arguments") or {}, ensure_ascii=False)}}
                             for i, c in enumerate(m["tool_calls"])]
        out.setdefault("content", None)
    return out


def _native_turn(model, messages, functions: Sequence[Function], tool_choice: Any, parallel: bool,
                 params: SamplingParams, prepare, strict: bool) -> Iterator[str | ToolTurn]:
    """The turn from a backend's own function calling (a remote server): the history goes as OpenAI
    messages (flattened by :func:`tool_messages` first when ``prepare`` must see it, as the guard
    does), the calls come back in OpenAI's format and are validated here like generated ones."""
    for i, m in enumerate(messages):  # the same checks as the prompt path, before anything is sent
        if isinstance(m, dict) and m.get("role") == "assistant" and m.get("tool_calls"):
            for c in m["tool_calls"]:
                _call_text(c, i)
    wire = ([_wire(m) for m in prepare(tool_messages(messages))] if prepare is not None
            else [_wire(m) for m in messages])
    choice = tool_choice if isinstance(tool_choice, dict) else (tool_choice or "auto")
    tools = [f.to_openai() for f in functions]
    content, raw, comp = model.chat_tools(wire, tools, tool_choice=choice, parallel=parallel, params=params)
    shown = json.dumps({"messages": wire, "tools": tools, "tool_choice": choice}, ensure_ascii=False, indent=1)
    if not raw:
        if choice != "auto":
            raise ToolCallError(f"tool_choice was {choice if isinstance(choice, str) else 'a named function'}, "
                                "but the server answered without a call")
        if content:
            yield content
        yield ToolTurn(content, [], comp, shown)
        return
    items, ids = [], []
    for c in raw[: None if parallel else 1]:
        try:
            name, args = _call_parts(c)
        except _BadCall as bad:
            if bad.name is None:
                raise ToolCallError("the server's tool call has no function name") from None
            raise ToolCallError(f"the server's call of {bad.name!r} has arguments that are not JSON") from None
        items.append({"name": name, "arguments": args})
        ids.append(c.get("id") or None)
    text = json.dumps(items if len(items) > 1 else items[0], ensure_ascii=False)
    calls = parse_calls(text, functions, parallel, strict)
    calls = [ToolCall(c.name, c.arguments, id=i) if i else c for c, i in zip(calls, ids)]
    yield ToolTurn("", calls, comp, shown)


def call_logprob(model, msgs: Sequence[Message]) -> float:
    """log P(``<tool_call>`` opens the assistant turn | the chat ``msgs``): how much the model leans to a call."""
    from ..models.capabilities import require

    require(model, "loglikelihood")
    return float(model.loglikelihood(model.render_chat(list(msgs)), [OPEN])[0][0])


def _call_turn(model, msgs: list[Message], functions: Sequence[Function], parallel: bool, params: SamplingParams,
               on_overflow: str, strict: bool) -> ToolTurn:
    """Generate a call under the calls' schema, continuing after ``<tool_call>``. A backend that cannot
    constrain output gets a free continuation, validated afterwards."""
    from ..models.capabilities import supports

    schema = call_schema(functions, parallel)
    p = params.replace(max_tokens=max(params.max_tokens, 512))
    prompt = model.render_chat(msgs) + OPEN
    if supports(model, "json_schema"):
        comp = model.generate(prompt, params=p, json_schema=schema, on_overflow=on_overflow)
    else:
        comp = model.generate(prompt, params=p.replace(stop=(*p.stop, CLOSE)), on_overflow=on_overflow)
    if comp.finish_reason == "length":
        raise ToolCallError(f"the tool call was cut off at {p.max_tokens} tokens")
    return ToolTurn("", parse_calls(comp.text, functions, parallel, strict), comp, prompt)
