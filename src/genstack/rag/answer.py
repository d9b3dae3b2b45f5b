"""Ask a collection: retrieve → fit → prompt with numbered sources → stream → check.

The steps, each visible in the result:

1. **Retrieve** ``k`` chunks (dense, BM25 or hybrid) and measure *support*,
   the best cosine similarity between the question and any chunk.
2. **Abstain early** when support is below ``min_similarity``: the model is
   not called, and the closest sources are shown.
3. **Fit**: sources are numbered in rank order and the lowest-ranked ones are
   dropped until prompt + answer budget fit the model's window.
4. **Stream** the answer; citation markers naming a source that was not given
   are removed on the fly and reported.
5. **Check**: an answer that declines ("not found …") or whose content words
   are mostly absent from the sources becomes an abstention; sentences left
   without a citation are attributed to the source that supports them.
6. **Quote**: an answer that only points at a source ("[2]"), or gives no
   number for a question that asks for one, is replaced by the shown sentence
   that best matches the question, cited (or abstains when that sentence
   does not answer).

Nothing is hidden: :attr:`Answer.prompt` is the exact text the model saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..config import Settings, load_settings
from ..errors import ContextLengthExceeded, GenstackError, InvalidParameter
from ..generation import Message, SamplingParams, Usage
from ..models.base import Model
from ..prompts.templates import PromptTemplate, resolve_template
from ..stores.base import Filters, Hit
from . import grounding
from .citations import CitationFilter

__all__ = ["Answer", "AnswerStream", "Asker", "Source", "NOT_FOUND", "INJECTION_MODES", "ask"]

NOT_FOUND = "Not found in these documents."
DEFAULT_TEMPLATE = "zero_shot"
#: below this cosine similarity (MiniLM) no chunk is about the question
DEFAULT_MIN_SIMILARITY = 0.30
#: share of the answer's content words that must appear in the sources
DEFAULT_MIN_SUPPORT = 0.5
ANSWER_TOKENS = 200
#: sentences of the retrieved chunks shown to the model (None: whole chunks); a small
#: model answers far better from a few relevant sentences than from whole chunks
DEFAULT_FOCUS = 3
#: what happens to sentences of a source that give orders to the model (OWASP LLM01, indirect):
#: "strip" removes them from what the model sees, "flag" only reports them, "off" does neither
INJECTION_MODES = ("strip", "flag", "off")


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
    #: why it abstained: "weak-retrieval", "model-declined", "unsupported" or "no-quantity"
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
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


#: how each source appears in the prompt; a template may set its own ``source_format``
SOURCE_FORMAT = "[{n}] {text}"


def format_context(sources: Sequence[Source], fmt: str = SOURCE_FORMAT) -> str:
    from ..prompts.templates import _render

    return "\n\n".join(_render(fmt, {"n": s.n, "label": s.label, "text": " ".join(s.hit.text.split())})
                       for s in sources)


class AnswerStream:
    """Iterate for the answer's text pieces; ``.answer`` is set at the end."""

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


