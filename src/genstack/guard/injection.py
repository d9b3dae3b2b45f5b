"""Prompt-injection heuristics (OWASP LLM01).

:func:`scan` scores a text against patterns of instruction override, role
hijacking, system-prompt extraction and jailbreak framing. It is cheap (regular
expressions only) so it runs on every user message and every chunk at ingest.
A score of 1.0 means a strong pattern matched; 0.5 a weak one. The server
blocks or flags by ``GENSTACK_GUARD`` (off, flag, block).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Scan", "scan"]

_STRONG = [
    ("override", r"\b(ignore|disregard|forget|skip|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b"
                 r"[^.\n]{0,30}\b(instructions?|prompts?|rules|directions|guidelines|context|messages?)\b"),
    ("new-instructions", r"\b(new|updated|real|actual|true)\s+(instructions?|task|rules)\s*(:|are|is)"),
    ("prompt-extraction", r"\b(reveal|print|show|repeat|output|tell me|display|leak|what (is|are|were))\b[^.\n]{0,40}"
                          r"\b(system|initial|original|hidden|secret)\s+(prompt|instructions?|message|rules)"),
    ("prompt-extraction", r"\brepeat\b[^.\n]{0,30}\b(everything|all|the text|the words)\b[^.\n]{0,30}\b(above|before)\b"),
    ("role-hijack", r"\b(you are now|from now on,? you|act as|pretend (to be|you are)|roleplay as)\b[^.\n]{0,60}"
                    r"\b(DAN|unfiltered|uncensored|jailbroken|no (rules|restrictions|limits)|evil|without (any )?(rules|restrictions|filters))"),
    ("jailbreak", r"\b(DAN|do anything now|developer mode|jailbreak(ed)?|AIM|STAN|DUDE)\b[^.\n]{0,80}"
                  r"\b(mode|enabled|prompt|activated|no (restrictions|limits|rules))\b"),
    ("system-spoof", r"(^|\n)\s*(#+\s*)?(system|assistant)\s*(message|prompt)?\s*:|<\|?(im_start|system|endoftext)\|?>|\[/?INST\]"),
]
_WEAK = [
    ("imperative-to-ai", r"\b(AI|assistant|language model|chatbot|LLM)\b[^.\n]{0,30}\b(must|should|will|needs to)\b"),
    ("instead", r"\binstead\b[^.\n]{0,40}\b(say|respond|reply|answer|write|output)\b"),
    ("exfiltration", r"!\[[^\]]*\]\(https?://[^)]+\?[^)]*=|\b(send|post|forward|email)\b[^.\n]{0,40}\b(to|at)\b[^.\n]{0,20}(https?://|@)"),
    ("encoded", r"\b(base64|rot13|hex)\b[^.\n]{0,30}\b(decode|encoded|instructions?)\b|(?:[A-Za-z0-9+/]{40,}={0,2})"),
    ("urgency", r"\b(important|urgent|attention|note to (the )?(ai|assistant|model))\s*[:!]"),
]
_STRONG_RE = [(n, re.compile(p, re.I)) for n, p in _STRONG]
_WEAK_RE = [(n, re.compile(p, re.I)) for n, p in _WEAK]


@dataclass
class Scan:
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.score >= 1.0


def scan(text: str) -> Scan:
    """Score ``text``: 1.0 for any strong pattern or two weak ones, 0.5 for one weak, else 0."""
    if not text:
        return Scan(0.0)
    strong = sorted({n for n, r in _STRONG_RE if r.search(text)})
    weak = sorted({n for n, r in _WEAK_RE if r.search(text)})
    score = 1.0 if strong or len(weak) >= 2 else (0.5 if weak else 0.0)
    return Scan(score, strong + weak)
