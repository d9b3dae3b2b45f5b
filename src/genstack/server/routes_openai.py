"""``/v1``: models, chat completions (plain and ``rag:<collection>``), completions, embeddings."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from .errors import APIError, error_response
from .openai_api import (
    chunk,
    completion_id,
    encode_vector,
    now,
    parse_chat,
    parse_completion,
    parse_embeddings,
)

router = APIRouter(prefix="/v1")

RAG_PREFIX = "rag:"
DONE = b"data: [DONE]\n\n"
_NOTHING = object()


def _gs(request: Request):
    return request.app.state.gs


async def read_json(request: Request) -> Any:
    """The JSON body. It must be sent as ``application/json``: a browser sends ``text/plain`` and form
    bodies to any origin without a preflight, so a JSON route that read them would be open to every
    page the user visits (see :mod:`genstack.server.boundary`)."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and not (ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))):
        raise APIError(415, f"send the body as JSON with 'Content-Type: application/json' (got {ctype or 'none'!r})",
                       code="unsupported_media_type")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "the request body is not valid JSON") from None


def sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


@router.get("/models")
async def list_models(request: Request):
    gs = _gs(request)
    gs.authorize(request)
    from ..stores.collections import list_collections

    created = now()
    data = [{"id": n, "object": "model", "created": created, "owned_by": "genstack", "genstack_kind": "generator"}
            for n in gs.engine.generator_names()]
    data += [{"id": n, "object": "model", "created": created, "owned_by": "genstack", "genstack_kind": "embedder"}
             for n in gs.engine.embedder_names()]
    data += [{"id": RAG_PREFIX + c["name"], "object": "model", "created": created, "owned_by": "genstack",
              "genstack_kind": "rag", "genstack_chunks": c["chunks"]} for c in list_collections(gs.settings)
             if gs.may_use(request, c["name"])]
    return {"object": "list", "data": data}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, request: Request):
    listing = await list_models(request)
    for m in listing["data"]:
        if m["id"] == model_id:
            return m
    raise APIError(404, f"the model {model_id!r} does not exist", code="model_not_found", param="model")


