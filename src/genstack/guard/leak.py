"""Did an answer leak a protected text? (OWASP LLM07, system-prompt leakage)

:func:`leaked` and :class:`LeakCheck` look for a protected text (a system
prompt) in an answer however it comes back, without being told which part of it
is the secret:

- **the secrets in it**: quoted values, values after words such as
  *password*, *code*, *key*, *token* (``The password is Livid snafu``,
  ``code: tram=32``), and tokens that mix letters with digits or symbols. Each
  is found in the answer verbatim in any case and spacing (``L i v i d-snafu``),
  with characters interleaved (``LxIxVxId``) or reversed, in leetspeak, under
  ROT13 or any Caesar shift, and inside base64, hex, URL-encoded or decimal
  character-code runs, which are decoded first;
- **its wording**: any run of :data:`ECHO_WORDS` of its words, in any case and
  spacing;
- **its meaning**, only when an embedder is given: an answer sentence whose
  cosine similarity to a protected sentence is at least :data:`PARAPHRASE_COSINE`.
  The output guard does not use it. On the labelled set (``benchmarks/leak_eval.py``,
  figures in ``benchmarks/RESULTS.md``) MiniLM caught no leak the rules above
  missed, and it flagged 4 of 52 ordinary answers, because an assistant's
  legitimate answers restate its system prompt's facts ("You have 25 days of
  holiday a year"). It is there for prompts whose wording itself is the secret.

A secret shorter than :data:`MIN_SECRET` letters and digits is not looked for
(it would match ordinary text).
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from typing import Sequence

from .canary import squash

__all__ = ["leaked", "LeakCheck", "secrets_of", "ECHO_WORDS", "MIN_SECRET", "PARAPHRASE_COSINE"]

#: a protected run of this many words, repeated, is an echo
ECHO_WORDS = 7
#: the shortest secret looked for, in letters and digits
MIN_SECRET = 5
#: an answer sentence this similar to a protected sentence restates it (MiniLM cosine; at 0.75 and
#: 0.8 it flagged 0.3-0.5% of the labelled set's benign answers, at 0.9 0.19%)
PARAPHRASE_COSINE = 0.9

#: a secret's value: after a cue word (and up to six more words) and "is", ":" or "=", up to three words
_CUE = re.compile(
    r"(?i)\b(?:pass(?:word|phrase|code)?|secret|code|key|pin|token|credentials?)s?\b(?:[^\S\n]+[\w'-]+){0,6}?"
    r"(?:\s+(?:is|are|was|reads)\b|\s*[:=])\s*[\"'`«“]?([^\s\"'`»”.,;!?()]+(?:[ -][^\s\"'`»”.,;!?()]+){0,2})")
_QUOTED = re.compile(r"[\"'`«“]([^\"'`»”\n]{3,60})[\"'`»”]")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_=:+/.#@$-]{3,}[A-Za-z0-9]")
#: look-alikes folded to one letter (leetspeak): 1, l, !, | and i are all "i"; 0 is "o"; 4 and @ are "a"; …
_LEET = str.maketrans("1l!|04@3$5789", "iiiioaaesstbg")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
#: words too common to make a secret of on their own (a cue followed by "is the one you were given")
_STOP = frozenset("""a an the is are was be it its this that these those you your we our i my me to of in on for
with and or not never no any all only as at by from if then than so do does must should can will shall may
given told one here there""".split())


def _leet(text: str) -> str:
    return squash(text.lower().translate(_LEET))


def secrets_of(protected: str) -> list[str]:
    """The secrets of ``protected``, squashed (see the module's rules), longest first."""
    return [squash(s) for s in _secret_values(protected)]


def _secret_values(protected: str) -> list[str]:
    """The secrets of ``protected`` as written, longest squashed form first, one per squashed form."""
    found = set()
    for m in _CUE.finditer(protected or ""):
        value = m.group(1)
        words = [w for w in re.split(r"[ -]", value) if w]
        while words and words[-1].lower() in _STOP:  # "the code is SALT42 for staff" stops at the value
            words.pop()
        if words and words[0].lower() not in _STOP:
            found.add(" ".join(words))
    for m in _QUOTED.finditer(protected or ""):
        found.add(m.group(1))
    for t in _TOKEN.findall(protected or ""):
        if re.search(r"\d", t) and re.search(r"[A-Za-z]", t) or re.search(r"[A-Za-z0-9][=:+#@$][A-Za-z0-9]", t):
            found.add(t)
    by_form: dict[str, str] = {}
    for v in sorted(found):
        if len(squash(v)) >= MIN_SECRET:
            by_form.setdefault(squash(v), v)
    return [by_form[k] for k in sorted(by_form, key=lambda k: (-len(k), k))]


_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
         "seventeen eighteen nineteen".split()
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_NATO = {w: w[0] for w in "alpha alfa bravo charlie delta echo foxtrot golf hotel india juliet juliett kilo lima mike "
                           "november oscar papa quebec romeo sierra tango uniform victor whiskey xray x-ray yankee zulu".split()}
#: words that only stand for a separator when a secret is spelled out
_SEPARATORS = frozenset("underscore dash hyphen dot period point equals colon slash backslash space plus hash".split())


def _spoken(text: str) -> list[str]:
    """``text``'s words with spelled-out characters put back: number words as digits, NATO words as
    letters, separator words dropped, and runs of single characters joined ("S, A, L, T, seven" -> salt7)."""
    words = re.findall(r"[a-z0-9]+(?:-[a-z]+)?", text.lower())
    out: list[str] = []
    for w in words:
        head, _, tail = w.partition("-")
        if head in _TENS and (not tail or tail in _UNITS[1:10]):
            out.append(str(_TENS[head] + (_UNITS.index(tail) if tail else 0)))
            continue
        for part in filter(None, (head, tail)):
            if part in _SEPARATORS:
                continue
            out.append(str(_UNITS.index(part)) if part in _UNITS else _NATO.get(part, part))
    joined: list[str] = []
    run: list[str] = []
    for w in out + [""]:
        if len(w) == 1 or (w.isdigit() and run and all(x.isdigit() for x in run)):
            run.append(w)
            continue
        if run:
            joined.append("".join(run))
            run = []
        if w:
            joined.append(w)
    return joined


_ABC = "abcdefghijklmnopqrstuvwxyz"
#: str.translate tables for the 26 Caesar shifts of lower-case letters (the output guard runs them per piece)
_SHIFTS = [str.maketrans(_ABC, _ABC[k:] + _ABC[:k]) for k in range(26)]


def _caesar(text: str, k: int) -> str:
    return text.translate(_SHIFTS[k % 26])


def _decoded(text: str) -> list[str]:
    """Texts hidden in ``text`` by a common encoding: base64, hex, URL escapes, decimal codes."""
    out = []
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}={0,2}", text):
        raw = run.rstrip("=")
        for alt in (False, True):
            try:
                data = (base64.urlsafe_b64decode if alt else base64.b64decode)(raw + "=" * (-len(raw) % 4))
            except (binascii.Error, ValueError):
                continue
            s = data.decode("utf-8", errors="ignore")
            if s and sum(c.isprintable() for c in s) >= 0.8 * len(s):
                out.append(s)
    for run in re.findall(r"(?:[0-9a-fA-F]{2}(?:[\s:,-]|\\x|0x)?){4,}", text):
        digits = re.sub(r"[^0-9a-fA-F]", "", run.replace("0x", "").replace("\\x", ""))
        if len(digits) % 2 == 0:
            try:
                out.append(bytes.fromhex(digits).decode("utf-8", errors="ignore"))
            except ValueError:
                pass
    if "%" in text:
        out.append(urllib.parse.unquote(text))
    for run in re.findall(r"(?:\b\d{2,3}\b[\s,;]*){4,}", text):
        codes = [int(c) for c in re.findall(r"\d+", run)]
        if all(32 <= c < 127 for c in codes):
            out.append("".join(map(chr, codes)))
    return out


