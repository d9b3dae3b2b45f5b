"""Multi-turn chat over a collection, with memory.

Each turn goes through the one pipeline (:mod:`genstack.rag.pipeline`) with
the session's history: its ``condense`` stage rewrites the follow-up into a
standalone search query, and its ``fit`` stage trims the history to fit the
window beside the sources. Turns persist in a :class:`SessionStore`.
"""

from __future__ import annotations

from .answer import Answer, AnswerStream
from .pipeline import Asker, Pipeline, rewrite_query
from .sessions import Session, SessionStore

__all__ = ["ChatSession", "rewrite_query"]


class ChatSession:
    """``ChatSession(asker, store, session).stream(question)`` → an :class:`AnswerStream`."""

    def __init__(self, asker: Pipeline, store: SessionStore, session: Session, *, guard=None):
        self.asker, self.store, self.session = asker, store, session
        #: a :class:`~genstack.guard.GuardPolicy` (or session) that prepares each request, as the server's does
        self.guard = guard

    @classmethod
    def open(cls, collection: str, *, session_id: str | None = None, settings=None, **asker_kwargs) -> "ChatSession":
        """A new or resumed session on ``collection`` (``asker_kwargs`` configure its :class:`Asker`)."""
        return cls.resume(Asker(collection, settings=settings, **asker_kwargs), session_id)

    @classmethod
    def resume(cls, pipeline: Pipeline, session_id: str | None = None, *, model_name: str | None = None) -> "ChatSession":
        """A session over ``pipeline``: session ``session_id`` if given (it must belong to the same
        collection), otherwise a new one."""
        collection = pipeline.collection
        store = SessionStore(pipeline.settings)
        if model_name is None and isinstance(pipeline._model, str):
            model_name = pipeline._model
        session = store.get_or_create(session_id, collection=collection, model=model_name)
        if session.collection and session.collection != collection:
            from ..errors import InvalidParameter

            store.close()
            raise InvalidParameter(f"session {session.id} belongs to collection {session.collection!r}, not {collection!r}")
        return cls(pipeline, store, session)

    def stream(self, question: str) -> AnswerStream:
        """The pipeline's answer with this session's history (the condense stage rewrites the
        follow-up into a search); the exchange is saved once the answer is complete."""
        from .pipeline import RagRequest

        request = RagRequest(question, history=tuple(self.session.history()))
        if self.guard is not None:
            request = self.guard.prepare_request(request)
        inner = self.asker.stream(request)
        outer = AnswerStream(iter(()), inner.prompt)

        def pieces():
            yield from inner
            answer: Answer = inner.answer  # type: ignore[assignment]
            self.store.add_exchange(self.session, question, answer.text, query=answer.query,
                                    sources=[{"n": s.n, "label": s.label, "id": s.hit.id} for s in answer.cited_sources])
            outer.answer = answer

        outer._pieces = pieces()
        return outer

    def ask(self, question: str) -> Answer:
        return self.stream(question).collect()

    def close(self) -> None:
        self.asker.close()
        self.store.close()
