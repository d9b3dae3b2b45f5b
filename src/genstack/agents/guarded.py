"""A tool-calling turn under the guard: the server's path for ``/v1/chat/completions`` with ``tools``.

Like :func:`genstack.rag.respond.plain`, it yields what the client receives
(answer text through the output guard, or a TOKEN per piece when unstreamed)
and ends with one :class:`~genstack.rag.respond.Outcome`, whose ``tool_calls``
hold the calls. A call's arguments pass the output guard too: a call that
would carry the system prompt or its canary out is withheld like an answer.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from ..generation import Message, SamplingParams
from ..rag.respond import TOKEN, Outcome, _withheld, comp_params
from .calling import Function, respond

__all__ = ["tool_turn"]


def tool_turn(model, messages: Sequence[Message], functions: Sequence[Function], params: SamplingParams, guard, *,
              streaming: bool = True, tool_choice: Any = "auto", parallel: bool = True, on_overflow: str = "error",
              check: Callable[[list[Message]], None] | None = None) -> Iterator[Any]:
    params = params.with_seed()

    def prepare(msgs):
        prepared = guard.prepare(msgs)
        if check is not None:
            check(prepared)
        return prepared

    items = respond(model, messages, functions, tool_choice=tool_choice, parallel=parallel, params=params,
                    on_overflow=on_overflow, prepare=prepare)
    sent: list[str] = []
    turn = None
    try:
        for item in items:
            if not isinstance(item, str):
                turn = item
            elif not streaming:
                yield TOKEN
            else:
                safe = guard.feed(item)
                if safe:
                    sent.append(safe)
                    yield safe
                if guard.blocked:
                    break
    finally:
        items.close()
    if guard.blocked:
        yield from _withheld(guard, sent, None, params.to_dict())
        return
    assert turn is not None
    comp = turn.completion
    if turn.calls:
        for call in turn.calls:
            guard.finish(call.text())
            if guard.blocked:
                yield from _withheld(guard, sent, turn.prompt, params.to_dict())
                return
        yield Outcome("", "tool_calls", completion=comp, usage=comp.usage, prompt=turn.prompt,
                      params=comp_params(params, comp), tool_calls=turn.calls)
        return
    if streaming:
        tail = guard.finish()
        if tail:
            sent.append(tail)
            yield tail
        text = "".join(sent)
    else:
        text = guard.finish(turn.content)
    finish = "content_filter" if guard.blocked else comp.finish_reason
    yield Outcome(text, finish, completion=comp, blocked=guard.blocked, usage=comp.usage, prompt=turn.prompt,
                  params=comp_params(params, comp))
