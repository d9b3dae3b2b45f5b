"""The one interface every generator implements.

A backend subclasses :class:`Model` and implements a single method,
:meth:`Model.execute`, which streams :class:`~genstack.generation.Chunk`
objects for a :class:`~genstack.generation.GenerationRequest`. Everything
else (collecting text, chat convenience, token counting for history
trimming) has a working default built on that method and may be overridden.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator, Sequence

from ..generation import (
    Chunk,
    Completion,
    GenerationRequest,
    Message,
    TokenLogprob,
    SamplingParams,
    TextStream,
    as_messages,
)

__all__ = ["Model"]


class Model(ABC):
    """A text generator. Subclasses implement :meth:`execute`; see the module docs."""

    #: registry name or file path this instance was created from
    name: str = "model"

    # -- declared capabilities (see genstack.models.capabilities) -----------------
    can_stream: bool = True
    supports_schema: bool = False
    supports_loglikelihood: bool = False
    supports_logprobs: bool = False
    supports_prompt_logprobs: bool = False
    supports_batching: bool = False
    supports_concurrency: bool = False
    supports_tools: bool = False
    #: takes OpenAI ``tools`` itself (:meth:`chat_tools`): a remote server's own function calling
    supports_native_tools: bool = False
    supports_embeddings: bool = False
    #: log P(``<tool_call>``) from which ``tool_choice="auto"`` calls a function (calibrated per model
    #: on BFCL, see genstack.agents.calling); None: the model's free generation decides alone
    tool_call_threshold: float | None = None

    # -- the one required method -------------------------------------------------
    @abstractmethod
    def execute(self, request: GenerationRequest) -> Iterator[Chunk]:
        """Stream the answer to ``request``.

        The request's params always carry a concrete seed. The last chunk must
        carry ``finish_reason`` ("stop" or "length") and ``usage``.
        """

    # -- optional, with defaults ---------------------------------------------------
    @property
    def context_length(self) -> int | None:
        """The context window in tokens, when the backend knows it."""
        return None

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``; backends with a tokenizer override this."""
        return max(1, len(text) // 4) if text else 0

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The exact prompt text a chat request becomes (for --show-prompt)."""
        out = [f"<{m.role}>\n{m.content}\n" for m in messages]
        return "".join(out) + "<assistant>\n"

    def shown_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text recorded for a chat request (--show-prompt, the request log); a backend
        whose exact rendering costs a round trip may show an approximation here."""
        return self.render_chat(messages)

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        return self.count_tokens(self.render_chat(messages))

    def warm_up(self) -> None:
        """Load weights now rather than on the first request."""

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation after ``prompt`` (summed over its tokens).

        Used for label scoring (sentiment, zero-shot classification) and
        multiple-choice evaluation. Backends without logits raise.
        """
        from .capabilities import require

        require(self, "loglikelihood")
        raise NotImplementedError(f"{type(self).__name__} declares supports_loglikelihood but has no score()")

    def loglikelihood(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, bool | None]]:
        """(log-probability, whether greedy decoding would produce it) per continuation.

        The default builds on :meth:`score` and cannot tell greediness (None).
        """
        return [(lp, None) for lp in self.score(prompt, continuations)]

    def score_tokens(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        """(log-probability, how many tokens it sums) per continuation, for per-token normalisation.
        The default counts each continuation's tokens on its own (without the BOS token)."""
        bos = 1 if self.count_tokens("a") > 1 else 0
        return [(lp, max(1, self.count_tokens(c) - bos)) for lp, c in zip(self.score(prompt, continuations), continuations)]

    def prompt_logprobs(self, text: str, top: int = 0, *, continuation: str = "") -> list[TokenLogprob]:
        """Every token of ``text`` with log P(token | the tokens before it) and, when ``top`` > 0, the
        ``top`` most likely tokens at its position: what an OpenAI server returns for a completion
        request with ``echo`` and ``logprobs``. The token texts joined are ``text``. A
        ``continuation`` (generated text) is tokenized on its own and scored after ``text``, so the
        prompt's tokens are the prompt's, not merged with the text that follows."""
        from .capabilities import require

        require(self, "prompt_logprobs")
        raise NotImplementedError(f"{type(self).__name__} declares supports_prompt_logprobs but has no prompt_logprobs()")

    def chat_tools(self, messages: Sequence[dict], tools: Sequence[dict], *, tool_choice: Any = "auto",
                   parallel: bool = True, params: SamplingParams | None = None) -> tuple[str, list[dict], Completion]:
        """One assistant turn from a backend that does function calling itself: OpenAI-format
        ``messages`` (tool calls and ``role: "tool"`` results included) and ``tools`` in, and out
        (the answer text, the raw OpenAI ``tool_calls``, the completion). Callers validate the calls
        (:func:`genstack.agents.calling.respond`)."""
        from .capabilities import require

        require(self, "native_tools")
        raise NotImplementedError(f"{type(self).__name__} declares supports_native_tools but has no chat_tools()")

    def close(self) -> None:
        """Free what the model holds (weights, connections); the default holds nothing."""

    # -- conveniences built on execute() ---------------------------------------
    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict] | None = None,
        params: SamplingParams | None = None,
        on_overflow: str = "error",
        json_schema: dict | None = None,
        **overrides,
    ) -> TextStream:
        """Stream text pieces; ``.completion`` is set once the stream is exhausted."""
        if json_schema is not None:
            from .capabilities import require

            require(self, "json_schema")
        params = (params or SamplingParams())
        if overrides:
            params = params.replace(**overrides)
        params = params.with_seed()
        request = GenerationRequest(
            prompt=prompt,
            messages=tuple(as_messages(messages)) if messages is not None else None,
            params=params,
            on_overflow=on_overflow,  # type: ignore[arg-type]
            json_schema=json_schema,
        )
        rendered = prompt if prompt is not None else self.shown_prompt(request.messages or ())
        return TextStream(self.execute(request), model=self.name, seed=params.seed, prompt=rendered)

    def generate(self, prompt: str | None = None, **kwargs) -> Completion:
        """Generate to the end and return the :class:`Completion`."""
        return self.stream(prompt, **kwargs).collect()

    def chat(self, messages: Sequence[Message | dict], **kwargs) -> Completion:
        return self.stream(messages=messages, **kwargs).collect()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
