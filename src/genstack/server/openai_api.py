"""Parsing and shaping OpenAI's wire format, written once.

Requests are validated by hand so that every mistake gets OpenAI's error
body with the parameter named, not a framework-specific 422.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import numpy as np

from ..errors import InvalidParameter
from ..generation import Message, SamplingParams
from .errors import APIError

__all__ = ["ChatParams", "parse_chat", "parse_tools", "parse_completion", "parse_embeddings", "chunk", "completion_id"]

#: extra sampling fields accepted beside OpenAI's (vLLM and llama.cpp's server accept them too)
_EXTRA = ("top_k", "min_p", "repeat_penalty")
_UNSUPPORTED_TRUE = ("logprobs", "echo")


def completion_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


class ChatParams:
    def __init__(self, model: str, params: SamplingParams, stream: bool, include_usage: bool,
                 json_schema: dict | None, clamp: bool, user: str | None = None):
        self.model, self.params, self.stream, self.include_usage = model, params, stream, include_usage
        self.json_schema, self.clamp, self.user = json_schema, clamp, user
        #: the functions of ``tools`` (empty: no tool calling), ``tool_choice`` and ``parallel_tool_calls``
        self.functions: list = []
        self.tool_choice: Any = "auto"
        self.parallel = True
        #: /v1/completions: return the prompt before the text; log-probabilities with the ``logprobs``
        #: best alternatives (None: none); generate nothing (``max_tokens: 0`` with ``echo``)
        self.echo = False
        self.logprobs: int | None = None
        self.score_only = False


def _require_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    return body


def _common(body: dict, cap: int, *, allow_zero: bool = False) -> tuple[str, SamplingParams, bool, bool, bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise APIError(400, "you must provide a model parameter", param="model", code="missing_required_parameter")
    n = body.get("n", 1)
    if n not in (1, None):
        raise APIError(400, "only n=1 is supported", param="n")
    for name in _UNSUPPORTED_TRUE:
        if body.get(name):
            raise APIError(400, f"{name} is not supported on this endpoint", param=name)
    for name in ("presence_penalty", "frequency_penalty"):
        v = body.get(name)
        if v not in (None, 0, 0.0):
            raise APIError(400, f"{name} is not supported (use repeat_penalty)", param=name)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    clamp = max_tokens is None
    if max_tokens is None:
        max_tokens = cap
    elif allow_zero and isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens == 0:
        pass  # score the prompt only (echo)
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise APIError(400, f"max_tokens must be a positive integer, got {max_tokens!r}", param="max_tokens")
    elif max_tokens > cap:
        raise APIError(400, f"max_tokens is {max_tokens} but this server allows at most {cap}", param="max_tokens",
                       code="max_tokens_too_large")
    kw: dict[str, Any] = {"max_tokens": max(1, max_tokens)}
    temperature = body.get("temperature")
    if temperature is not None:
        kw["temperature"] = temperature
        if temperature == 0:
            kw["greedy"] = True
    if body.get("top_p") is not None:
        kw["top_p"] = body["top_p"]
    for name in _EXTRA:
        if body.get(name) is not None:
            kw[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise APIError(400, "stop must be a string or a list of strings", param="stop")
        kw["stop"] = tuple(stop)
    if body.get("seed") is not None:
        kw["seed"] = body["seed"]
    try:
        if "temperature" in kw and not isinstance(kw["temperature"], bool) and isinstance(kw["temperature"], (int, float)) \
                and kw["temperature"] > 2:
            raise InvalidParameter(f"temperature must be in [0, 2], got {kw['temperature']!r}")
        params = SamplingParams(**kw)
    except InvalidParameter as exc:
        param = str(exc).split(" ", 1)[0]
        raise APIError(400, str(exc), param=param) from None
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, "stream must be true or false", param="stream")
    opts = body.get("stream_options") or {}
    include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
    return model.strip(), params, stream, include_usage, clamp


def _content(c: Any, i: int) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # content parts: only text is supported
        out = []
        for part in c:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                out.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise APIError(400, f"messages[{i}]: content parts of type {kind!r} are not supported (text only)",
                               param=f"messages[{i}].content")
        return "".join(out)
    if c is None:
        return ""
    raise APIError(400, f"messages[{i}].content must be a string or a list of text parts", param=f"messages[{i}].content")


def parse_messages(raw: Any) -> list[Message]:
    """Chat messages; assistant ``tool_calls`` and ``role: "tool"`` results become the turns the model
    reads (see :func:`genstack.agents.calling.tool_messages`)."""
    if not isinstance(raw, list) or not raw:
        raise APIError(400, "messages must be a non-empty list", param="messages")
    out, tooling = [], False
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise APIError(400, f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = m.get("role")
        if role == "developer":  # OpenAI's newer name for the system role
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise APIError(400, f"messages[{i}].role must be system, user, assistant or tool, got {role!r}",
                           param=f"messages[{i}].role")
        content = _content(m.get("content"), i)
        if role == "tool" or (role == "assistant" and m.get("tool_calls")):
            tooling = True
            out.append({**m, "role": role, "content": content})
        else:
            out.append(Message(role, content))
    if not tooling:
        return out
    from ..agents.calling import tool_messages

    try:
        return tool_messages(out)
    except InvalidParameter as exc:
        raise APIError(400, str(exc), param="messages") from None


def parse_tools(body: dict, cp: "ChatParams") -> None:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` into ``cp``."""
    if body.get("functions") is not None or body.get("function_call") is not None:
        raise APIError(400, "functions and function_call are deprecated; send tools and tool_choice", param="functions")
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None or tools == []:
        if choice not in (None, "none", "auto"):
            raise APIError(400, "tool_choice needs tools", param="tool_choice")
        return
    if not isinstance(tools, list) or len(tools) > 128:
        raise APIError(400, "tools must be a list of at most 128 functions", param="tools")
    from ..agents.calling import Function, _choice

    functions = []
    for i, t in enumerate(tools):
        try:
            functions.append(Function.from_openai(t, f"tools[{i}]"))
        except InvalidParameter as exc:
            raise APIError(400, str(exc), param=f"tools[{i}]") from None
    if len({f.name for f in functions}) != len(functions):
        raise APIError(400, "two tools have the same name", param="tools")
    try:
        _choice(choice, functions)
    except InvalidParameter as exc:
        raise APIError(400, str(exc), param="tool_choice") from None
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise APIError(400, "parallel_tool_calls must be true or false", param="parallel_tool_calls")
    cp.functions, cp.tool_choice, cp.parallel = functions, choice or "auto", parallel


