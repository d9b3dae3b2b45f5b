"""PII and secret detection with redaction (OWASP LLM02).

Pattern detectors with validation where a format has a checksum: card
numbers pass Luhn, IBANs pass ISO 7064 mod 97, US SSNs skip the invalid
ranges. Each finding has a kind, its span and the matched text;
:func:`redact` replaces each with ``[REDACTED:KIND]``.

These find *identifiers*. Business-confidential prose (a client's revenue in
meeting notes) has no pattern; see docs/security.md for what this measures on
the enterprise PII set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

__all__ = ["Finding", "find_pii", "redact", "KINDS"]


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        alt = not alt
    return total % 10 == 0


def _iban_ok(s: str) -> bool:
    s = s.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    r = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in r)
    return int(num) % 97 == 1


def _card_ok(s: str) -> bool:
    d = re.sub(r"\D", "", s)
    return 13 <= len(d) <= 19 and _luhn(d) and len(set(d)) > 1


def _ssn_ok(s: str) -> bool:
    a, b, c = s.split("-")
    return a not in ("000", "666") and not a.startswith("9") and b != "00" and c != "0000"


# (kind, pattern, validator); order matters: earlier kinds win overlaps
_PATTERNS: list[tuple[str, re.Pattern, object]] = [
    ("PRIVATE_KEY", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY-----[\s\S]*?-----END (?:RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY-----"), None),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), None),
    ("API_KEY", re.compile(
        r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
        r"|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}"
        r"|glpat-[A-Za-z0-9_-]{20}|sk_live_[A-Za-z0-9]{24,}|rk_live_[A-Za-z0-9]{24,})"), None),
    ("SECRET", re.compile(r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"
                          r"\s*[:=]\s*['\"]?([^\s'\"]{6,})"), None),
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), None),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), _iban_ok),
    ("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), _card_ok),
    ("US_SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), _ssn_ok),
    ("UK_NINO", re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), None),
    ("IP_ADDRESS", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"), None),
    ("PHONE", re.compile(r"(?<![\w.])(?<!\d[ -])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w.])(?![ -]\d)"), None),
]
KINDS = tuple(k for k, _, _ in _PATTERNS)


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[Finding]:
    """Non-overlapping findings in reading order."""
    wanted = set(kinds) if kinds is not None else None
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind, pat, ok in _PATTERNS:
        if wanted is not None and kind not in wanted:
            continue
        for m in pat.finditer(text):
            start, end = (m.start(1), m.end(1)) if kind == "SECRET" else (m.start(), m.end())
            if ok is not None and not ok(m.group(0)):
                continue
            if kind == "PHONE" and sum(c.isdigit() for c in m.group(0)) < 9:
                continue
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append(Finding(kind, start, end, text[start:end]))
    return sorted(found, key=lambda f: f.start)


def redact(text: str, kinds: Iterable[str] | None = None) -> tuple[str, list[Finding]]:
    """``text`` with every finding replaced by ``[REDACTED:KIND]``, and the findings."""
    findings = find_pii(text, kinds)
    out, last = [], 0
    for f in findings:
        out.append(text[last:f.start])
        out.append(f"[REDACTED:{f.kind}]")
        last = f.end
    out.append(text[last:])
    return "".join(out), findings
