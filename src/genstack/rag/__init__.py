"""Grounded answers: one pipeline (ask with citations and abstention, chat with memory), summaries, classic tasks.

Names load on first use, so importing :mod:`genstack.rag.config` (the CLI's
defaults) stays cheap.
"""

from __future__ import annotations

from .._lazy import lazy_names

_WHERE = {
    "Pipeline": "pipeline", "RagRequest": "pipeline", "Run": "pipeline", "STAGES": "pipeline", "Asker": "pipeline",
    "ask": "pipeline", "rewrite_query": "pipeline",
    "RagConfig": "config", "DEFAULT_CONFIG": "config",
    "CHECKS": "checks", "Verdict": "checks",
    "Answer": "answer", "AnswerStream": "answer", "Source": "answer", "NOT_FOUND": "answer", "render_tail": "answer",
    "grounded": "respond", "plain": "respond", "Outcome": "respond",
    "check_citations": "citations", "CitationCheck": "citations", "CitationFilter": "citations",
    "ChatSession": "chat", "SessionStore": "sessions", "Session": "sessions",
    "summarize": "summaries", "Summary": "summaries", "STYLES": "summaries",
    "sentiment": "tasks", "classify": "tasks", "extract": "tasks", "translate": "tasks", "Label": "tasks",
}

__all__ = list(_WHERE)


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
