"""Grounded answers: ask with citations and abstention, chat sessions, summaries, classic tasks."""

from .answer import NOT_FOUND, Answer, AnswerStream, Asker, Source, ask
from .chat import ChatSession, rewrite_query
from .citations import CitationCheck, CitationFilter, check_citations
from .sessions import Session, SessionStore
from .summarize import STYLES, Summary, summarize
from .tasks import Label, classify, extract, sentiment, translate

__all__ = [
    "ask", "Asker", "Answer", "AnswerStream", "Source", "NOT_FOUND",
    "check_citations", "CitationCheck", "CitationFilter",
    "ChatSession", "rewrite_query", "SessionStore", "Session",
    "summarize", "Summary", "STYLES",
    "sentiment", "classify", "extract", "translate", "Label",
]
