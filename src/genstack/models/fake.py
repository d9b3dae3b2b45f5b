"""A deterministic, scripted chat model for tests and demos without weights.

It goes through the same request path as a real backend (context check, stop
sequences, max_tokens, usage) so unit tests exercise genstack's own logic.
Tokens are whitespace-delimited words (each with its trailing space).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Iterator, Sequence

from ..generation import Chunk, GenerationRequest, Message, StopMatcher, TokenLogprob, Usage, check_context
from .base import Model

__all__ = ["FakeChatModel"]

_TOKEN = re.compile(r"\s*\S+|\s+")

Responder = Callable[[GenerationRequest], str]


class FakeChatModel(Model):
    """Scripted replies, in order (cycling), or a function of the request.

    With no script it echoes: ``"You said: <last user message>"``. Sampling
    (not greedy) shuffles the reply's words with the request seed, so tests can
    check that the seed, not chance, decides the output. A schema request gets
    the scripted reply as it is (write replies that are valid JSON). Pass
    ``capabilities={"json_schema": False, ...}`` to test a backend that lacks one.
    """

    supports_schema = True
    supports_loglikelihood = True
    supports_prompt_logprobs = True

    def __init__(
        self,
        replies: Sequence[str] | None = None,
        *,
        responder: Responder | None = None,
        context_length: int = 2048,
        name: str = "fake",
        delay: float = 0.0,
        capabilities: dict[str, bool] | None = None,
        **_ignored,
    ):
        from .capabilities import CAPABILITIES

        for cap, value in (capabilities or {}).items():
            setattr(self, CAPABILITIES[cap], bool(value))
        self.name = name
        #: seconds to wait before each token (to test streaming, timeouts and cancellation)
        self.delay = delay
        #: tokens produced so far, over all requests (cancellation tests read it)
        self.produced = 0
        self._replies = list(replies or [])
        self._responder = responder
        self._n_ctx = context_length
        self._turn = 0
        #: every request received, for assertions in tests
        self.requests: list[GenerationRequest] = []

    @property
    def context_length(self) -> int:
        return self._n_ctx

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return _TOKEN.findall(text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render_chat(self, messages: Sequence[Message]) -> str:
        return "".join(f"<|{m.role}|>\n{m.content}\n" for m in messages) + "<|assistant|>\n"

    def _reply(self, request: GenerationRequest) -> str:
        if self._responder is not None:
            return self._responder(request)
        if self._replies:
            reply = self._replies[self._turn % len(self._replies)]
            self._turn += 1
            return reply
        if request.messages:
            last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        else:
            last = request.prompt or ""
        return f"You said: {last}"

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Log-probabilities for label scoring: the reply the script would give next
        decides; a continuation it starts with scores -0.1, one it contains -1,
        any other -5 (per word)."""
        reply = self._reply(GenerationRequest(prompt=prompt)).strip().lower()
        out = []
        for c in continuations:
            c_low = c.strip().lower()
            n = max(1, len(c.split()))
            out.append(-0.1 * n if reply.startswith(c_low) else (-1.0 * n if c_low in reply else -5.0 * n))
        return out

    def prompt_logprobs(self, text: str, top: int = 0, *, continuation: str = "") -> list[TokenLogprob]:
        """Words as tokens: the first unscored, a repeat of the word before it -0.5, any other
        -2.0; the top alternative at each position is the word before it (-0.5)."""
        out: list[TokenLogprob] = []
        offset = 0
        for i, tok in enumerate(self.tokenize(text) + self.tokenize(continuation)):
            if i == 0:
                out.append(TokenLogprob(tok, offset, None, {}))
            else:
                prev = out[-1].text
                lp = -0.5 if tok == prev else -2.0
                alts = {prev: -0.5} if top else {}
                if top > 1 and tok != prev:
                    alts[tok] = -2.0
                out.append(TokenLogprob(tok, offset, lp, alts))
            offset += len(tok)
        return out

    def execute(self, request: GenerationRequest) -> Iterator[Chunk]:
        self.requests.append(request)
        prompt = request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
        n_prompt = self.count_tokens(prompt)
        max_tokens = check_context(n_prompt, request.params.max_tokens, self._n_ctx, request.on_overflow)
        tokens = self.tokenize(self._reply(request))
        if not request.params.is_greedy and len(tokens) > 1:
            random.Random(request.params.seed).shuffle(tokens)
        return self._stream(tokens, n_prompt, max_tokens, request.params.stop)

    def _stream(self, tokens: list[str], n_prompt: int, max_tokens: int, stop) -> Iterator[Chunk]:
        matcher = StopMatcher(stop)
        n_out = 0
        finish = "stop"
        for tok in tokens:
            if n_out >= max_tokens:
                finish = "length"
                break
            if self.delay:
                import time

                time.sleep(self.delay)
            n_out += 1
            self.produced += 1
            out = matcher.feed(tok)
            if out:
                yield Chunk(out)
            if matcher.stopped:
                break
        tail = matcher.flush()
        if matcher.stopped:
            finish = "stop"
        yield Chunk(tail, finish_reason=finish, usage=Usage(n_prompt, n_out))  # type: ignore[arg-type]
