"""Guarding what the model says, while it streams (OWASP LLM02, LLM07).

:class:`OutputGuard` sits between the model's pieces and the client. It holds
back a short tail of the text, so that a canary token or a secret split
across pieces is seen whole before any of it is released:

- the **canary** anywhere in the answer stops the stream; the client gets
  :data:`BLOCKED` instead of the rest, and ``guard.blocked`` says why;
- **redaction** replaces secrets (``redact="secrets"``: keys, tokens,
  private keys, passwords) or every PII kind (``"all"``) with
  ``[REDACTED:KIND]`` before the text leaves.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .canary import Canary
from .pii import find_pii

__all__ = ["OutputGuard", "BLOCKED", "REDACT_MODES", "SECRET_KINDS"]

BLOCKED = "[Blocked: the answer contained protected system text.]"
REDACT_MODES = ("off", "secrets", "all")
SECRET_KINDS = ("PRIVATE_KEY", "JWT", "API_KEY", "SECRET")
#: characters held back; longer than any single finding but a PEM block (held until it ends)
HOLDBACK = 96


class OutputGuard:
    def __init__(self, canary: Canary | None = None, redact: str = "off"):
        if redact not in REDACT_MODES:
            raise ValueError(f"redact must be one of {', '.join(REDACT_MODES)}, got {redact!r}")
        self.canary = canary
        self.kinds = None if redact == "all" else (SECRET_KINDS if redact == "secrets" else ())
        self.blocked: str | None = None  # "canary" once blocked
        self.redactions: list[str] = []  # kinds redacted so far
        self._seen = ""  # all text so far (for the canary)
        self._pending = ""

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
        """Text safe to release now ("" while holding back or once blocked)."""
        if self.blocked:
            return ""
        self._seen += piece
        if self.canary is not None and self.canary.leaked(self._seen[-4 * len(self.canary.token) - len(piece):]):
            self.blocked = "canary"
            self._pending = ""
            return ""
        self._pending += piece
        if "-----BEGIN" in self._pending and "-----END" not in self._pending.split("-----BEGIN", 1)[1]:
            return ""  # hold a private key block until it closes
        limit = len(self._pending) - HOLDBACK
        if limit <= 0:
            return ""
        cut = max(self._pending.rfind(" ", 0, limit), self._pending.rfind("\n", 0, limit))
        if cut <= 0:
            return ""
        if self.kinds != ():  # never cut through a finding
            for f in find_pii(self._pending, self.kinds):
                if f.start < cut < f.end:
                    cut = f.start
        out, self._pending = self._pending[:cut], self._pending[cut:]
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
        for p in pieces:
            out = self.feed(p)
            if self.blocked:
                yield ("\n" if self._released else "") + BLOCKED
                return
            if out:
                self._released = True
                yield out
        tail = self.flush()
        if tail:
            yield tail

    _released = False
