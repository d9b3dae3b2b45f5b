"""Cheap, explainable checks of whether an answer is supported by its sources.

No model is involved: an answer's *content words* (lower-cased words and
numbers, minus stopwords and minus the words of the question, since restating
the question proves nothing) are looked up in the sources. The same measure
attributes uncited sentences to the source that supports them best.
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["content_words", "salient_words", "support", "declines", "split_sentences", "best_source",
           "asks_quantity", "gives_quantity", "about_question", "anchored_quantity", "asks_person", "anchored_name"]

_WORD = re.compile(r"[a-z0-9]+(?:[.,:/][0-9]+)*", re.I)
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves also may might must shall one ones per via yes
answer answers correct question source sources according document documents text based given provided information
""".split())

# phrases with which a model says the sources hold no answer
_DECLINE = re.compile(
    r"not\s+found|no\s+(?:relevant\s+)?information|(?:do|does|did)\s+not\s+(?:contain|mention|provide|say|include|specify|state)"
    r"|(?:is|are)\s+not\s+(?:mentioned|provided|specified|stated|given|available|included)"
    r"|(?:cannot|can't|can\s+not|could\s+not|couldn't|unable\s+to)\s+(?:find|answer|determine|be\s+found)"
    r"|(?:i\s+)?(?:do\s+not|don't)\s+know|no\s+(?:mention|answer)|not\s+(?:in|within)\s+the\s+(?:given\s+)?(?:sources|documents|context)",
    re.I,
)


def _norm(word: str) -> str:
    w = word.lower().replace(",", "")
    if len(w) > 4 and w.endswith("s") and not w.endswith("ss") and not w[:-1].isdigit():
        w = w[:-1]  # crude plural folding: "euros" ~ "euro"
    return w


def content_words(text: str, exclude: str = "") -> list[str]:
    skip = {_norm(w) for w in _WORD.findall(exclude)}
    return [w for w in (_norm(x) for x in _WORD.findall(text)) if w not in STOPWORDS and w not in skip and (len(w) > 1 or w.isdigit())]


def salient_words(text: str, exclude: str = "") -> list[str]:
    """Numbers and capitalised names: what a small model most often invents."""
    skip = {_norm(w) for w in _WORD.findall(exclude)}
    out = []
    for raw in _WORD.findall(text):
        w = _norm(raw)
        if w in skip or w in STOPWORDS:
            continue
        if any(c.isdigit() for c in raw) or raw[0].isupper():
            out.append(w)
    return out


def support(answer: str, sources: Sequence[str], question: str = "") -> float | None:
    """Share of the answer's salient words (numbers, names) found in the sources.

    Answers without numbers or names fall back to all content words. None when
    the answer has no content words beyond the question's.
    """
    words = salient_words(answer, exclude=question) or content_words(answer, exclude=question)
    if not words:
        return None
    vocab = {_norm(w) for s in sources for w in _WORD.findall(s)}
    return sum(w in vocab for w in words) / len(words)


def declines(answer: str) -> bool:
    """Does the answer say that the sources do not hold the answer?"""
    return bool(_DECLINE.search(answer))


# questions whose answer is a number (the NUM type of question classification, Li & Roth 2002)
_QUANTITY_Q = re.compile(
    r"\bhow\s+(?:many|much|long|high|tall|far|old|large|big|heavy|deep|wide|often|fast)\b"
    r"|\bwhat\s+(?:time|temperature|percentage|ratio|year|age|size|price)\b"
    r"|\bat\s+what\s+(?:time|temperature|age|speed|altitude|height)\b", re.I)
_NUMBER_WORDS = frozenset("""zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
thousand million billion half dozen once twice""".split())


#: the words that make a question ask for a quantity: they say nothing about its subject
_HOW_WORDS = frozenset("much many long far often".split())


def asks_quantity(question: str) -> bool:
    """Does the question ask for a number (how many, how much, what time, ...)?"""
    return bool(_QUANTITY_Q.search(question))


def _quantities(text: str, question: str = "") -> set[str]:
    """The numbers (digits or number words) of ``text`` that ``question`` does not hold."""
    skip = {_norm(w) for w in _WORD.findall(question)}
    return {w for w in (_norm(x) for x in _WORD.findall(text))
            if w not in skip and (any(c.isdigit() for c in w) or w in _NUMBER_WORDS)}