def parse_response_format(rf: Any) -> dict | None:
    if rf is None:
        return None
    if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
        raise APIError(400, "response_format.type must be text, json_object or json_schema", param="response_format")
    if rf["type"] == "text":
        return None
    if rf["type"] == "json_object":
        return {"type": "object"}
    js = rf.get("json_schema")
    if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
        raise APIError(400, "response_format.json_schema.schema must be a JSON Schema object",
                       param="response_format.json_schema")
    from ..prompts.structured import check_schema

    try:
        return check_schema(js["schema"], "response_format.json_schema.schema")
    except InvalidParameter as exc:
        raise APIError(400, str(exc), param="response_format.json_schema") from None


def parse_chat(body: Any, cap: int) -> tuple[ChatParams, list[Message]]:
    body = _require_object(body)
    model, params, stream, include_usage, clamp = _common(body, cap)
    messages = parse_messages(body.get("messages"))
    schema = parse_response_format(body.get("response_format"))
    cp = ChatParams(model, params, stream, include_usage, schema, clamp, body.get("user"))
    parse_tools(body, cp)
    if cp.functions and schema is not None:
        raise APIError(400, "response_format cannot be combined with tools", param="response_format")
    return cp, messages


#: the most alternatives per token ``logprobs`` may ask for (OpenAI's legacy API: 5; vLLM: 20)
MAX_LOGPROBS = 20


