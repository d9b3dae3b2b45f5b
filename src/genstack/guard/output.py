"""Guarding what the model says, while it streams (OWASP LLM02, LLM07).

:class:`OutputGuard` sits between the model's pieces and the client. It holds
back a short tail of the text, so that a canary token or a secret split
across pieces is seen whole before any of it is released:

- the **canary** anywhere in the answer stops the stream; the client gets
  :data:`BLOCKED` instead of the rest, and ``guard.blocked`` says why;
- a **leak of the system prompt** (``protected``) stops it too: its secrets in
  any case, spacing, order or common encoding, or a run of its words
  (:mod:`genstack.guard.leak`); words that may be the start of a secret are
  held back until it is clear they are not;
- **redaction** replaces secrets (``redact="secrets"``: keys, tokens,
  private keys, passwords) or every PII kind (``"all"``) with
  ``[REDACTED:KIND]`` before the text leaves.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from ..choices import REDACT_MODES
from .canary import Canary
from .leak import LeakCheck
from .pii import find_pii

__all__ = ["OutputGuard", "BLOCKED", "REDACT_MODES", "SECRET_KINDS"]

BLOCKED = "[Blocked: the answer repeated protected system-prompt text.]"
SECRET_KINDS = ("PRIVATE_KEY", "JWT", "API_KEY", "SECRET")
#: tails that may still grow into a finding, held back until they are complete
_HOLD = [
    re.compile(r"(?:[+(]?\d[\d ().-]*)\s*$"),  # digits and separators: cards, phones, IBAN tails
    re.compile(r"(?:\b\w[\s._-])+\s*$"),  # single characters with separators: a spaced-out token
    re.compile(r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)\b[^\n]{0,12}$"),
    re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9 ]*$"),  # an IBAN being written
]


class OutputGuard:
    def __init__(self, canary: Canary | None = None, redact: str = "off", protected: str | None = None):
        if redact not in REDACT_MODES:
            raise ValueError(f"redact must be one of {', '.join(REDACT_MODES)}, got {redact!r}")
        self.canary = canary
        self.kinds = None if redact == "all" else (SECRET_KINDS if redact == "secrets" else ())
        self.blocked: str | None = None  # "canary" once blocked
        self.redactions: list[str] = []  # kinds redacted so far
        self._seen = ""  # all text so far (for the canary)
        self._pending = ""
        # the system prompt's secrets and wording, however they come back (LLM07; genstack.guard.leak)
        self._leak = LeakCheck(protected, exclude=[canary.token] if canary is not None else ())

    @property
    def active(self) -> bool:
        return self.canary is not None or self.kinds != ()

    def _redact(self, text: str) -> str:
        if self.kinds == ():
            return text
        findings = find_pii(text, self.kinds)
        out, last = [], 0
        for f in findings:
            out += [text[last:f.start], f"[REDACTED:{f.kind}]"]
            last = f.end
            self.redactions.append(f.kind)
        return "".join(out) + text[last:]

    def feed(self, piece: str) -> str:
        """Text safe to release now ("" while holding back or once blocked).

        Everything up to the last whitespace is released, except a tail that
        may still grow into a finding: a word in progress, a run of digits and
        separators (card, phone, IBAN), a run of single characters (a spaced
        out canary), a ``password:`` label and its value, an open PEM block.
        """
        if self.blocked:
            return ""
        self._seen += piece
        if self.canary is not None and self.canary.leaked(self._seen[-4 * len(self.canary.token) - len(piece):]):
            self.blocked = "canary"
            self._pending = ""
            return ""
        if self._leak and self._leak.find(self._seen[-600 - len(piece):]):
            self.blocked = "system-prompt"
            self._pending = ""
            return ""
        self._pending += piece
        pend = self._pending
        if "-----BEGIN" in pend and "-----END" not in pend.split("-----BEGIN", 1)[1]:
            return ""  # hold a private key block until it closes
        cut = max(pend.rfind(" "), pend.rfind("\n"))
        if cut <= 0:
            return ""
        head = pend[:cut + 1]
        for pat in _HOLD:
            m = pat.search(head)
            if m:
                cut = min(cut, m.start())
        if self._leak:  # hold back words that may be the start of a protected secret
            cut = min(cut, self._leak.possible_start(pend[:cut]))
        if self.kinds != ():  # never cut through a finding
            for f in find_pii(pend, self.kinds):
                if f.start < cut < f.end:
                    cut = f.start
        if cut <= 0:
            return ""
        out, self._pending = pend[:cut], pend[cut:]
        return self._redact(out)

    def flush(self) -> str:
        if self.blocked:
            return ""
        out, self._pending = self._pending, ""
        return self._redact(out)

    def check(self, text: str) -> str:
        """The whole text at once: what :meth:`feed` + :meth:`flush` would release."""
        out = self.feed(text) + self.flush()
        return BLOCKED if self.blocked else out

    def wrap(self, pieces: Iterable[str]) -> Iterator[str]:
        """Guarded pieces; ends with :data:`BLOCKED` when the canary shows up."""
        released = False
        for p in pieces:
            out = self.feed(p)
            if self.blocked:
                yield ("\n" if released else "") + BLOCKED
                return
            if out:
                released = True
                yield out
        tail = self.flush()
        if tail:
            yield tail