class Asker:
    """Answers questions from one collection. Cheap to build; the model loads on first use."""

    def __init__(
        self,
        collection: str,
        *,
        model: Model | str | None = None,
        settings: Settings | None = None,
        retriever=None,
        template: str | PromptTemplate | None = None,
        k: int = 4,
        mode: str = "hybrid",
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
        min_support: float = DEFAULT_MIN_SUPPORT,
        params: SamplingParams | None = None,
        filters: Filters | None = None,
        focus: int | None = DEFAULT_FOCUS,
        injection: str = "strip",
    ):
        from ..retrieval import MODES, Retriever

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidParameter(f"k must be a positive integer, got {k!r}")
        if mode not in MODES:
            raise InvalidParameter(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        for name, v in (("min_similarity", min_similarity), ("min_support", min_support)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise InvalidParameter(f"{name} must be between 0 and 1, got {v!r}")
        self.settings = settings or load_settings()
        self.collection = collection
        self.retriever = retriever or Retriever(collection, self.settings)
        if self.retriever.store.count() == 0:
            raise GenstackError(f"collection {collection!r} is empty: ingest documents into it first")
        self._model = model
        self.template = template if isinstance(template, PromptTemplate) else resolve_template(
            template, "ask", DEFAULT_TEMPLATE, data_dir=self.settings.data_dir)
        if focus is not None and (isinstance(focus, bool) or not isinstance(focus, int) or focus < 1):
            raise InvalidParameter(f"focus must be a positive number of sentences or None, got {focus!r}")
        if injection not in INJECTION_MODES:
            raise InvalidParameter(f"injection must be one of {', '.join(INJECTION_MODES)}, got {injection!r}")
        self.k, self.mode, self.filters, self.focus, self.injection = k, mode, filters, focus, injection
        self.min_similarity, self.min_support = float(min_similarity), float(min_support)
        self.params = params or SamplingParams(greedy=True, max_tokens=ANSWER_TOKENS)

    @classmethod
    def over_documents(cls, documents: Sequence[str | tuple[str, str]], embedder, **kwargs) -> "Asker":
        """An Asker over texts handed in with the question. The user chose them, so a weak
        match never means "not in these documents" before the model has read them."""
        from ..retrieval import TextRetriever

        kwargs.setdefault("min_similarity", 0.0)
        return cls(TextRetriever.collection, retriever=TextRetriever(list(documents), embedder), **kwargs)

    @property
    def model(self) -> Model:
        if not isinstance(self._model, Model):
            from ..models.registry import get_model

            self._model = get_model(self._model, settings=self.settings)
        return self._model

    # -- the steps -------------------------------------------------------------------
    def retrieve(self, query: str) -> tuple[list[Hit], float]:
        hits = self.retriever.search(query, k=self.k, mode=self.mode, filters=self.filters)
        sims = [h.similarity for h in hits if h.similarity is not None]
        best = max(sims) if sims and self.mode == "dense" else self.retriever.best_similarity(query, self.filters)
        return hits, best

    def screen(self, sources: Sequence[Source]) -> tuple[dict[int, str], list[dict[str, Any]]]:
        """The text of each source the model may see, and the instruction-like sentences found in them."""
        texts = {s.n: s.hit.text for s in sources}
        flags: list[dict[str, Any]] = []
        if self.injection == "off":
            return texts, flags
        from ..guard.injection import instruction_sentences

        for s in sources:
            spans = instruction_sentences(s.hit.text)
            if not spans:
                continue
            action = "removed" if self.injection == "strip" else "flagged"
            flags += [{"n": s.n, "reasons": sc.reasons, "text": " ".join(s.hit.text[a:b].split()), "action": action}
                      for a, b, sc in spans]
            if self.injection == "strip":
                t, last = [], 0
                for a, b, _ in spans:
                    t += [s.hit.text[last:a], " "]
                    last = b
                texts[s.n] = "".join(t) + s.hit.text[last:]
        return texts, flags

    def rank_sentences(self, query: str, sources: Sequence[Source],
                       texts: dict[int, str] | None = None) -> list[tuple[int, int, str, float]]:
        """Every sentence of the sources as ``(n, position, sentence, similarity to the query)``, best first."""
        sents: list[tuple[int, int, str]] = []
        for s in sources:
            text = texts.get(s.n, "") if texts is not None else s.hit.text
            for j, sent in enumerate(grounding.split_passage(text)):
                sents.append((s.n, j, sent))
        if not sents:
            return []
        emb = self.retriever.embedder
        sims = emb.embed_passages([t for _, _, t in sents]) @ emb.embed_queries([query])[0]
        ranked = [(n, j, t, float(sim)) for (n, j, t), sim in zip(sents, sims)]
        return sorted(ranked, key=lambda r: -r[3])

    def focus_sources(self, query: str, sources: Sequence[Source], texts: dict[int, str] | None = None,
                      ranked: list[tuple[int, int, str, float]] | None = None) -> dict[int, str]:
        """The ``focus`` sentences of the sources most similar to the query, by source, in reading order."""
        all_texts = dict(texts) if texts else {s.n: s.hit.text for s in sources}
        if self.focus is None:
            return all_texts
        ranked = ranked if ranked is not None else self.rank_sentences(query, sources, texts)
        if len(ranked) <= self.focus:
            return all_texts
        out: dict[int, list[str]] = {}
        for n, _, sent, _ in sorted(ranked[: self.focus], key=lambda r: (r[0], r[1])):
            out.setdefault(n, []).append(sent)
        return {n: " ".join(v) for n, v in out.items()}

    def build_messages(self, question: str, sources: Sequence[Source], history: Sequence[Message] = (),
                       texts: dict[int, str] | None = None) -> list[Message]:
        fmt = str(self.template.options.get("source_format", SOURCE_FORMAT))
        shown = [s for s in sources if texts is None or s.n in texts]
        context = "\n\n".join(
            format_context([Source(s.n, Hit(s.hit.id, s.hit.source, texts[s.n] if texts else s.hit.text, s.hit.score, s.hit.metadata))], fmt)
            for s in shown)
        msgs = self.template.render(question=question, context=context, collection=self.collection)
        if history:  # chat: earlier turns go between the system message and the new question
            head = [m for m in msgs if m.role == "system"]
            msgs = head + list(history) + [m for m in msgs if m.role != "system"]
        return msgs

    def fit(self, question: str, hits: Sequence[Hit], history: Sequence[Message] = ()) -> tuple[list[Message], list[Source], int]:
        """Messages with as many top-ranked sources as fit beside the answer budget."""
        from ..generation import fit_messages

        model = self.model
        window = model.context_length or 2048
        budget = window - self.params.max_tokens
        sources = [Source(i + 1, h) for i, h in enumerate(hits)]
        history = list(history)
        if history:  # history may not crowd out the sources: keep at most half the budget
            history = fit_messages(history + [Message("user", question)], model.count_chat_tokens, budget // 2)[:-1]
        lo, hi = 0, len(sources)  # largest n whose prompt fits (prompt length grows with n)
        if model.count_chat_tokens(self.build_messages(question, sources, history)) <= budget:
            lo = hi
        else:
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if model.count_chat_tokens(self.build_messages(question, sources[:mid], history)) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
        msgs = self.build_messages(question, sources[:lo], history)
        self._fitted_history = history
        n = model.count_chat_tokens(msgs)
        if n > budget:
            raise ContextLengthExceeded(n, self.params.max_tokens, window)
        return msgs, sources[:lo], len(sources) - lo

    # -- the whole thing -------------------------------------------------------------
    def stream(self, question: str, *, history: Sequence[Message] = (), query: str | None = None) -> AnswerStream:
        if not isinstance(question, str) or not question.strip():
            raise InvalidParameter("the question is empty")
        question = question.strip()
        t0 = time.perf_counter()
        query = (query or question).strip()
        hits, best = self.retrieve(query)
        t_retrieve = time.perf_counter() - t0
        if best < self.min_similarity or not hits:
            sources = [Source(i + 1, h) for i, h in enumerate(hits)]
            answer = Answer(question, NOT_FOUND, sources=sources, abstained=True, reason="weak-retrieval",
                            similarity=best, query=query, timings={"retrieve_s": t_retrieve, "total_s": t_retrieve})
            s = AnswerStream(iter([NOT_FOUND]), None)
            s.answer = answer
            return s
        msgs, sources, dropped = self.fit(question, hits, history)
        shown, flags = self.screen(sources)
        ranked: list[tuple[int, int, str, float]] | None = None
        if self.focus:
            ranked = self.rank_sentences(query, sources, shown)
            shown = self.focus_sources(query, sources, shown, ranked)
        if self.focus or flags:
            msgs = self.build_messages(question, sources, self._fitted_history, shown)
        tstream = self.model.stream(messages=msgs, params=self.params)
        out = AnswerStream(iter(()), tstream.prompt)

        def pieces() -> Iterator[str]:
            filt = CitationFilter(len(sources))
            ttft = None
            for piece in tstream:
                text = filt.feed(piece)
                if text:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    yield text
            tail = filt.flush()
            if tail:
                yield tail
            comp = tstream.completion
            draft = comp.text.strip()
            from .citations import check_citations

            marker = self.template.options.get("answer_marker")
            final = draft.split(marker, 1)[1].strip() if marker and marker in draft else draft
            cc = check_citations(final, len(sources))
            answer = Answer(question, cc.text.strip(), sources=sources, cited=list(cc.cited),
                            invalid_citations=list(cc.invalid), similarity=best, draft=draft, query=query,
                            prompt=tstream.prompt, usage=comp.usage, dropped=dropped, flags=flags)
            self._check(answer, shown, ranked)
            total = time.perf_counter() - t0
            answer.timings = {"retrieve_s": t_retrieve, "ttft_s": ttft if ttft is not None else total, "total_s": total}
            out.answer = answer

        out._pieces = pieces()
        return out

    def ask(self, question: str, **kwargs) -> Answer:
        return self.stream(question, **kwargs).collect()

    def _check(self, a: Answer, shown: dict[int, str] | None = None,
               ranked: list[tuple[int, int, str, float]] | None = None) -> None:
        """Abstain on a declining or unsupported answer; attribute uncited sentences.

        Support is measured against the text the model was shown (the focused
        sentences), so an answer cannot borrow facts from text it never saw.
        When the model only points at a source ("[2]"), or answers a question
        that asks for a quantity without giving one, the answer is the shown
        sentence that best matches the question (a quote, with its citation):
        see :meth:`_quote`.
        """
        from .citations import CITATION

        shown = shown or {s.n: s.hit.text for s in a.sources}
        texts = [shown.get(s.n, "") for s in a.sources]
        if not a.text or grounding.declines(a.text):
            return self._abstain(a, "model-declined")
        bare = CITATION.sub(" ", a.text)
        quantity = grounding.asks_quantity(a.question)
        if a.cited and not grounding.content_words(bare, exclude=a.question):
            # the model only pointed at a source ("[2]"): quote what it was shown
            if not self._quote(a, shown, ranked, quantity):
                self._abstain(a, "no-quantity" if quantity else "unsupported")
            return
        a.support = grounding.support(bare, texts, a.question)
        if a.support is None or a.support < self.min_support:  # None: nothing beyond the question's words
            return self._abstain(a, "unsupported")
        if quantity and not self._anchored(bare, a.question, shown):
            # true and cited, but no number (or only numbers the sources give about something else)
            # does not answer "how many": quote a shown sentence that does, or abstain ("no-quantity")
            if not self._quote(a, shown, ranked, True):
                self._abstain(a, "no-quantity")
            return
        # attribute sentences the model left without a citation
        parts = []
        for sent in grounding.split_sentences(a.text):
            if not CITATION.search(sent):
                i = grounding.best_source(sent, texts, a.question)
                if i is not None:
                    n = a.sources[i].n
                    stripped = sent.rstrip()
                    end = stripped[-1] if stripped and stripped[-1] in ".!?" else ""
                    sent = (stripped[:-1] if end else stripped) + f" [{n}]" + end
                    if n not in a.cited:
                        a.cited.append(n)
                    if n not in a.attributed:
                        a.attributed.append(n)
            parts.append(sent)
        a.text = " ".join(p.strip() for p in parts)

    @staticmethod
    def _abstain(a: Answer, reason: str) -> None:
        a.abstained, a.reason, a.text = True, reason, NOT_FOUND

    @staticmethod
    def _anchored(answer: str, question: str, shown: dict[int, str]) -> bool:
        """The answer gives a number that a shown sentence about the question holds."""
        sentences = [t for text in shown.values() for t in grounding.split_passage(text)]
        return grounding.anchored_quantity(answer, question, sentences)

    def _quote(self, a: Answer, shown: dict[int, str], ranked: list[tuple[int, int, str, float]] | None,
               quantity: bool) -> bool:
        """Answer with the shown sentence most similar to the search query, cited.

        The candidate is the top sentence of the same ranking that chose what
        the model saw, and only that one: a lower-ranked sentence that merely
        holds a number is no answer. For a quantity question it must give a
        number the question does not already hold. Every word of the answer is
        then in its source. False when the top sentence does not qualify.
        """
        if ranked is None:
            ranked = self.rank_sentences(a.query or a.question, a.sources, shown)
        visible = {n: " ".join(t.split()) for n, t in shown.items()}
        top = next(((n, " ".join(t.split())) for n, _, t, _ in ranked if " ".join(t.split()) in visible.get(n, "")), None)
        if top is None or (quantity and not (grounding.gives_quantity(top[1], a.question)
                                             and grounding.about_question(top[1], a.question))):
            return False
        n, text = top
        a.text = f"{text} [{n}]"
        a.cited, a.attributed, a.extractive, a.support = [n], [], True, 1.0
        return True

    def close(self) -> None:
        self.retriever.close()


def ask(question: str, collection: str, **kwargs) -> Answer:
    """One-off question; for many, keep an :class:`Asker`."""
    a = Asker(collection, **kwargs)
    try:
        return a.ask(question)
    finally:
        a.close()
