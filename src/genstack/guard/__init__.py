"""Guardrails (OWASP Top 10 for LLM applications): injection detection, PII and
secret redaction, the system-prompt canary (hidden-text detection lives with the loaders,
in genstack.documents.hidden). See
docs/security.md for the map from each OWASP item to its code and tests."""

from .canary import Canary
from .detector import Detection, InjectionDetector
from .injection import Scan, instruction_sentences, scan, scan_passage
from .leak import LeakCheck, leaked
from .output import BLOCKED, OutputGuard
from .pii import Finding, find_pii, redact
from .policy import GuardPolicy, InputBlocked

__all__ = ["Scan", "scan", "scan_passage", "instruction_sentences", "Finding", "find_pii", "redact", "Canary",
           "OutputGuard", "BLOCKED", "InjectionDetector", "Detection", "GuardPolicy", "InputBlocked", "leaked", "LeakCheck"]
