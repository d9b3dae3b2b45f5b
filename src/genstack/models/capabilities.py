"""What a backend can do, declared, never guessed.

Every backend class states its capabilities as plain class attributes, the
way simonw/llm's models carry ``can_stream`` and ``supports_schema``::

    class MyModel(Model):
        can_stream = True
        supports_schema = False   # cannot constrain output to a JSON Schema

Code that needs a capability calls :func:`require`, which fails with one
clear line naming the model and what it lacks; nothing falls back silently
(a backend that cannot honour ``json_schema`` never quietly ignores it).

===================  ============================  =======================================================================
capability           attribute                     meaning
===================  ============================  =======================================================================
``streaming``        ``can_stream``                yields text while it generates
``json_schema``      ``supports_schema``           output constrained to a JSON Schema
``loglikelihood``    ``supports_loglikelihood``    log-probability of given continuations (``score``)
``logprobs``         ``supports_logprobs``         per-token log-probabilities of a token sequence (perplexity)
``prompt_logprobs``  ``supports_prompt_logprobs``  every token of a text with its log-probability and the top alternatives
``batching``         ``supports_batching``         decodes several requests in one batch
``concurrency``      ``supports_concurrency``      safe to call from several threads at once (a remote server)
``tools``            ``supports_tools``            tool calls valid by construction (a grammar)
``native_tools``     ``supports_native_tools``     the backend takes OpenAI ``tools`` itself (a remote server's own function calling)
``embeddings``       ``supports_embeddings``       turns texts into vectors
===================  ============================  =======================================================================
"""

from __future__ import annotations

from typing import Any

from ..errors import GenstackError

__all__ = ["CAPABILITIES", "UnsupportedCapability", "capabilities", "require", "supports"]

CAPABILITIES: dict[str, str] = {
    "streaming": "can_stream",
    "json_schema": "supports_schema",
    "loglikelihood": "supports_loglikelihood",
    "logprobs": "supports_logprobs",
    "prompt_logprobs": "supports_prompt_logprobs",
    "batching": "supports_batching",
    "concurrency": "supports_concurrency",
    "tools": "supports_tools",
    "native_tools": "supports_native_tools",
    "embeddings": "supports_embeddings",
}

_NEEDED_FOR = {
    "json_schema": "structured (JSON Schema) output",
    "loglikelihood": "scoring continuations (label tasks, multiple-choice benchmarks)",
    "logprobs": "perplexity",
    "prompt_logprobs": "log-probabilities of a prompt's tokens (echo + logprobs on /v1/completions)",
    "batching": "continuous batching (--batch)",
    "concurrency": "serving several requests at once without a lock",
    "tools": "tool calling",
    "native_tools": "passing tools to the server's own function calling",
    "embeddings": "embedding texts",
    "streaming": "streaming",
}


class UnsupportedCapability(GenstackError):
    """A backend was asked for something it declares it cannot do."""


def _attr(name: str) -> str:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise ValueError(f"unknown capability {name!r}; known: {', '.join(CAPABILITIES)}") from None


def supports(backend: Any, name: str) -> bool:
    return bool(getattr(backend, _attr(name), False))


def capabilities(backend: Any) -> dict[str, bool]:
    """{capability: declared?} for a model or embedder (instance or class)."""
    return {name: bool(getattr(backend, attr, False)) for name, attr in CAPABILITIES.items()}


def require(backend: Any, name: str) -> None:
    """Raise :class:`UnsupportedCapability` unless ``backend`` declares ``name``."""
    if not supports(backend, name):
        who = getattr(backend, "name", None) or type(backend).__name__
        raise UnsupportedCapability(
            f"{who!r} ({type(backend).__name__}) does not support {name}: needed for {_NEEDED_FOR[name]}; "
            "use a model whose backend declares it (genstack models list shows capabilities)")
