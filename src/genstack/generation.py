"""The vocabulary of generation: sampling parameters, messages, chunks, usage,
stop-sequence handling and the context-window rules.

This module has no heavy dependencies; every backend builds on it.

Context-window policy (documented, and the same for every backend):

* a request whose prompt plus ``max_tokens`` exceeds the window raises
  :class:`~genstack.errors.ContextLengthExceeded` before any work is done,
  unless ``on_overflow="clamp"``, which lowers ``max_tokens`` to what fits
  (the answer then ends with ``finish_reason="length"``);
* a prompt that alone fills the window always raises;
* chat history is trimmed oldest-first by :func:`fit_messages`, keeping the
  system message and the newest user turn.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable, Iterator, Literal, Sequence

from .errors import ContextLengthExceeded, InvalidParameter

__all__ = [
    "SamplingParams",
    "Message",
    "Usage",
    "Chunk",
    "TokenLogprob",
    "Completion",
    "GenerationRequest",
    "TextStream",
    "StopMatcher",
    "check_context",
    "fit_messages",
]

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token.

    ``greedy=True`` (or ``temperature=0``) always takes the most likely token;
    the other sampling fields are then ignored. ``seed`` makes sampling
    reproducible: the same prompt, parameters and seed give the same text in
    any process on the same build and thread count. With ``seed=None`` a
    random seed is drawn and reported in :attr:`Completion.seed`.
    """

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    greedy: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop or ()))
        _check_number("temperature", self.temperature, lo=0.0, hi=100.0)
        _check_int("top_k", self.top_k, lo=0)
        _check_number("top_p", self.top_p, lo=0.0, hi=1.0, lo_open=True)
        _check_number("min_p", self.min_p, lo=0.0, hi=1.0)
        _check_number("repeat_penalty", self.repeat_penalty, lo=0.0, hi=10.0, lo_open=True)
        _check_int("max_tokens", self.max_tokens, lo=1)
        if self.seed is not None:
            _check_int("seed", self.seed, lo=0, hi=2**32 - 1)
        if not isinstance(self.greedy, bool):
            raise InvalidParameter(f"greedy must be true or false, got {self.greedy!r}")
        for s in self.stop:
            if not isinstance(s, str) or s == "":
                raise InvalidParameter(f"stop sequences must be non-empty strings, got {s!r}")
        if len(self.stop) > 16:
            raise InvalidParameter(f"at most 16 stop sequences are allowed, got {len(self.stop)}")

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0.0

    def with_seed(self) -> "SamplingParams":
        """A copy with a concrete seed (drawn at random when unset)."""
        if self.seed is not None:
            return self
        return replace(self, seed=random.SystemRandom().randrange(2**31))

    def replace(self, **changes) -> "SamplingParams":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


def _check_number(name, value, *, lo, hi, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a number, got {value!r}")
    if value < lo or (lo_open and value == lo) or value > hi:
        left = "(" if lo_open else "["
        raise InvalidParameter(f"{name} must be in {left}{lo:g}, {hi:g}], got {value!r}")


def _check_int(name, value, *, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise InvalidParameter(f"{name} must be {rng}, got {value!r}")


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise InvalidParameter(f"message role must be system, user or assistant, got {self.role!r}")
        if not isinstance(self.content, str):
            raise InvalidParameter("message content must be a string")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def as_messages(items: Iterable[Message | dict]) -> list[Message]:
    out = []
    for m in items:
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict) and "role" in m and "content" in m:
            out.append(Message(m["role"], m["content"]))
        else:
            raise InvalidParameter(f"not a chat message: {m!r}")
    return out


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Chunk:
    """One piece of streamed output. The last chunk carries finish_reason and usage."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One token of a scored text (:meth:`genstack.models.base.Model.prompt_logprobs`)."""

    text: str
    #: where the token starts in the text, in characters
    offset: int
    #: log P(token | the tokens before it); None for a first token nothing precedes
    logprob: float | None
    #: the most likely tokens at this position, text → log-probability, best first
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationRequest:
    """What a backend receives: either a raw prompt or chat messages."""

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    #: "error" raises when prompt + max_tokens overflow the window; "clamp" lowers max_tokens
    on_overflow: Literal["error", "clamp"] = "error"
    #: a JSON Schema the output must satisfy; backends that can constrain decoding
    #: (llama.cpp grammars) do so, and :func:`genstack.prompts.parse_json` validates the result
    json_schema: dict | None = None

    def __post_init__(self) -> None:
        if self.json_schema is not None and not isinstance(self.json_schema, dict):
            raise InvalidParameter("json_schema must be a JSON object (a dict)")
        if (self.prompt is None) == (self.messages is None):
            raise InvalidParameter("give either a prompt or messages, not both or neither")
        if self.messages is not None:
            msgs = tuple(as_messages(self.messages))
            if not msgs:
                raise InvalidParameter("messages must not be empty")
            object.__setattr__(self, "messages", msgs)
        if self.on_overflow not in ("error", "clamp"):
            raise InvalidParameter(f"on_overflow must be 'error' or 'clamp', got {self.on_overflow!r}")


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str = ""
    seed: int | None = None
    prompt: str | None = None  # the exact text sent to the model, when known

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "seed": self.seed,
        }