async def _started(agen: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Pull the first item now, so that errors before any output become HTTP errors;
    return an iterator over all the items, that first one included."""
    try:
        first = await agen.__anext__()
    except StopAsyncIteration:
        first = _NOTHING
    except BaseException as exc:
        await agen.aclose()
        raise error_response(exc) from None

    async def items():
        if first is not _NOTHING:
            yield first
        async for x in agen:
            yield x

    return items()


async def _collect(items: AsyncIterator[Any], run: "_Run") -> Any:
    """Consume a generation: text pieces go to ``run``; return the final object."""
    from ..rag.respond import TOKEN

    final = None
    async for item in items:
        if isinstance(item, str):
            run.piece(item)
        elif item is TOKEN:
            run.first_token()
        else:
            final = item
    return final


def _generation(gs, name: str, count, **stream_kw):
    """The worker-side generator of a plain (non-RAG) request: text pieces, then the Completion."""
    def make():
        model = gs.engine.model(name)
        _check_prompt(gs, count(model))
        ts = model.stream(**stream_kw)
        try:
            yield from ts
        finally:
            ts.close()
        yield ts.completion

    return make


def _sse_response(events: AsyncIterator[bytes], finish) -> StreamingResponse:
    """Stream ``events`` as SSE, ending with ``[DONE]``; an error after the headers becomes an
    error event. ``finish(status)`` runs last: 200, the error's status, or 499 if the client left."""
    async def body():
        status = 499
        try:
            async for event in events:
                yield event
            status = 200
            yield DONE
        except Exception as exc:
            err = error_response(exc)
            status = err.status
            yield sse(err.body())
            yield DONE
        finally:
            finish(status)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _check_prompt(gs, n: int, param: str = "messages") -> None:
    limit = gs.config.max_prompt_tokens
    if limit and n > limit:
        raise APIError(400, f"the prompt is {n} tokens; this server accepts at most {limit}",
                       code="context_length_exceeded", param=param)


class _Run:
    """Book-keeping of one generation: timings, metrics and the request log."""

    def __init__(self, gs, route: str, model: str, key_id: str, body: Any):
        self.gs, self.route, self.model, self.key_id, self.body = gs, route, model, key_id, body
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.parts: list[str] = []
        #: the decoding parameters, when the final object does not carry them
        self.params: dict | None = None

    def first_token(self) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()
            self.gs.metrics.ttft.labels(self.model).observe(self.t_first - self.t0)

    def piece(self, text: str) -> None:
        if text:
            self.first_token()
        self.parts.append(text)

    def done(self, rid: str, status: int, final=None, response: str | None = None) -> None:
        """Metrics and the request log; ``final`` is an Outcome or a Completion (or None: it failed)."""
        t1 = time.perf_counter()
        usage = getattr(final, "usage", None)
        prompt = getattr(final, "prompt", None)
        params = getattr(final, "params", None) or self.params
        if response is None and final is not None and hasattr(final, "finish_reason"):
            response = final.text
        m = self.gs.metrics
        if usage is not None:
            m.tokens.labels(self.model, "prompt").inc(usage.prompt_tokens)
            m.tokens.labels(self.model, "completion").inc(usage.completion_tokens)
            if self.t_first is not None and usage.completion_tokens > 1 and t1 > self.t_first:
                m.tokens_per_s.labels(self.model).observe((usage.completion_tokens - 1) / (t1 - self.t_first))
        self.gs.log_request(
            id=rid, route=self.route, model=self.model, key_id=self.key_id, status=status, request=self.body,
            response=response if response is not None else "".join(self.parts),
            prompt_tokens=getattr(usage, "prompt_tokens", None), completion_tokens=getattr(usage, "completion_tokens", None),
            latency_s=round(t1 - self.t0, 4),
            ttft_s=round(self.t_first - self.t0, 4) if self.t_first else None,
            prompt=prompt, params=params if isinstance(params, dict) else None)


def _citations(answer) -> list[dict]:
    return [{"n": s.n, "label": s.label, "source": Path(s.hit.source).name if s.hit.source else s.hit.id,
             "snippet": s.snippet(240), "text": s.hit.text, "cited": s.n in answer.cited,
             "similarity": None if s.hit.similarity is None else round(float(s.hit.similarity), 4)}
            for s in answer.sources]


def _rag_extra(answer) -> dict:
    return {"answer": answer.text, "abstained": answer.abstained, "reason": answer.reason, "extractive": answer.extractive,
            "query": answer.query, "similarity": round(float(answer.similarity), 4), "flags": answer.flags,
            "checks": [v.to_dict() for v in answer.checks],
            "timings": {k: round(v, 4) for k, v in answer.timings.items()}}


def _documents(body: Any) -> list[tuple[str, str]] | None:
    """The ``documents`` field: texts to answer from, as strings or {"text", "title"} objects."""
    docs = body.get("documents")
    if docs is None:
        return None
    if not isinstance(docs, list) or not 1 <= len(docs) <= 32:
        raise APIError(400, "documents must be a list of 1 to 32 texts", param="documents")
    out = []
    for i, d in enumerate(docs):
        text, title = (d.get("text"), d.get("title") or f"document-{i + 1}") if isinstance(d, dict) else (d, f"document-{i + 1}")
        if not isinstance(text, str) or not text.strip() or not isinstance(title, str):
            raise APIError(400, f"documents[{i}] must be a non-empty text or an object with a non-empty text",
                           param="documents")
        out.append((title, text))
    return out


def guard_session(gs, messages=()):
    """The request's :class:`~genstack.guard.GuardSession`; its events feed /metrics."""
    return gs.guard.session(messages, on_event=lambda kind, n: gs.metrics.guard.labels(kind).inc(n))


async def check_input(guard, text: str) -> None:
    """The guard's input check, off the event loop and outside the generation gate."""
    import asyncio

    from ..guard import InputBlocked

    if guard.policy.input == "off":
        return
    try:
        await asyncio.get_running_loop().run_in_executor(None, guard.check_input, text)
    except InputBlocked as exc:
        raise APIError(400, str(exc), code="input_blocked", param="messages") from None


@router.post("/chat/completions")
async def chat_completions(request: Request):
    from ..rag.pipeline import RagRequest
    from ..rag.respond import Outcome, grounded, plain

    gs = _gs(request)
    key_id = gs.authorize(request)
    body = await read_json(request)
    cp, messages = parse_chat(body, gs.config.max_tokens_cap)
    engine = gs.engine
    documents = _documents(body)
    rag = cp.model.startswith(RAG_PREFIX)
    gen_name = cp.model
    if cp.functions and (rag or documents is not None):
        raise APIError(400, "tools cannot be combined with a rag: model or documents (give the model a search "
                            "tool instead)", param="tools")
    if documents is not None and (rag or cp.json_schema is not None):
        raise APIError(400, "documents cannot be combined with a rag: model or a response_format", param="documents")
    if documents is not None and messages[-1].role != "user":
        raise APIError(400, "the last message must be from the user", param="messages")
    if rag:  # rag:<collection> answers with the default generator, or the one named in "generator"
        gen_name = body.get("generator") or gs.settings.default_model
        if not isinstance(gen_name, str):
            raise APIError(400, "generator must be a model name", param="generator")
    engine.check_generator(gen_name)
    if rag:
        from ..stores.collections import check_name, collection_exists

        coll = cp.model[len(RAG_PREFIX):]
        try:
            check_name(coll)
        except Exception:
            raise APIError(404, f"no collection named {coll!r}", code="model_not_found", param="model") from None
        if not collection_exists(coll, gs.settings) or not gs.may_use(request, coll):
            raise APIError(404, f"no collection named {coll!r}; GET /v1/models lists rag:<collection> models",
                           code="model_not_found", param="model")
        if messages[-1].role != "user":
            raise APIError(400, "the last message must be from the user", param="messages")
        if cp.json_schema is not None:
            raise APIError(400, "response_format is not supported with rag: models", param="response_format")
    run = _Run(gs, "/v1/chat/completions", cp.model, key_id, body)
    cid, created = completion_id(), now()
    guard = guard_session(gs, messages)
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    await check_input(guard, last_user)

    def make_grounded():
        model = engine.model(gen_name)
        _check_prompt(gs, model.count_tokens(messages[-1].content))
        pipe = engine.pipeline(coll, gen_name) if rag else engine.document_pipeline(documents, gen_name)
        # greedy unless the client asked for a temperature: grounded answers should not wander
        params = cp.params if body.get("temperature") is not None else cp.params.replace(greedy=True)
        if cp.clamp:
            params = params.replace(max_tokens=min(cp.params.max_tokens, pipe.config.server_max_tokens))
        # the client's system messages are the application's instructions: below the grounding rules
        system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip()) or None
        req = RagRequest(messages[-1].content, params=params, system=system,
                         history=tuple(m for m in messages[:-1] if m.role in ("user", "assistant")))
        for item in grounded(pipe, req, guard, streaming=cp.stream):
            if isinstance(item, Outcome) and item.answer is not None:
                gs.metrics.retrieval.labels(coll if rag else "documents").observe(
                    item.answer.timings.get("retrieve_s", 0.0))
            yield item

    def make_plain():
        model = engine.model(gen_name)
        yield from plain(model, messages, cp.params, guard, streaming=cp.stream, json_schema=cp.json_schema,
                         on_overflow="clamp" if cp.clamp else "error",
                         check=lambda prepared: _check_prompt(gs, model.count_chat_tokens(prepared)))

    def make_tools():
        from ..agents.guarded import tool_turn

        model = engine.model(gen_name)
        yield from tool_turn(model, messages, cp.functions, cp.params, guard, streaming=cp.stream,
                             tool_choice=cp.tool_choice, parallel=cp.parallel,
                             on_overflow="clamp" if cp.clamp else "error",
                             check=lambda prepared: _check_prompt(gs, model.count_chat_tokens(prepared)))

    make = make_grounded if (rag or documents is not None) else (make_tools if cp.functions else make_plain)
    items = await _started(engine.stream(make, lock=gen_name))

    if not cp.stream:
        final = await _collect(items, run)
        return JSONResponse(_chat_body(cid, created, cp.model, run, final, guard))

    final = None

    async def events():
        nonlocal final
        yield sse(chunk(cid, cp.model, created, {"role": "assistant", "content": ""}))
        async for item in items:
            if isinstance(item, str):
                run.piece(item)
                yield sse(chunk(cid, cp.model, created, {"content": item}))
            else:
                final = item
        for i, call in enumerate(final.tool_calls or ()):  # as OpenAI streams them: the name, then the arguments
            wire = call.to_openai()
            yield sse(chunk(cid, cp.model, created, {"tool_calls": [
                {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}]}))
            yield sse(chunk(cid, cp.model, created, {"tool_calls": [
                {"index": i, "function": {"arguments": wire["function"]["arguments"]}}]}))
        yield sse(chunk(cid, cp.model, created, {}, final.finish_reason, **_final_extra(final, guard)))
        if cp.include_usage:
            yield sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": cp.model,
                       "choices": [], "usage": _usage_dict(final.usage)})

    def finish(status: int) -> None:
        run.done(cid, status, final, _calls_text(final))

    return _sse_response(events(), finish)


