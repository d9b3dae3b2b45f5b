"""``/v1/completions`` with ``logprobs``, or ``echo`` with ``max_tokens: 0``: the legacy OpenAI
scoring request that lm-evaluation-harness and genstack's remote model send to get the
log-likelihood of a continuation. The text is generated first (unless only the prompt is scored),
then prompt and text are scored in one pass of the model (:meth:`Model.prompt_logprobs`), each
tokenized on its own: the prompt's tokens are exactly the prompt's, and the generated text's are
its re-tokenization, for greedy text the tokens the model chose.

``POST /apply-template`` (llama.cpp's server has the same endpoint) returns the exact prompt a chat
request becomes, with the model's own chat template: a remote client needs it to score
continuations of a chat prompt (label tasks, tool-call decisions) the way the model reads them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..errors import GenstackError
from ..generation import Completion, Usage
from ..models.capabilities import UnsupportedCapability, require
from .errors import APIError, error_response

__all__ = ["scored_completion", "router"]

router = APIRouter()


@router.post("/apply-template")
async def apply_template(request: Request):
    """``{"messages": [...], "model": NAME?}`` → ``{"prompt": the rendered chat prompt}``."""
    from .openai_api import _require_object, parse_messages
    from .routes_openai import read_json

    gs = request.app.state.gs
    gs.authorize(request)
    body = _require_object(await read_json(request))
    name = body.get("model") or gs.settings.default_model
    if not isinstance(name, str):
        raise APIError(400, "model must be a string", param="model")
    messages = parse_messages(body.get("messages"))
    engine = gs.engine
    engine.check_generator(name)
    try:
        prompt = await engine.run(lambda: engine.model(name).render_chat(messages))
    except GenstackError as exc:
        raise error_response(exc) from None
    return {"prompt": prompt, "model": name}


async def scored_completion(gs, cp, prompt: str, run, cid: str, created: int) -> dict:
    """A completion with ``logprobs`` (or the prompt scored alone: ``echo`` with ``max_tokens: 0``):
    generate (unless scoring only), then score prompt + text in one pass of the model; OpenAI's
    legacy ``logprobs`` object, offsets counted from the start of the prompt."""
    from .routes_openai import _check_prompt, _collect, _generation, _started, _usage_dict

    engine = gs.engine
    model = await engine.run(lambda: engine.model(cp.model))
    if cp.logprobs is not None:
        try:
            require(model, "prompt_logprobs")
        except UnsupportedCapability as exc:
            raise APIError(400, str(exc), param="logprobs", code="logprobs_not_supported") from None
    if cp.score_only:
        n = await engine.run(lambda: model.count_tokens(prompt), lock=cp.model)
        _check_prompt(gs, n, "prompt")
        final = Completion("", "length", Usage(n, 0), model=cp.model)
    else:
        make = _generation(gs, cp.model, lambda m: m.count_tokens(prompt), prompt=prompt, params=cp.params,
                           on_overflow="clamp" if cp.clamp else "error")
        final = await _collect(await _started(engine.stream(make, lock=cp.model)), run)
    lp = None
    if cp.logprobs is not None:
        top = cp.logprobs
        try:
            tokens = await engine.run(lambda: model.prompt_logprobs(prompt, top=top, continuation=final.text),
                                      lock=cp.model)
        except GenstackError as exc:
            raise error_response(exc) from None
        keep_from = 0 if cp.echo else len(prompt)
        end = len(prompt) + len(final.text)
        tokens = [t for t in tokens if t.offset + len(t.text) > keep_from and t.offset < end]
        lp = {"tokens": [t.text for t in tokens], "token_logprobs": [t.logprob for t in tokens],
              "top_logprobs": [None if t.logprob is None else dict(list(t.top.items())[:top]) for t in tokens],
              "text_offset": [t.offset for t in tokens]}
    run.done(cid, 200, final)
    return {"id": cid, "object": "text_completion", "created": created, "model": cp.model, "system_fingerprint": None,
            "choices": [{"index": 0, "text": (prompt if cp.echo else "") + final.text, "logprobs": lp,
                         "finish_reason": final.finish_reason}],
            "usage": _usage_dict(final.usage)}
