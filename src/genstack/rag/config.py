"""Every threshold and default of the grounded-answer pipeline, in one frozen object.

:class:`RagConfig` is the only place these numbers live. The CLI, the server,
``eval rag`` and the red team all build their pipeline from one, so a figure
measured by ``genstack eval rag`` is the figure of the path users run.

========================  =======  ==========================================================
field                     default  meaning
========================  =======  ==========================================================
``k``                     4        chunks retrieved per question
``mode``                  hybrid   retrieval: ``dense``, ``bm25`` or ``hybrid`` (RRF)
``min_similarity``        0.30     abstain before generating when no chunk is this similar to
                                   the question (cosine, MiniLM); 0 turns the gate off
``min_support``           0.5      share of the answer's content words that must appear in the
                                   text the model was shown
``attribution``           0.6      share of a sentence's words one source must hold for an
                                   uncited sentence to be attributed to it
``focus``                 3        most relevant sentences shown to the model (None: whole
                                   chunks); a 135M model answers better from a few sentences
``answer_tokens``         200      default answer budget (``max_tokens``)
``history_share``         0.5      most of the prompt budget chat history may take
``rewrite_tokens``        48       budget of the follow-up rewrite in chat
``injection``             strip    instruction-like sentences in sources: ``strip``, ``flag``,
                                   ``off`` (OWASP LLM01, indirect)
``template``              zero_shot  prompt template for answers
``hit_k``                 5        depth of the retrieval hit metric in ``eval rag``
``server_max_tokens``     256      answer budget cap when a server client sends no max_tokens
========================  =======  ==========================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..choices import RETRIEVAL_MODES, SOURCE_MODES
from ..errors import InvalidParameter

__all__ = ["RagConfig", "DEFAULT_CONFIG"]


def _fraction(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise InvalidParameter(f"{name} must be between 0 and 1, got {v!r}")


def _positive(name: str, v: Any, *, optional: bool = False) -> None:
    if optional and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        extra = " or None" if optional else ""
        raise InvalidParameter(f"{name} must be a positive integer{extra}, got {v!r}")


@dataclass(frozen=True)
class RagConfig:
    k: int = 4
    mode: str = "hybrid"
    min_similarity: float = 0.30
    min_support: float = 0.5
    attribution: float = 0.6
    focus: int | None = 3
    answer_tokens: int = 200
    history_share: float = 0.5
    rewrite_tokens: int = 48
    injection: str = "strip"
    template: str = "zero_shot"
    hit_k: int = 5
    server_max_tokens: int = 256

    def __post_init__(self) -> None:
        for name in ("k", "answer_tokens", "rewrite_tokens", "hit_k", "server_max_tokens"):
            _positive(name, getattr(self, name))
        _positive("focus", self.focus, optional=True)
        for name in ("min_similarity", "min_support", "attribution", "history_share"):
            _fraction(name, getattr(self, name))
        if self.mode not in RETRIEVAL_MODES:
            raise InvalidParameter(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, got {self.mode!r}")
        if self.injection not in SOURCE_MODES:
            raise InvalidParameter(f"injection must be one of {', '.join(SOURCE_MODES)}, got {self.injection!r}")
        if not isinstance(self.template, str) or not self.template:
            raise InvalidParameter(f"template must be a template name or file, got {self.template!r}")

    def replace(self, **changes: Any) -> "RagConfig":
        """A copy with ``changes``; ``None`` values are ignored except for ``focus``."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise InvalidParameter(f"unknown RAG setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None or k == "focus"})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CONFIG = RagConfig()
