"""``/api/arena``: battles streamed side by side, votes, the leaderboard (the web UI's Arena tab)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from ..errors import InvalidParameter
from .errors import APIError

router = APIRouter(prefix="/api/arena")

#: most bootstrap rounds a leaderboard request may ask for
MAX_BOOTSTRAP = 1000


def _gs(request: Request):
    return request.app.state.gs


def arena_names(gs) -> list[str]:
    """The models this server's arena draws from: --arena, else every generator it serves."""
    return list(gs.config.arena_models) or gs.engine.generator_names()


def _arena(gs):
    if gs.arena is None:
        from ..arena import Arena

        names = arena_names(gs)
        if len(names) < 2:
            raise APIError(409, "the arena needs at least two models; start the server with --arena A,B",
                           code="arena_unavailable")
        gs.arena = Arena(names, settings=gs.settings, db=gs.arena_db,
                         loader=gs.engine.model, check=False)
    return gs.arena


@router.get("")
async def arena_info(request: Request):
    gs = _gs(request)
    gs.authorize(request)
    names = arena_names(gs)
    return {"models": names, "enabled": len(names) >= 2}


@router.post("/battles")
async def battle(request: Request):
    """One battle, streamed as SSE: ``{"side": "a"|"b", "delta": text}`` pieces from both models as they
    come, ``{"side": .., "finish_reason": ..}`` when a side ends, then ``{"done": true, "battle": id}``.
    The model names are not sent; the vote's answer reveals them."""
    from .openai_api import parse_completion
    from .routes_openai import _check_prompt, _sse_response, _started, check_input, guard_session, read_json, sse

    gs = _gs(request)
    key_id = gs.authorize(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    cp, prompt = parse_completion({**body, "model": "arena", "stream": True}, gs.config.max_tokens_cap)
    if not prompt.strip():
        raise APIError(400, "prompt must not be empty", param="prompt")
    arena = _arena(gs)
    a, b = arena.pair()
    from ..generation import Message

    messages = [Message("user", prompt)]
    guards = (guard_session(gs, messages), guard_session(gs, messages))
    await check_input(guards[0], prompt)
    for g in guards[1:]:
        g.input = guards[0].input
    engine = gs.engine

    def make():
        for name in (a, b):
            _check_prompt(gs, engine.model(name).count_tokens(prompt), param="prompt")
        yield from arena.stream(prompt, params=cp.params, pair=(a, b), guards=guards,
                                locks=(engine.lock_for(a), engine.lock_for(b)), origin="ui",
                                extra={"key_id": key_id})

    items = await _started(engine.stream(make))

    async def events():
        async for kind, item in items:
            if kind == "start":
                yield sse({"started": True})
            elif kind == "done":
                yield sse({"done": True, "battle": item.id, "params": item.params})
            elif isinstance(item, str):
                yield sse({"side": kind, "delta": item})
            else:
                yield sse({"side": kind, "finish_reason": item.finish_reason, "text": item.text})

    return _sse_response(events(), lambda status: None)


@router.post("/battles/{battle_id}/vote")
async def vote(battle_id: str, request: Request):
    from .routes_openai import read_json

    gs = _gs(request)
    key_id = gs.authorize(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("winner"), str):
        raise APIError(400, "send {\"winner\": \"a\" | \"b\" | \"tie\" | \"bothbad\"}", param="winner")
    arena = _arena(gs)
    try:
        b = arena.vote(battle_id, body["winner"], voter=key_id)
    except InvalidParameter as exc:
        msg = str(exc)
        if msg.startswith("no battle"):
            raise APIError(404, msg, code="battle_not_found") from None
        if "already has a vote" in msg:
            raise APIError(409, msg, code="already_voted") from None
        raise APIError(400, msg, param="winner") from None
    return {"battle": battle_id, "winner": b["winner"], "model_a": b["model_a"], "model_b": b["model_b"]}


@router.get("/leaderboard")
async def leaderboard(request: Request, method: str = "bt", bootstrap: int = 100, seed: int = 0):
    from ..arena import leaderboard as rate

    gs = _gs(request)
    gs.authorize(request)
    from ..arena.ratings import METHODS

    if method not in METHODS:
        raise APIError(400, f"method must be one of {', '.join(METHODS)}", param="method")
    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise APIError(400, f"bootstrap must be between 0 and {MAX_BOOTSTRAP}", param="bootstrap")
    db = gs.arena_db

    def work() -> dict[str, Any]:
        outcomes = db.outcomes()
        if len({m for o in outcomes for m in o[:2]}) < 2:
            return {"method": method, "battles": len(outcomes), "models": [], "win_rate": {},
                    "predicted_win_rate": {}}
        return rate(outcomes, method=method, bootstrap=bootstrap, seed=seed).to_dict()

    try:
        return await asyncio.get_running_loop().run_in_executor(None, work)
    except InvalidParameter as exc:
        raise APIError(400, str(exc)) from None
