"""The one grounded-answer pipeline behind ``ask``, ``chat``, the server, ``eval rag`` and the red team.

A :class:`Pipeline` is built from a :class:`~genstack.rag.config.RagConfig`,
a retriever and a model, and holds nothing that belongs to a request: it can
serve any number of requests at once. :meth:`Pipeline.stream` turns one
:class:`RagRequest` (question, history, decoding parameters, JSON Schema,
filters) into a :class:`Run`, which owns all of that request's state and runs
the stages in this fixed order:

1. ``condense``: with chat history, the follow-up becomes a standalone search query;
2. ``retrieve``: ``k`` chunks, and the best cosine similarity of any chunk to the
   query; below ``min_similarity`` the answer abstains here (check ``retrieval``)
   and the model is never called;
3. ``screen``: sentences of the sources that give orders to the model are removed
   (or flagged), OWASP LLM01;
4. ``focus``: only the ``focus`` sentences most similar to the query are shown;
5. ``fit``: the lowest-ranked sources are dropped until the prompt, measured on
   the exact text that will be sent, fits beside the answer budget;
6. ``generate``: the answer streams; citations to sources not given are removed;
7. ``check``: the named checks of :mod:`genstack.rag.checks`, each recorded on
   ``answer.checks``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from ..config import Settings, load_settings
from ..errors import ContextLengthExceeded, GenstackError, InvalidParameter
from ..generation import Message, SamplingParams
from ..models.base import Model
from ..prompts.templates import PromptTemplate, resolve_template
from ..stores.base import Filters, Hit
from . import grounding
from .answer import SOURCE_FORMAT, Answer, AnswerStream, Source, format_context
from .checks import CHECKS, NOT_FOUND, STRUCTURED_CHECKS, CheckContext, Verdict, run_checks
from .citations import CitationFilter, check_citations
from .config import DEFAULT_CONFIG, RagConfig

__all__ = ["Pipeline", "RagRequest", "Run", "STAGES", "Asker", "ask", "rewrite_query"]

STAGES = ("condense", "retrieve", "screen", "focus", "fit", "generate", "check")


@dataclass(frozen=True)
class RagRequest:
    """One question to the pipeline. Everything that varies per request is here."""

    question: str
    history: tuple[Message, ...] = ()
    #: the search query; None: the question, or the condensed follow-up when there is history
    query: str | None = None
    #: decoding parameters; None: greedy with the config's answer budget
    params: SamplingParams | None = None
    #: a JSON Schema: the answer is JSON valid for it (grammar-constrained where the model can)
    schema: dict | None = None
    #: metadata filters; None: the pipeline's own
    filters: Filters | None = None
    #: the application's own system prompt (an API client's system message): sent below the
    #: grounding rules, which it cannot replace
    system: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise InvalidParameter("the question is empty")
        object.__setattr__(self, "history", tuple(self.history))


def rewrite_query(model: Model, question: str, history: Sequence[Message], *, template=None, data_dir=None,
                  max_tokens: int = DEFAULT_CONFIG.rewrite_tokens) -> str:
    """A standalone search query for ``question`` given the conversation so far.

    With no history the question is the query. A small model's rewrite is
    kept only if it is a single short line that shares a content word with
    the question or the history and adds one; otherwise the previous user
    question is prepended to the new one, which keeps the subject in the query.
    """
    if not history:
        return question
    t = template or resolve_template(None, "condense", "zero_shot", data_dir=data_dir)
    recent = list(history)[-4:]
    convo = "\n".join(f"{m.role.capitalize()}: {' '.join(m.content.split())[:300]}" for m in recent)
    msgs = t.render(history=convo, question=question)
    out = model.generate(messages=msgs, params=SamplingParams(greedy=True, max_tokens=max_tokens, stop=("\n",))).text
    out = out.strip().strip('"').strip()
    for prefix in ("Rewritten question:", "Question:"):
        if out.lower().startswith(prefix.lower()):
            out = out[len(prefix):].strip()
    last_user = next((m.content for m in reversed(history) if m.role == "user"), "")
    if rewrite_is_a_question(out, question, last_user):
        return out
    return f"{last_user.strip()} {question}".strip()


def rewrite_is_a_question(rewrite: str, question: str, last_user: str) -> bool:
    """Whether a model's rewrite of follow-up ``question`` can be the search query.

    Small models often answer instead of rewriting ("The error codes mean the kettle has a
    3-year warranty [1]" for "What should I do about E3?"), and searching with an answer finds
    the answer's sources, not the question's. So a rewrite counts only if it is one short
    question, quotes no citation marker, keeps at least half of the follow-up's own content
    words (what is asked), and adds a word from the conversation (its subject)."""
    if not rewrite or len(rewrite) > 300 or not rewrite.endswith("?") or re.search(r"\[\d+\]", rewrite):
        return False
    words = set(grounding.content_words(rewrite))
    asked = set(grounding.content_words(question))
    if asked and len(asked & words) * 2 < len(asked):
        return False
    added = words - asked
    return bool(added & set(grounding.content_words(last_user)))


@dataclass
class Run(AnswerStream):
    """One request going through the pipeline: every piece of per-request state lives here."""

    request: RagRequest = None  # type: ignore[assignment]
    params: SamplingParams = None  # type: ignore[assignment]
    query: str = ""
    filters: Filters | None = None
    hits: list[Hit] = field(default_factory=list)
    best: float = 0.0
    sources: list[Source] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    #: the text of each source as the model sees it (after screening and focus)
    shown: dict[int, str] = field(default_factory=dict)
    flags: list[dict[str, Any]] = field(default_factory=list)
    ranked: list[tuple[int, int, str, float]] | None = None
    messages: list[Message] = field(default_factory=list)
    dropped: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    t0: float = 0.0

    def __post_init__(self) -> None:
        AnswerStream.__init__(self, iter(()), None)


class Pipeline:
    """Grounded answers from one retriever and one model; stateless, safe to share.

    ``Pipeline(retriever, model, config)`` — ``model`` may be a loaded
    :class:`~genstack.models.base.Model`, a registry name or None (the
    default), loaded on first use.
    """

    def __init__(self, retriever, model: Model | str | None = None, config: RagConfig = DEFAULT_CONFIG, *,
                 template: str | PromptTemplate | None = None, settings: Settings | None = None,
                 filters: Filters | None = None, collection: str | None = None):
        if not isinstance(config, RagConfig):
            raise InvalidParameter(f"config must be a RagConfig, got {type(config).__name__}")
        self.config = config
        self.settings = settings or load_settings()
        self.retriever = retriever
        self.collection = collection or getattr(retriever, "collection", "")
        if self.retriever.store.count() == 0:
            raise GenstackError(f"collection {self.collection!r} is empty: ingest documents into it first")
        self._model = model
        self.template = template if isinstance(template, PromptTemplate) else resolve_template(
            template, "ask", config.template, data_dir=self.settings.data_dir)
        self.filters = filters

    @classmethod
    def for_collection(cls, collection: str, *, model: Model | str | None = None, config: RagConfig = DEFAULT_CONFIG,
                       settings: Settings | None = None, embedder=None, **kwargs) -> "Pipeline":
        from ..retrieval import Retriever

        settings = settings or load_settings()
        return cls(Retriever(collection, settings, embedder=embedder), model, config, settings=settings, **kwargs)

    @classmethod
    def over_documents(cls, documents: Sequence[str | tuple[str, str]], embedder, *, model=None,
                       config: RagConfig = DEFAULT_CONFIG, **kwargs) -> "Pipeline":
        """A pipeline over texts handed in with the question. The user chose them, so a weak
        match never means "not in these documents" before the model has read them."""
        from ..retrieval import TextRetriever

        return cls(TextRetriever(list(documents), embedder), model, config.replace(min_similarity=0.0),
                   collection=TextRetriever.collection, **kwargs)

    @property
    def model(self) -> Model:
        if not isinstance(self._model, Model):
            from ..models.registry import get_model

            self._model = get_model(self._model, settings=self.settings)
        return self._model

    def default_params(self) -> SamplingParams:
        return SamplingParams(greedy=True, max_tokens=self.config.answer_tokens)

    # -- the stages ------------------------------------------------------------------
    def condense(self, run: Run) -> None:
        req = run.request
        if req.query:
            run.query = req.query.strip()
        elif req.history:
            run.query = rewrite_query(self.model, run.request.question.strip(), req.history,
                                      data_dir=self.settings.data_dir, max_tokens=self.config.rewrite_tokens)
        else:
            run.query = req.question.strip()

    def retrieve(self, run: Run) -> None:
        c = self.config
        run.hits = self.retriever.search(run.query, k=c.k, mode=c.mode, filters=run.filters)
        sims = [h.similarity for h in run.hits if h.similarity is not None]
        run.best = max(sims) if sims and c.mode == "dense" else self.retriever.best_similarity(run.query, run.filters)
        run.sources = [Source(i + 1, h) for i, h in enumerate(run.hits)]
        weak = run.best < c.min_similarity or not run.hits
        run.verdicts.append(Verdict("retrieval", not weak,
                                    f"best similarity {run.best:.2f} {'<' if weak else '>='} {c.min_similarity:.2f}"
                                    + ("" if run.hits else " (no chunks matched)"),
                                    "weak-retrieval" if weak else None, weak))

    def screen(self, run: Run) -> None:
        """The text of each source the model may see, and the instruction-like sentences found in them."""
        run.shown = {s.n: s.hit.text for s in run.sources}
        mode = self.config.injection
        if mode == "off":
            return
        from ..guard.injection import screen_untrusted

        for s in run.sources:
            shown, flags = screen_untrusted(s.hit.text, mode)
            run.flags += [{"n": s.n, **f} for f in flags]
            run.shown[s.n] = shown

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

    def focus(self, run: Run) -> None:
        """Keep the ``focus`` sentences of the sources most similar to the query, by source, in reading order."""
        n_focus = self.config.focus
        if n_focus is None:
            return
        run.ranked = self.rank_sentences(run.query, run.sources, run.shown)
        if len(run.ranked) <= n_focus:
            return
        out: dict[int, list[str]] = {}
        for n, _, sent, _ in sorted(run.ranked[:n_focus], key=lambda r: (r[0], r[1])):
            out.setdefault(n, []).append(sent)
        run.shown = {n: " ".join(v) for n, v in out.items()}

    def build_messages(self, question: str, sources: Sequence[Source], history: Sequence[Message] = (),
                       texts: dict[int, str] | None = None, system: str | None = None) -> list[Message]:
        """The exact messages sent: the template with the shown sources numbered, history before the
        question, and the application's ``system`` prompt ranked below the template's grounding rules:
        appended to the template's system message, or (the built-in templates keep their rules in the
        user turn) sent as the system message, so the rules are the last instruction the model reads."""
        fmt = str(self.template.options.get("source_format", SOURCE_FORMAT))
        shown = [s for s in sources if texts is None or s.n in texts]
        context = "\n\n".join(
            format_context([Source(s.n, Hit(s.hit.id, s.hit.source, texts[s.n] if texts else s.hit.text,
                                            s.hit.score, s.hit.metadata))], fmt)
            for s in shown)
        msgs = self.template.render(question=question, context=context, collection=self.collection)
        if system and system.strip():
            i = next((j for j, m in enumerate(msgs) if m.role == "system"), None)
            if i is None:
                msgs = [Message("system", system.strip())] + list(msgs)
            else:
                msgs = list(msgs)
                msgs[i] = Message("system", f"{msgs[i].content.rstrip()}\n\n{system.strip()}")
        if history:  # chat: earlier turns go between the system message and the new question
            head = [m for m in msgs if m.role == "system"]
            msgs = head + list(history) + [m for m in msgs if m.role != "system"]
        return msgs

    def fit(self, run: Run) -> None:
        """As many top-ranked sources as fit beside the answer budget, measured on the text that is sent."""
        from ..generation import fit_messages

        model = self.model
        window = model.context_length or 2048
        budget = window - run.params.max_tokens
        question = run.request.question.strip()
        history = list(run.request.history)
        if history:  # history may not crowd out the sources
            history = fit_messages(history + [Message("user", question)], model.count_chat_tokens,
                                   int(budget * self.config.history_share))[:-1]
        sources = run.sources

        def build(n: int) -> list[Message]:
            return self.build_messages(question, sources[:n], history, run.shown, run.request.system)

        lo, hi = 0, len(sources)  # the largest n whose prompt fits (prompt length grows with n)
        if model.count_chat_tokens(build(hi)) <= budget:
            lo = hi
        else:
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if model.count_chat_tokens(build(mid)) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
        run.messages = build(lo)
        n = model.count_chat_tokens(run.messages)
        if n > budget:
            raise ContextLengthExceeded(n, run.params.max_tokens, window)
        run.history, run.dropped = history, len(sources) - lo
        run.sources = sources[:lo]
        run.shown = {k: v for k, v in run.shown.items() if k <= lo}

    # -- running one request ---------------------------------------------------------
    def stream(self, request: RagRequest | str, **kwargs) -> Run:
        """Run the stages up to generation now (errors surface here); iterate the result for the answer."""
        if isinstance(request, str):
            request = RagRequest(request, **kwargs)
        elif kwargs:
            raise InvalidParameter("pass either a RagRequest or a question with keyword arguments")
        if request.schema is not None:
            from ..models.capabilities import require

            require(self.model, "json_schema")
        run = self.prepare(request)
        if run.verdicts[-1].settled:
            answer = self._answer(run, NOT_FOUND, abstained=True, reason="weak-retrieval")
            answer.timings = {"retrieve_s": run.timings["retrieve_s"], "total_s": run.timings["retrieve_s"]}
            run.answer = answer
            run._pieces = iter([NOT_FOUND])
            return run
        tstream = self.model.stream(messages=run.messages, params=run.params, json_schema=request.schema)
        run.prompt = tstream.prompt
        run._pieces = self._generate(run, tstream)
        return run

    def prepare(self, request: RagRequest) -> Run:
        """Every stage before generation: ``run.messages`` is then the exact prompt the model gets
        (what ``--show-prompt`` shows and what ``genstack tune rag-data`` trains on); when retrieval is
        too weak the run stops there, its last verdict settled (the pipeline answers "not found")."""
        # the seed is drawn now, so the answer records the parameters it really ran with
        run = Run(request=request, params=(request.params or self.default_params()).with_seed(),
                  filters=request.filters if request.filters is not None else self.filters)
        run.t0 = time.perf_counter()
        self.condense(run)
        self.retrieve(run)
        run.timings["retrieve_s"] = time.perf_counter() - run.t0
        if run.verdicts[-1].settled:
            return run
        self.screen(run)
        self.focus(run)
        self.fit(run)
        return run

    def ask(self, request: RagRequest | str, **kwargs) -> Answer:
        return self.stream(request, **kwargs).collect()

    def _answer(self, run: Run, text: str, **kw) -> Answer:
        return Answer(run.request.question.strip(), text, sources=run.sources, similarity=run.best, query=run.query,
                      flags=run.flags, dropped=run.dropped, checks=run.verdicts, params=run.params.to_dict(),
                      schema=run.request.schema, **kw)

    def _generate(self, run: Run, tstream) -> Iterator[str]:
        structured = run.request.schema is not None
        filt = None if structured else CitationFilter(len(run.sources))
        ttft = None
        try:
            for piece in tstream:
                text = piece if filt is None else filt.feed(piece)
                if text:
                    if ttft is None:
                        ttft = time.perf_counter() - run.t0
                    yield text
            tail = filt.flush() if filt is not None else ""
            if tail:
                yield tail
        finally:
            tstream.close()
        comp = tstream.completion
        draft = comp.text.strip()
        if structured and comp.finish_reason == "length":
            raise GenstackError(f"the JSON was cut off at {run.params.max_tokens} tokens; raise max_tokens")
        marker = self.template.options.get("answer_marker")
        final = draft.split(marker, 1)[1].strip() if marker and marker in draft and not structured else draft
        cc = check_citations(final, len(run.sources))
        answer = self._answer(run, final if structured else cc.text.strip(), draft=draft,
                              cited=[] if structured else list(cc.cited),
                              invalid_citations=[] if structured else list(cc.invalid),
                              prompt=tstream.prompt, usage=comp.usage)
        self.check(run, answer)
        total = time.perf_counter() - run.t0
        answer.timings = {"retrieve_s": run.timings["retrieve_s"], "ttft_s": ttft if ttft is not None else total,
                          "total_s": total}
        run.answer = answer

    def check(self, run: Run, answer: Answer) -> None:
        """The ``check`` stage: the named checks in order, each verdict recorded on the answer."""
        ctx = CheckContext(answer, run.shown or {s.n: s.hit.text for s in answer.sources}, self.config,
                           rank=lambda: run.ranked if run.ranked is not None else self.rank_sentences(
                               run.query, answer.sources, run.shown))
        answer.checks = list(run.verdicts) + run_checks(ctx, STRUCTURED_CHECKS if answer.schema is not None else CHECKS)
        if answer.schema is not None and answer.abstained:
            answer.data = None
        if answer.schema is not None and not answer.abstained and answer.checks[-1].reason == "invalid-json":
            raise GenstackError(answer.checks[-1].detail)

    def close(self) -> None:
        self.retriever.close()


class Asker(Pipeline):
    """A :class:`Pipeline` on a named collection, configured by keyword (the convenient front door).

    ``Asker("notes", k=6, mode="dense")`` is ``Pipeline.for_collection("notes",
    config=RagConfig(k=6, mode="dense"))``; ``params`` and ``filters`` are the
    defaults of requests that bring none of their own.
    """

    def __init__(self, collection: str, *, model: Model | str | None = None, settings: Settings | None = None,
                 retriever=None, template: str | PromptTemplate | None = None, config: RagConfig | None = None,
                 params: SamplingParams | None = None, filters: Filters | None = None, **options: Any):
        from ..retrieval import Retriever

        config = (config or DEFAULT_CONFIG).replace(**options) if options else (config or DEFAULT_CONFIG)
        settings = settings or load_settings()
        super().__init__(retriever or Retriever(collection, settings), model, config, template=template,
                         settings=settings, filters=filters, collection=collection)
        self.params = params or SamplingParams(greedy=True, max_tokens=config.answer_tokens)

    @classmethod
    def over_documents(cls, documents: Sequence[str | tuple[str, str]], embedder, **kwargs) -> "Asker":
        from ..retrieval import TextRetriever

        kwargs.setdefault("min_similarity", 0.0)
        return cls(TextRetriever.collection, retriever=TextRetriever(list(documents), embedder), **kwargs)

    def default_params(self) -> SamplingParams:
        return self.params


def ask(question: str, collection: str, **kwargs) -> Answer:
    """One question to a collection; for many, keep an :class:`Asker` (or a :class:`Pipeline`)."""
    a = Asker(collection, **kwargs)
    try:
        return a.ask(question)
    finally:
        a.close()
