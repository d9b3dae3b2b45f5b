"""Multi-turn chat over a collection, with memory.

Each turn: the follow-up question is rewritten into a standalone search query
from the history (with the ``condense`` template), the query retrieves
sources, and the answer is generated with the history trimmed to fit the
window beside the sources. Turns persist in a :class:`SessionStore`.
"""

from __future__ import annotations

from typing import Sequence

from ..generation import Message, SamplingParams
from ..prompts.templates import resolve_template
from . import grounding
from .answer import Answer, AnswerStream, Asker
from .sessions import Session, SessionStore

__all__ = ["ChatSession", "rewrite_query"]

REWRITE_TOKENS = 48


def rewrite_query(model, question: str, history: Sequence[Message], *, template=None, data_dir=None) -> str:
    """A standalone search query for ``question`` given the conversation so far.

    With no history the question is the query. A small model's rewrite is
    kept only if it is a single short line that shares a content word with
    the question or the history; otherwise the previous user question is
    prepended to the new one, which keeps the subject in the query.
    """
    if not history:
        return question
    t = template or resolve_template(None, "condense", "zero_shot", data_dir=data_dir)
    recent = list(history)[-4:]
    convo = "\n".join(f"{m.role.capitalize()}: {' '.join(m.content.split())[:300]}" for m in recent)
    msgs = t.render(history=convo, question=question)
    out = model.generate(messages=msgs, params=SamplingParams(greedy=True, max_tokens=REWRITE_TOKENS, stop=("\n",))).text
    out = out.strip().strip('"').strip()
    for prefix in ("Rewritten question:", "Question:"):
        if out.lower().startswith(prefix.lower()):
            out = out[len(prefix):].strip()
    last_user = next((m.content for m in reversed(history) if m.role == "user"), "")
    context_words = set(grounding.content_words(question + " " + last_user))
    ok = out and len(out) <= 300 and context_words & set(grounding.content_words(out))
    if ok:
        new_words = set(grounding.content_words(out)) - set(grounding.content_words(question))
        if new_words:  # the rewrite added the subject: use it
            return out
    return f"{last_user.strip()} {question}".strip()


class ChatSession:
    """``ChatSession(asker, store, session).stream(question)`` → an :class:`AnswerStream`."""

    def __init__(self, asker: Asker, store: SessionStore, session: Session):
        self.asker, self.store, self.session = asker, store, session

    @classmethod
    def open(cls, collection: str, *, session_id: str | None = None, settings=None, **asker_kwargs) -> "ChatSession":
        asker = Asker(collection, settings=settings, **asker_kwargs)
        store = SessionStore(asker.settings)
        session = store.get_or_create(session_id, collection=collection,
                                      model=asker._model if isinstance(asker._model, str) else None)
        if session.collection and session.collection != collection:
            from ..errors import InvalidParameter

            raise InvalidParameter(f"session {session.id} belongs to collection {session.collection!r}, not {collection!r}")
        return cls(asker, store, session)

    def stream(self, question: str) -> AnswerStream:
        history = self.session.history()
        query = rewrite_query(self.asker.model, question, history, data_dir=self.asker.settings.data_dir) if history else question
        inner = self.asker.stream(question, history=history, query=query)
        outer = AnswerStream(iter(()), inner.prompt)

        def pieces():
            yield from inner
            answer: Answer = inner.answer  # type: ignore[assignment]
            self.store.add_exchange(self.session, question, answer.text, query=query,
                                    sources=[{"n": s.n, "label": s.label, "id": s.hit.id} for s in answer.cited_sources])
            outer.answer = answer

        outer._pieces = pieces()
        return outer

    def ask(self, question: str) -> Answer:
        return self.stream(question).collect()

    def close(self) -> None:
        self.asker.close()
        self.store.close()