class TextStream:
    """Iterate for text pieces; afterwards ``.completion`` holds the result.

    >>> stream = model.stream("Hi")            # doctest: +SKIP
    >>> for piece in stream: print(piece, end="")
    >>> stream.completion.usage
    """

    def __init__(self, chunks: Iterator[Chunk], *, model: str = "", seed: int | None = None,
                 prompt: str | None = None):
        self._chunks = chunks
        self._parts: list[str] = []
        self._model, self._seed = model, seed
        #: the exact text sent to the model (the rendered chat template for chat requests)
        self.prompt = prompt
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        finish: FinishReason = "stop"
        usage = Usage()
        for chunk in self._chunks:
            if chunk.text:
                self._parts.append(chunk.text)
                yield chunk.text
            if chunk.finish_reason is not None:
                finish = chunk.finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
        self.completion = Completion(
            text="".join(self._parts), finish_reason=finish, usage=usage,
            model=self._model, seed=self._seed, prompt=self.prompt,
        )

    def collect(self) -> Completion:
        for _ in self:
            pass
        assert self.completion is not None
        return self.completion

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class StopMatcher:
    """Cuts streamed text at the first stop sequence, holding back only what
    could still be the start of one, so no stop text ever reaches the user.

    >>> m = StopMatcher(["</s>"])
    >>> m.feed("Hello </") , m.feed("s> more")
    ('Hello ', '')
    >>> m.stopped
    True
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self._buf = ""
        self.stopped = False
        self._hold = max((len(s) for s in self.stops), default=1) - 1

    def _first_full(self) -> int:
        return min((i for i in (self._buf.find(s) for s in self.stops) if i >= 0), default=-1)

    def _first_partial(self) -> int:
        """Earliest position whose suffix is a proper prefix of a stop (could still complete)."""
        n = len(self._buf)
        for j in range(max(0, n - self._hold), n):
            tail = self._buf[j:]
            if any(len(tail) < len(s) and s.startswith(tail) for s in self.stops):
                return j
        return n

    def feed(self, text: str) -> str:
        """Add text; return what is safe to emit now.

        The result never depends on how the text was split into pieces: the
        output is cut where the earliest stop sequence *starts*, so a match is
        only acted on once no earlier, longer stop could still complete.
        """
        if self.stopped:
            return ""
        self._buf += text
        full, partial = self._first_full(), self._first_partial()
        if full >= 0 and full <= partial:
            out, self._buf, self.stopped = self._buf[:full], "", True
            return out
        keep_from = partial if full < 0 else min(partial, full)
        out, self._buf = self._buf[:keep_from], self._buf[keep_from:]
        return out

    def flush(self) -> str:
        """At the end of generation: release whatever was held back."""
        if self.stopped:
            return ""
        full = self._first_full()
        out = self._buf[:full] if full >= 0 else self._buf
        self.stopped = full >= 0
        self._buf = ""
        return out


def check_context(prompt_tokens: int, max_tokens: int, n_ctx: int, on_overflow: str = "error") -> int:
    """Return the max_tokens to use, or raise ContextLengthExceeded."""
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceeded(prompt_tokens, max_tokens, n_ctx)
    if prompt_tokens + max_tokens > n_ctx:
        if on_overflow == "clamp":
            return n_ctx - prompt_tokens
        raise ContextLengthExceeded(prompt_tokens, max_tokens, n_ctx)
    return max_tokens


def fit_messages(
    messages: Sequence[Message],
    count_tokens: Callable[[Sequence[Message]], int],
    budget: int,
) -> list[Message]:
    """Drop the oldest non-system turns until ``count_tokens(messages) <= budget``.

    System messages and the final message are always kept; if even those do not
    fit, they are returned as they are and the caller's context check reports it.
    Turns are dropped a user/assistant pair at a time so the history never starts
    with a dangling assistant reply.
    """
    msgs = list(messages)
    if count_tokens(msgs) <= budget:
        return msgs
    system = [m for m in msgs if m.role == "system"]
    turns = [m for m in msgs if m.role != "system"]
    while len(turns) > 1:
        turns.pop(0)
        while len(turns) > 1 and turns[0].role == "assistant":
            turns.pop(0)
        if count_tokens(system + turns) <= budget:
            break
    return system + turns
