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

__all__ = ["Scan", "scan", "scan_passage", "instruction_sentences", "screen_untrusted"]

_STRONG = [
    ("override", r"\b(ignore|disregard|forget|skip|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your)\b"
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
#: case-sensitive: an upper-case authority label with a colon inside ordinary text ("Registrant:
#: SYSTEM: ...", "[ADMIN REQUEST::...]") or an instruction tag. Upper case is what sets a spoofed
#: label apart from prose that merely mentions a system or an admin.
_SPOOF = [
    ("authority-spoof", r"(?<![A-Za-z0-9])(?:SYSTEM|ADMIN(?:ISTRATOR)?|DEVELOPER|OPERATOR)"
                        r"(?:[ _](?:REQUEST|MESSAGE|NOTE|NOTICE|OVERRIDE|INSTRUCTIONS?|COMMAND|UPDATE|PROMPT))?\s?::?[ \t]*(?=\S)"),
    ("authority-spoof", r"(?i:</?\s*(?:instructions?|admin|sys|system[ _]prompt)\s*>)"),
]
_WEAK = [
    ("imperative-to-ai", r"\b(AI|assistant|language model|chatbot|LLM)\b[^.\n]{0,30}\b(must|should|will|needs to)\b"),
    ("instead", r"\binstead\b[^.\n]{0,40}\b(say|respond|reply|answer|write|output)\b"),
    ("exfiltration", r"!\[[^\]]*\]\(https?://[^)]+\?[^)]*=|\b(send|post|forward|email)\b[^.\n]{0,40}\b(to|at)\b[^.\n]{0,20}(https?://|@)"),
    ("encoded", r"\b(base64|rot13|hex)\b[^.\n]{0,30}\b(decode|encoded|instructions?)\b|(?:[A-Za-z0-9+/]{40,}={0,2})"),
    ("urgency", r"\b(important|urgent|attention|note to (the )?(ai|assistant|model))\s*[:!]"),
]
#: only in documents: text that gives orders about "your answer" addresses the model, not a
#: reader. A user may ask for this ("reply in German"), so user input is not held to it.
_OUT = r"(response|reply|answer|message|output)"
_PASSAGE = [
    ("output-directive", r"\b(translate|encode|encrypt|reverse|invert|render|rewrite|modify|enhance|augment|integrate|"
                         r"include|insert|add|append|mention|promote|express|substitute|replace|represent|provide|"
                         r"display|write|format|shift|apply|use|begin|start|end)\b(?:[^.\n]|\.(?=\S)){0,100}\byour\s+" + _OUT + r"\b"),
    ("output-directive", r"\b(in|to|into|within)\s+your\s+" + _OUT + r"\b[^.\n]{0,20}\b(include|mention|add|insert|state|say|"
                         r"suggest|promote|write|provide|hint|reference|share)"),
    ("output-directive", r"\b(reply|respond|answer|write)\b[^.\n]{0,20}\b(in|using|with)\s+(reverse|backwards?|base\s?\d+|"
                         r"emojis?|ciphers?|spanish|french|german|italian|portuguese|chinese|russian|japanese|hex|rot13)\b"),
    ("output-directive", r"\b(your\s+" + _OUT + r")\b[^.\n]{0,30}\b(backwards?|in reverse|reversed|in base\s?\d+|"
                         r"encoded|encrypted|as emojis?)\b"),
    ("code-directive", r"\b(following|below|subsequent)\s+code\s+(snippet|block|excerpt|section|segment)\b"),
    ("code-directive", r"\bcode\s+(snippet|block|excerpt|section|segment)\b[^\n]{0,80}\byour\s+(code|codebase|response|reply|"
                       r"answer|solution|implementation|program|algorithm|elucidation)"),
    ("addressed-to-model", r"\b(dear|attention|note to|hey|hi)\s+(AI|assistant|model|LLM|chatbot|GPT)\b"),
]
_STRONG_RE = [(n, re.compile(p, re.I)) for n, p in _STRONG] + [(n, re.compile(p)) for n, p in _SPOOF]
_PASSAGE_RE = [(n, re.compile(p, re.I)) for n, p in _PASSAGE]
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


def scan_passage(text: str) -> Scan:
    """:func:`scan` plus the patterns that only make sense in documents (orders about "your answer")."""
    base = scan(text)
    extra = sorted({n for n, r in _PASSAGE_RE if r.search(text)})
    if not extra:
        return base
    return Scan(1.0, base.reasons + [e for e in extra if e not in base.reasons])


def instruction_sentences(text: str) -> list[tuple[int, int, Scan]]:
    """Spans ``(start, end, scan)`` of the sentences of a document that read as orders to the model."""
    out = []
    for m in re.finditer(r"[^\n]+?(?:[.!?]+(?=\s|$)|(?=\n)|$)", text):
        sent = m.group(0)
        if len(sent.strip()) < 8:
            continue
        sc = scan_passage(sent)
        if sc.flagged:
            out.append((m.start(), m.end(), sc))
    return out


def screen_untrusted(text: str, mode: str = "strip") -> tuple[str, list[dict]]:
    """Text from outside (a retrieved document, a tool's result) as the model may see it, and what was
    found: each instruction-like sentence is flagged, and removed when ``mode`` is "strip"
    ("flag" keeps it, "off" does not look)."""
    if mode == "off":
        return text, []
    spans = instruction_sentences(text)
    if not spans:
        return text, []
    action = "removed" if mode == "strip" else "flagged"
    flags = [{"reasons": sc.reasons, "text": " ".join(text[a:b].split()), "action": action} for a, b, sc in spans]
    if mode != "strip":
        return text, flags
    out, last = [], 0
    for a, b, _ in spans:
        out += [text[last:a], " "]
        last = b
    return "".join(out) + text[last:], flags
