"""A request under the guard, from the model to the reader: the server's path, and the red team's.

:func:`grounded` (an answer from the pipeline) and :func:`plain` (a chat
completion) yield the text a client receives, piece by piece, and end with one
:class:`Outcome`. ``genstack serve`` turns these items into SSE events or a
JSON body; ``genstack redteam --local`` joins them. Both run this code, so a
red-team figure measured in-process is a figure of the server's path.

``streaming=True`` is a streamed response: every piece passes the output guard
as it arrives, and a draft the checks reject is followed by
:func:`~genstack.rag.answer.render_tail`. ``streaming=False`` is a plain
response: the client gets the checked answer, guarded as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ..generation import Completion, Message, SamplingParams, Usage
from .answer import Answer, render_tail

__all__ = ["Outcome", "grounded", "plain", "TOKEN"]


class _Token:
    """Yielded by an unstreamed request for each piece the model produces: nothing is sent, but the
    server times the first token, and a worker can be stopped between tokens (timeout, disconnect)."""

    def __repr__(self) -> str:
        return "TOKEN"


TOKEN = _Token()


@dataclass
class Outcome:
    """How one guarded request ended."""

    #: everything the client received
    text: str
    finish_reason: str
    answer: Answer | None = None
    completion: Completion | None = None
    #: why the output guard withheld the answer ("canary", "system-prompt"), if it did
    blocked: str | None = None
    usage: Usage | None = None
    #: the exact prompt the model saw, and the decoding parameters used
    prompt: str | None = None
    params: dict[str, Any] | None = None
    #: the calls of a tool-calling turn (genstack.agents.calling.ToolCall), when it made any
    tool_calls: list | None = None


def _relay(stream, guard, sent: list[str], streaming: bool) -> Iterator[str | _Token]:
    """The pieces of ``stream`` as the client gets them: through the output guard (streaming), or a
    TOKEN per piece (unstreamed); stops once the guard blocks, and always closes the stream."""
    try:
        for piece in stream:
            if not streaming:
                yield TOKEN
                continue
            safe = guard.feed(piece)
            if safe:
                sent.append(safe)
                yield safe
            if guard.blocked:
                break
    finally:
        stream.close()


def _withheld(guard, sent: list[str], prompt: str | None, params: dict[str, Any]) -> Iterator[str | Outcome]:
    """The end of a response the output guard stopped: the notice, then the Outcome."""
    from ..guard.output import BLOCKED

    text = ("\n" if sent else "") + BLOCKED
    yield text
    yield Outcome("".join(sent) + text, "content_filter", blocked=guard.blocked, prompt=prompt, params=params)


def _close(guard, sent: list[str], streaming: bool, whole: str, after: str = ""):
    """End a response the guard did not withhold; return the text the client received. Streamed:
    the guard's held-back tail (then ``after``, guarded) goes out. Unstreamed: ``whole``, guarded."""
    if not streaming:
        return guard.finish(whole)
    tail = guard.finish() + (guard.finish(after) if after else "")
    if tail:
        sent.append(tail)
        yield tail
    return "".join(sent)


def grounded(pipeline, request, guard, *, streaming: bool = True) -> Iterator[str | Outcome]:
    """A grounded answer to ``request`` (a :class:`~genstack.rag.pipeline.RagRequest`) under ``guard``
    (a :class:`~genstack.guard.GuardSession` whose input check has passed). The guard prepares the
    request first, exactly as :func:`plain` prepares messages: what retrieval and the model see is
    redacted, and a confidential system prompt carries the canary."""
    run = pipeline.stream(guard.prepare_request(request))
    sent: list[str] = []
    yield from _relay(run, guard, sent, streaming)
    if guard.blocked:
        yield from _withheld(guard, sent, run.prompt, run.params.to_dict())
        return
    answer = run.answer
    assert answer is not None
    # after a streamed draft: the retraction or quote, when the checks rejected or replaced it
    text = yield from _close(guard, sent, streaming, answer.text, render_tail(answer))
    finish = "content_filter" if guard.blocked else "stop"
    yield Outcome(text, finish, answer=answer, blocked=guard.blocked, usage=answer.usage, prompt=answer.prompt,
                  params=answer.params)


def plain(model, messages: Sequence[Message], params: SamplingParams, guard, *, streaming: bool = True,
          json_schema: dict | None = None, on_overflow: str = "error",
          check: Callable[[list[Message]], None] | None = None) -> Iterator[str | Outcome]:
    """A chat completion of ``messages`` under ``guard``: canary and redaction in, guarded text out.
    ``check`` sees the messages as the model will (the server's prompt-size limit)."""
    prepared = guard.prepare(messages)
    if check is not None:
        check(prepared)
    ts = model.stream(messages=prepared, params=params, json_schema=json_schema, on_overflow=on_overflow)
    sent: list[str] = []
    yield from _relay(ts, guard, sent, streaming)
    if guard.blocked:
        yield from _withheld(guard, sent, ts.prompt, params.to_dict())
        return
    comp = ts.completion
    text = yield from _close(guard, sent, streaming, comp.text)
    finish = "content_filter" if guard.blocked else comp.finish_reason
    yield Outcome(text, finish, completion=comp, blocked=guard.blocked, usage=comp.usage, prompt=ts.prompt,
                  params=comp_params(params, comp))


def comp_params(params: SamplingParams, comp: Completion) -> dict[str, Any]:
    """The parameters as run: the seed the model actually used."""
    d = params.to_dict()
    if getattr(comp, "seed", None) is not None:
        d["seed"] = comp.seed
    return d