def _forms(text: str) -> list[str]:
    """The answer's squashed forms in which a secret is looked for."""
    sq = squash(text)
    forms = [sq, sq[::-1]] + [_caesar(sq, k) for k in range(1, 26)]
    for d in _decoded(text):
        dsq = squash(d)
        forms += [dsq, dsq[::-1], _caesar(dsq, 13)]
    return forms


class LeakCheck:
    """The leak checks for one protected text, prepared once; :meth:`find` runs them on an answer."""

    def __init__(self, protected: str | None, *, embedder=None, exclude: Sequence[str] = (),
                 paraphrase_cosine: float = PARAPHRASE_COSINE):
        self.protected = protected or ""
        drop = {squash(e) for e in exclude}
        values = [v for v in _secret_values(self.protected) if squash(v) not in drop]
        self.secrets = [squash(v) for v in values]
        #: secrets of two or more words, as word lists: found in any order when close together
        self._bags = [ws for ws in ([w for w in _spoken(v) if len(w) >= 3] for v in values) if len(ws) >= 2]
        self._leet_secrets = [_leet(s) for s in self.secrets]
        # interleaved with filler (S.x.A.x.L.T): at most two characters between each, for secrets long or
        # odd enough that this never matches ordinary text (8+ characters, or 6+ with a digit)
        self._spread = [re.compile(s[0] + "".join(f".{{0,2}}{re.escape(c)}" for c in s[1:])) for s in self.secrets
                        if len(s) >= 8 or (len(s) >= 6 and re.search(r"\d", s))]
        words = _WORD.findall(self.protected.lower())
        self.shingles = {" ".join(words[i:i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)}
        self.embedder = embedder
        self.cosine = paraphrase_cosine
        self._sentences = None  # the protected sentences' vectors, on first use

    def __bool__(self) -> bool:
        return bool(self.secrets or self.shingles)

    def find(self, answer: str) -> str | None:
        """How ``answer`` leaks the protected text (``"secret"``, ``"echo"``, ``"paraphrase"``), or None."""
        if not answer or not self:
            return None
        if self.secrets:
            forms = _forms(answer)
            if any(s in f for s in self.secrets for f in forms):
                return "secret"
            leet = _leet(answer)
            if any(p in leet or p in leet[::-1] for p in self._leet_secrets):
                return "secret"
            if any(p.search(forms[0]) for p in self._spread):
                return "secret"
            spoken = _spoken(answer)
            if any(s in "".join(spoken) for s in self.secrets):
                return "secret"
            for bag in self._bags:  # its words in another order, at most two other words among them
                n = len(bag) + 2
                if any(set(bag) <= set(spoken[i:i + n]) for i in range(max(1, len(spoken) - n + 1))):
                    return "secret"
        words = _WORD.findall(answer.lower())
        if any(" ".join(words[i:i + ECHO_WORDS]) in self.shingles for i in range(len(words) - ECHO_WORDS + 1)):
            return "echo"
        if self.embedder is not None and self.paraphrase(answer) >= self.cosine:
            return "paraphrase"
        return None

    def possible_start(self, text: str) -> int:
        """Where in ``text`` its last words could be the beginning of a secret (``len(text)`` if
        nowhere): a stream holds those words back until the next ones show whether they are."""
        if not self.secrets:
            return len(text)
        starts = [m.start() for m in re.finditer(r"\S+\s*$|\S+(?=\s+\S+\s*$)|\S+(?=(?:\s+\S+){2}\s*$)", text)]
        for at in sorted(starts):
            sq = squash(text[at:])
            if len(sq) >= 2 and any(s.startswith(sq) and s != sq for s in self.secrets):
                return at
        return len(text)

    def paraphrase(self, answer: str) -> float:
        """The highest cosine between a sentence of ``answer`` and one of the protected text (0 without an embedder)."""
        if self.embedder is None:
            return 0.0
        import numpy as np

        if self._sentences is None:
            sents = [s for s in _SENTENCE.split(self.protected) if len(_WORD.findall(s.lower())) >= 4]
            self._sentences = np.asarray(self.embedder.embed(sents)) if sents else np.zeros((0, 1))
        ans = [s for s in _SENTENCE.split(answer) if len(_WORD.findall(s.lower())) >= 4]
        if not ans or not len(self._sentences):
            return 0.0
        vecs = np.asarray(self.embedder.embed(ans))
        return float((vecs @ self._sentences.T).max())


def leaked(output: str, protected: str, *, embedder=None) -> bool:
    """Does ``output`` give away ``protected`` (a system prompt, or a secret)? Secrets are found in any
    case, spacing, order, Caesar shift or common encoding, wording by runs of words, and meaning, with
    an ``embedder`` (e.g. ``genstack.get_embedder("minilm-l6-v2")``), by sentence similarity."""
    return LeakCheck(protected, embedder=embedder).find(output) is not None
