"""Guardrails (OWASP Top 10 for LLM applications): injection heuristics, PII and
secret redaction, the system-prompt canary. See docs/security.md for the map."""

from .injection import Scan, scan
from .pii import Finding, find_pii, redact

__all__ = ["Scan", "scan", "Finding", "find_pii", "redact"]