def gives_quantity(answer: str, question: str = "") -> bool:
    """Does the answer hold a number (digits or a number word) that the question does not?"""
    return bool(_quantities(answer, question))


def about_question(sentence: str, question: str) -> bool:
    """Does ``sentence`` share a content word with ``question`` (numbers and number words aside)?"""
    q = {w for w in content_words(question)
         if not any(c.isdigit() for c in w) and w not in _NUMBER_WORDS and w not in _HOW_WORDS}
    return bool(q & set(content_words(sentence)))


#: an item of a series: letters then digits, as a word (E3, K7, A320, WF-1000 is two words)
_SERIES = re.compile(r"(?<![\w-])([A-Za-z]{1,3})(\d{1,5})(?![\w])")


def series_ids(text: str) -> set[str]:
    """The items of a series a text names, upper-cased: error code "E3", model "A320"."""
    return {(p + d).upper() for p, d in _SERIES.findall(text)}


def same_series(a: str, b: str) -> bool:
    """E2 and E3 are items of one series (same letters, other digits); E3 and K7 are not."""
    ma, mb = _SERIES.fullmatch(a), _SERIES.fullmatch(b)
    return bool(ma and mb and ma.group(1).upper() == mb.group(1).upper() and a.upper() != b.upper())


def anchored_quantity(answer: str, question: str, sentences: Sequence[str]) -> bool:
    """Does a number of the answer stand in one of ``sentences`` that is about the question?

    "How many moons does Jupiter have?" answered with a copied "A colony has one queen" gives a
    number, but not one that the sources say about moons or Jupiter.
    """
    nums = _quantities(answer, question)
    return any(nums & _quantities(s, question) and about_question(s, question) for s in sentences)


# questions whose answer is a person or an organisation (Li & Roth's HUM type)
_PERSON_Q = re.compile(r"^\W*(?:who|whom|whose)\b|\bwhich\s+(?:person|people|company|organi[sz]ation)\b", re.I)


def asks_person(question: str) -> bool:
    """Does the question ask who (a person or organisation)?"""
    return bool(_PERSON_Q.search(question))


def _head(question: str) -> str | None:
    """The question's last content word that is not a name: the role or thing asked about
    ("the office *manager*", "commands the *ferry* to Isle Brann", "*founded* the Lindqvist Museum")."""
    words = [raw for raw in _WORD.findall(question)
             if raw[0].islower() and _norm(raw) not in STOPWORDS and _norm(raw) not in {"who", "whom", "whose"}]
    return _norm(words[-1]) if words else None


def anchored_name(answer: str, question: str, sentences: Sequence[str]) -> bool:
    """Does a name of the answer stand in one of ``sentences`` together with the question's head word?

    "Who is the office manager?" answered "The Lisbon office is the office manager" names
    Lisbon, which the sources hold, but in no sentence about a manager.
    """
    head = _head(question)
    names = {w for w in salient_words(answer, exclude=question) if not any(c.isdigit() for c in w)}
    if head is None or not names:
        return False
    for s in sentences:
        vocab = set(content_words(s))
        if head in vocab and names & vocab:
            return True
    return False


_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENT.split(text) if s.strip()]


def best_source(sentence: str, sources: Sequence[str], question: str = "", threshold: float = 0.6) -> int | None:
    """Index of the source that supports ``sentence`` best, if any supports enough of it."""
    words = salient_words(sentence, exclude=question) or content_words(sentence, exclude=question)
    if not words:
        return None
    best, best_i = 0.0, None
    for i, s in enumerate(sources):
        vocab = {_norm(w) for w in _WORD.findall(s)}
        score = sum(w in vocab for w in words) / len(words)
        if score > best:
            best, best_i = score, i
    return best_i if best >= threshold else None


_ITEM = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|\|)")


def split_passage(text: str) -> list[str]:
    """Sentences, list items and table rows of a chunk; headings are left out.

    Lines wrapped inside a paragraph are joined first, so a sentence is never
    cut at a hard line break.
    """
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.splitlines() if ln.strip()]
        buf: list[str] = []

        def flush() -> None:
            if buf:
                out.extend(s.strip() for s in _SENT.split(" ".join(buf)) if s.strip())
                buf.clear()

        for ln in lines:
            if ln.lstrip().startswith("#"):
                flush()
                continue
            if _ITEM.match(ln):
                flush()
                if not set(ln.strip()) <= set("|-: "):
                    out.append(ln.strip())
                continue
            buf.append(ln.strip())
        flush()
    return out
