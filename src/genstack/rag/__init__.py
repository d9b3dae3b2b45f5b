"""Grounded answers: one pipeline (ask with citations and abstention, chat with memory), summaries, classic tasks.

Names load on first use, so importing :mod:`genstack.rag.config` (the CLI's
defaults) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'genstack.rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
