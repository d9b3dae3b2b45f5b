"""What a grounded answer is: :class:`Source`, :class:`Answer`, :class:`AnswerStream`,
and :func:`render_tail`, the one wording of a retraction or a quote after a streamed draft.

The pipeline that produces answers is :mod:`genstack.rag.pipeline`.
Nothing is hidden: :attr:`Answer.prompt` is the exact text the model saw and
:attr:`Answer.checks` says what every check found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..generation import Usage
from ..stores.base import Hit
from .checks import NOT_FOUND, Verdict

__all__ = ["Answer", "AnswerStream", "Source", "NOT_FOUND", "render_tail", "RETRACTED", "QUOTED",
           "format_context", "SOURCE_FORMAT"]

#: what follows a streamed draft that the checks rejected, or replaced with a quote
RETRACTED = "(Retracted: the sources do not support the answer above.)"
QUOTED = "(From the sources:)"


@dataclass
class Source:
    """A chunk given to the model as source ``[n]``."""

    n: int
    hit: Hit

    @property
    def label(self) -> str:
        md = self.hit.metadata
        name = Path(self.hit.source).name if self.hit.source else self.hit.id
        where = []
        if md.get("page"):
            where.append(f"p. {md['page']}")
        if md.get("heading_path"):
            hp = md["heading_path"]
            where.append(" › ".join(hp) if isinstance(hp, list) else str(hp))
        return name + (" — " + ", ".join(where) if where else "")

    def snippet(self, width: int = 160) -> str:
        import re

        text = " ".join(re.sub(r"(?m)^#{1,6}\s+", "", self.hit.text).split())
        return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + "…"

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "label": self.label, "source": self.hit.source, "id": self.hit.id,
                "score": self.hit.score, "similarity": self.hit.similarity, "text": self.hit.text,
                "metadata": self.hit.metadata}


@dataclass
class Answer:
    question: str
    text: str
    sources: list[Source] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    #: sources attached by genstack to sentences the model left uncited
    attributed: list[int] = field(default_factory=list)
    abstained: bool = False
    #: why it abstained: "weak-retrieval", "model-declined", "unsupported", "no-quantity" or "no-person"
    reason: str | None = None
    #: best cosine similarity between the question and any chunk
    similarity: float = 0.0
    #: share of the answer's content words found in the sources
    support: float | None = None
    draft: str = ""  # the model's own text, before the checks
    #: the model only cited a source, so the answer quotes what it was shown of it
    extractive: bool = False
    query: str = ""  # the search query (differs from the question in chat)
    prompt: str | None = None
    usage: Usage | None = None
    dropped: int = 0  # sources dropped to fit the window
    #: sentences of the sources that read as orders to the model: {"n", "reasons", "text", "action"}
    flags: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: what each named check found, in the order they ran
    checks: list[Verdict] = field(default_factory=list)
    #: the decoding parameters this answer was generated with
    params: dict[str, Any] | None = None
    #: a structured answer: the JSON Schema asked for and the parsed, validated value
    schema: dict | None = None
    data: Any = None

    @property
    def cited_sources(self) -> list[Source]:
        return [s for s in self.sources if s.n in self.cited]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "answer": self.text, "abstained": self.abstained, "reason": self.reason,
            "cited": self.cited, "invalid_citations": self.invalid_citations, "attributed": self.attributed,
            "extractive": self.extractive,
            "similarity": round(self.similarity, 4),
            "support": None if self.support is None else round(self.support, 4),
            "query": self.query, "draft": self.draft,
            "sources": [s.to_dict() for s in self.sources], "dropped_sources": self.dropped,
            "usage": self.usage.to_dict() if self.usage else None,
            "flags": self.flags,
            "checks": [v.to_dict() for v in self.checks],
            "params": self.params,
            **({"data": self.data} if self.schema is not None else {}),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


#: how each source appears in the prompt; a template may set its own ``source_format``
SOURCE_FORMAT = "[{n}] {text}"


def format_context(sources: Sequence[Source], fmt: str = SOURCE_FORMAT) -> str:
    from ..prompts.templates import _render

    return "\n\n".join(_render(fmt, {"n": s.n, "label": s.label, "text": " ".join(s.hit.text.split())})
                       for s in sources)


class AnswerStream:
    """Iterate for the answer's text pieces; ``.answer`` is set at the end.

    ``.answer`` is already set before iterating when the answer was settled
    without calling the model (an abstention on weak retrieval).
    """

    def __init__(self, pieces: Iterator[str], prompt: str | None):
        self._pieces = pieces
        self.prompt = prompt
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces

    def collect(self) -> Answer:
        for _ in self:
            pass
        assert self.answer is not None
        return self.answer

    def close(self) -> None:
        """Stop generating (the answer stays unset unless it was already settled)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


def render_tail(answer: Answer) -> str:
    """What a reader of the streamed draft must see next so that the checked answer is what they end on.

    "" when the draft stands (attributed citations aside); a retraction and
    "Not found in these documents." when a check rejected a draft; the quote
    when the answer became a quote from the sources. The CLI and the server
    both print exactly this.
    """
    if answer.extractive:
        return f"\n\n{QUOTED} {answer.text}"
    if answer.abstained and answer.draft and answer.reason != "weak-retrieval":
        if answer.reason == "model-declined":
            return f"\n\n{answer.text}"
        return f"\n\n{RETRACTED} {answer.text}"
    return ""