def parse_completion(body: Any, cap: int) -> tuple[ChatParams, str]:
    body = _require_object(body)
    echo = body.get("echo", False)
    if not isinstance(echo, bool):
        raise APIError(400, "echo must be true or false", param="echo")
    logprobs = body.get("logprobs")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int)
                                 or not 0 <= logprobs <= MAX_LOGPROBS):
        raise APIError(400, f"logprobs must be an integer from 0 to {MAX_LOGPROBS}, got {logprobs!r}", param="logprobs")
    model, params, stream, include_usage, clamp = _common(
        {k: v for k, v in body.items() if k not in ("echo", "logprobs")}, cap, allow_zero=echo)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if body.get("tools"):
        raise APIError(400, "tools are for /v1/chat/completions", param="tools")
    if not isinstance(prompt, str):
        raise APIError(400, "prompt must be a string (batches and token arrays are not supported)", param="prompt")
    if body.get("suffix"):
        raise APIError(400, "suffix is not supported", param="suffix")
    if body.get("best_of") not in (None, 1):
        raise APIError(400, "best_of is not supported", param="best_of")
    if stream and logprobs is not None:
        raise APIError(400, "logprobs are not streamed here; send stream: false", param="logprobs")
    if not prompt and (echo or logprobs is not None):
        raise APIError(400, "the prompt is empty", param="prompt")
    cp = ChatParams(model, params, stream, include_usage, None, clamp)
    cp.echo, cp.logprobs = echo, logprobs
    cp.score_only = echo and body.get("max_completion_tokens", body.get("max_tokens")) == 0
    return cp, prompt


def parse_embeddings(body: Any) -> tuple[str | None, list[str], str]:
    body = _require_object(body)
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise APIError(400, "model must be a string", param="model")
    inp = body.get("input")
    if isinstance(inp, str):
        inp = [inp]
    def ids(x):
        return isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool) for t in x)

    if isinstance(inp, list) and inp and (ids(inp) or all(ids(t) for t in inp)):
        # token ids name tokens of whatever tokenizer the client used (LangChain's OpenAIEmbeddings: OpenAI's
        # tiktoken), not this embedder's: decoding them here would embed the wrong words
        raise APIError(400, "input holds token ids, and they can only be read with the tokenizer that made them; "
                            "send the texts instead (LangChain: OpenAIEmbeddings(..., check_embedding_ctx_length=False))",
                       param="input", code="token_ids_not_supported")
    if not isinstance(inp, list) or not inp or not all(isinstance(t, str) for t in inp):
        raise APIError(400, "input must be a non-empty string or list of strings", param="input")
    if len(inp) > 2048:
        raise APIError(400, f"at most 2048 inputs per request, got {len(inp)}", param="input")
    if any(not t for t in inp):
        raise APIError(400, "input strings must not be empty", param="input")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise APIError(400, "encoding_format must be float or base64", param="encoding_format")
    if body.get("dimensions") is not None:
        raise APIError(400, "dimensions is not supported", param="dimensions")
    return (model.strip() if model else None), inp, fmt


def encode_vector(v: np.ndarray, fmt: str) -> Any:
    v = np.asarray(v, dtype="<f4")
    return base64.b64encode(v.tobytes()).decode() if fmt == "base64" else [float(x) for x in v]


def chunk(cid: str, model: str, created: int, delta: dict | None = None, finish: str | None = None,
          obj: str = "chat.completion.chunk", text: str | None = None, **extra) -> dict:
    if obj == "chat.completion.chunk":
        choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
    out = {"id": cid, "object": obj, "created": created, "model": model, "system_fingerprint": None,
           "choices": [choice]}
    out.update(extra)
    return out


def now() -> int:
    return int(time.time())