def _calls_text(final) -> str | None:
    """What the request log records as the response of a turn that called tools."""
    calls = getattr(final, "tool_calls", None)
    if not calls:
        return None
    return json.dumps([c.to_openai()["function"] for c in calls], ensure_ascii=False)


def _final_extra(final, guard) -> dict:
    """The extra fields of the last event (or of the body): citations and what genstack checked."""
    if final.answer is None:
        return {"genstack": {"guard": guard.extra()}}
    return {"citations": _citations(final.answer),
            "genstack": {**_rag_extra(final.answer), "guard": guard.extra(final.answer)}}


def _usage_dict(usage) -> dict:
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return usage.to_dict()


def _chat_body(cid, created, model, run: "_Run", final, guard) -> dict:
    run.done(cid, 200, final, _calls_text(final))
    message = {"role": "assistant", "content": final.text, "refusal": None}
    if getattr(final, "tool_calls", None):
        message = {"role": "assistant", "content": None, "refusal": None,
                   "tool_calls": [c.to_openai() for c in final.tool_calls]}
    body = {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": final.finish_reason}],
            "usage": _usage_dict(final.usage)}
    body.update(_final_extra(final, guard))
    return body


@router.post("/completions")
async def completions(request: Request):
    gs = _gs(request)
    key_id = gs.authorize(request)
    body = await read_json(request)
    cp, prompt = parse_completion(body, gs.config.max_tokens_cap)
    engine = gs.engine
    engine.check_generator(cp.model)
    run = _Run(gs, "/v1/completions", cp.model, key_id, body)
    run.params = cp.params.to_dict()
    cid, created = completion_id("cmpl"), now()
    if cp.logprobs is not None or cp.score_only:
        from .scoring import scored_completion

        return await scored_completion(gs, cp, prompt, run, cid, created)
    make = _generation(gs, cp.model, lambda m: m.count_tokens(prompt), prompt=prompt, params=cp.params,
                       on_overflow="clamp" if cp.clamp else "error")
    items = await _started(engine.stream(make, lock=cp.model))
    head = prompt if cp.echo else ""
    if not cp.stream:
        final = await _collect(items, run)
        run.done(cid, 200, final)
        return {"id": cid, "object": "text_completion", "created": created, "model": cp.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "text": head + final.text, "logprobs": None,
                             "finish_reason": final.finish_reason}],
                "usage": _usage_dict(final.usage)}

    final = None

    async def events():
        nonlocal final
        if head:
            yield sse(chunk(cid, cp.model, created, obj="text_completion", text=head))
        async for item in items:
            if isinstance(item, str):
                if item:
                    run.piece(item)
                    yield sse(chunk(cid, cp.model, created, obj="text_completion", text=item))
            else:
                final = item
        yield sse(chunk(cid, cp.model, created, obj="text_completion", text="", finish=final.finish_reason))
        if cp.include_usage:
            yield sse({"id": cid, "object": "text_completion", "created": created, "model": cp.model,
                       "choices": [], "usage": _usage_dict(final.usage)})

    return _sse_response(events(), lambda status: run.done(cid, status, final))


@router.post("/embeddings")
async def embeddings(request: Request):
    gs = _gs(request)
    gs.authorize(request)
    body = await read_json(request)
    name, texts, fmt = parse_embeddings(body)
    engine = gs.engine
    emb = engine.embedder(name)  # 404 for an unknown name; loads lazily

    def work():
        vectors = emb.embed(texts)
        tokens = sum(len(emb.offsets(t)) for t in texts)
        return vectors, tokens

    vectors, tokens = await engine.run(work, lock="embedder:" + emb.name)
    return {"object": "list", "model": name or emb.name,
            "data": [{"object": "embedding", "index": i, "embedding": encode_vector(v, fmt)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
