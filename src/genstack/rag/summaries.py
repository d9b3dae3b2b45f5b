"""Summaries by map-reduce, every step sized to fit the model's window.

*Map*: the text is split into pieces that fit the window beside the prompt
and the step's answer budget, and each piece is summarized. *Reduce*: the
partial summaries are grouped into prompts that fit and summarized again,
until one summary remains. A short text takes a single step. The final
summary is cut at ``max_words`` (at a sentence end when one is close).

Bullets are *checked*: every step's reply is normalised to ``- `` lines (numbered or ``*``
items, a paragraph split into sentences; preambles like "Here are the bullet points:", copied
headings and table rows, and code dropped), each bullet must be supported by that step's input (60% of its content words
and every number in it, beside a word of the bullet in one sentence of the input), unsupported ones are dropped, and
when fewer than three remain the gap is filled with the input's most central sentences
(extractive). ``Summary.dropped`` and ``Summary.extracted`` count both. On the checked set
(``genstack eval task bullets``) SmolLM2-135M alone gave 0% well-formed bullet lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import InvalidParameter
from ..generation import SamplingParams, Usage
from ..models.base import Model
from ..prompts.templates import PromptTemplate, resolve_template

__all__ = ["summarize", "Summary", "STYLES", "check_bullets", "bullet_supported", "MIN_BULLETS", "MAX_BULLETS"]

STYLES = {
    "bullets": "as 3 to 5 bullet points, each starting with '- '",
    "paragraph": "as one paragraph",
    "tldr": "in one sentence",
}

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Summary:
    text: str
    style: str
    steps: int = 0  # model calls
    pieces: int = 0  # map inputs
    levels: int = 0  # reduce rounds
    usage: Usage = field(default_factory=Usage)
    prompts: list[str] = field(default_factory=list)
    dropped: int = 0  # bullets removed as unsupported by their input (bullets style)
    extracted: int = 0  # bullets taken from the input's own sentences to reach three

    def to_dict(self) -> dict:
        d = {"summary": self.text, "style": self.style, "steps": self.steps, "pieces": self.pieces,
             "reduce_levels": self.levels, "usage": self.usage.to_dict()}
        if self.style == "bullets":
            d |= {"dropped_bullets": self.dropped, "extracted_bullets": self.extracted}
        return d


_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+")
_PREAMBLE = re.compile(r"^(?:here(?:'s| is| are)|sure|summary|bullet points|key points)\b.*:\s*$", re.I)
#: a number standing as a word (the 3 of "3-year", not of "E3" or "K7")
_NUMBER_WORD = re.compile(r"(?<![\w.,:])\d+(?:[.,:]\d+)*(?!\w)")
MIN_BULLETS, MAX_BULLETS = 3, 5


def bullet_supported(bullet: str, source: str) -> bool:
    """Whether ``source`` supports ``bullet``: 60% of its content words, and every number in it in
    context: in a sentence (or list item, or table row) of the source that shares a content word
    with the bullet. A number found only elsewhere (the "3" of a 3-year warranty behind "keeps warm
    for 3 minutes", where the source says 30) does not count."""
    from .grounding import content_words, split_passage, support

    s = support(bullet, [source])
    if s is None or s < 0.6:
        return False
    words = {w for w in content_words(bullet) if not w.isdigit()}
    units = [({m.replace(",", "") for m in _NUMBER_WORD.findall(u)}, set(content_words(u))) for u in split_passage(source)]
    return all(any(m.replace(",", "") in nums and (not words or words & ws) for nums, ws in units)
               for m in _NUMBER_WORD.findall(bullet))


def _central_sentences(source: str) -> list[str]:
    """The source's sentences, most central first (the sum of their content words' frequencies, per word)."""
    from collections import Counter

    from .grounding import content_words, split_passage

    sents = [" ".join(x.split()) for x in split_passage(source) if len(x.split()) >= 3]  # no headings
    freq = Counter(w for x in sents for w in content_words(x))
    score = {x: sum(freq[w] for w in content_words(x)) / (1 + len(x.split()) ** 0.5) for x in sents}
    return sorted(sents, key=lambda x: -score[x])


def check_bullets(reply: str, source: str) -> tuple[list[str], int, int]:
    """The reply's bullets that ``source`` supports, topped up from its sentences: (bullets, dropped, extracted)."""
    from .grounding import split_sentences

    text = re.sub(r"```.*?(?:```|$)", "", reply, flags=re.S)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _PREAMBLE.match(ln.strip())]
    if any(_BULLET.match(ln) for ln in lines):
        lines = [_BULLET.sub("", ln) for ln in lines if _BULLET.match(ln)]
    # one fact a bullet: a paragraph, or a bullet of several sentences, gives one bullet a sentence
    items = [x.rstrip(".") if x.count(".") == 1 and x.endswith(".") else x for ln in lines for x in split_sentences(ln)]
    items = [" ".join(i.split()).strip() for i in items if i.strip() and not i.lstrip().startswith(("#", "|"))]
    kept = [i for i in items if bullet_supported(i, source)]
    dropped = len(items) - len(kept)
    kept = list(dict.fromkeys(kept))[:MAX_BULLETS]
    extracted = 0
    if len(kept) < MIN_BULLETS:
        from .grounding import support

        for sent in _central_sentences(source):
            if len(kept) >= MIN_BULLETS:
                break
            if any((support(sent, [k]) or 0) >= 0.6 for k in kept):
                continue  # already said
            kept.append(sent)
            extracted += 1
    return kept, dropped, extracted


def _limit_words(text: str, max_words: int, style: str) -> str:
    words = text.split()
    if len(words) <= max_words:
        return text.strip()
    if style == "bullets":
        lines, n = [], 0
        for line in text.strip().splitlines():
            w = len(line.split())
            if n + w > max_words:
                break
            lines.append(line)
            n += w
        if lines:
            return "\n".join(lines)
    cut = " ".join(words[:max_words])
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind(".") if cut.endswith(".") else -1)
    if end > len(cut) * 0.6:
        return cut[: end + 1]
    return cut.rstrip(",;:") + "…"


class _Pieces:
    """Split text into pieces of at most ``budget`` model tokens, at paragraph/sentence/word bounds."""

    def __init__(self, model: Model):
        self.model = model

    def split(self, text: str, budget: int) -> list[str]:
        if self.model.count_tokens(text) <= budget:
            return [text]
        for sep in (r"\n\s*\n", r"\n", r"(?<=[.!?])\s+", r"\s+"):
            parts = [p for p in re.split(sep, text) if p.strip()]
            if len(parts) > 1:
                break
        else:
            # no separator at all: cut by characters
            half = len(text) // 2
            parts = [text[:half], text[half:]]
        out: list[str] = []
        cur = ""
        for p in parts:
            cand = f"{cur}\n\n{p}" if cur else p
            if self.model.count_tokens(cand) <= budget:
                cur = cand
                continue
            if cur:
                out.append(cur)
            if self.model.count_tokens(p) <= budget:
                cur = p
            else:
                out.extend(self.split(p, budget))
                cur = ""
        if cur:
            out.append(cur)
        return out


def summarize(
    texts: str | Sequence[str],
    model: Model,
    *,
    style: str = "bullets",
    max_words: int = 120,
    template: str | PromptTemplate | None = None,
    progress: Progress | None = None,
    step_tokens: int = 256,
    window: int | None = None,
    data_dir=None,
) -> Summary:
    """Summarize one text or several (e.g. the documents of a collection, in order)."""
    if style not in STYLES:
        raise InvalidParameter(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 5:
        raise InvalidParameter(f"max-words must be an integer of at least 5, got {max_words!r}")
    items = [texts] if isinstance(texts, str) else list(texts)
    items = [t for t in items if t and t.strip()]
    if not items:
        raise InvalidParameter("there is no text to summarize")
    t = template if isinstance(template, PromptTemplate) else resolve_template(template, "summarize", "zero_shot", data_dir=data_dir)
    window = window or model.context_length or 2048
    marker = t.options.get("answer_marker")
    step_tokens = max(step_tokens, 512 if marker else step_tokens)
    params = SamplingParams(greedy=True, max_tokens=step_tokens, repeat_penalty=1.1)
    out = Summary("", style)
    emit = progress or (lambda stage, done, total: None)

    def run(text: str, words: int) -> str:
        msgs = t.render(text=text, style=STYLES[style], max_words=words)
        stream = model.stream(messages=msgs, params=params, on_overflow="clamp")
        comp = stream.collect()
        out.steps += 1
        out.prompts.append(stream.prompt or "")
        out.usage = Usage(out.usage.prompt_tokens + comp.usage.prompt_tokens,
                          out.usage.completion_tokens + comp.usage.completion_tokens)
        text_out = comp.text.strip()
        if marker and marker in text_out:
            text_out = text_out.split(marker, 1)[1].strip()
        if style == "bullets":
            bullets, dropped, extracted = check_bullets(text_out, text)
            out.dropped += dropped
            out.extracted += extracted
            text_out = "\n".join(f"- {b}" for b in bullets)
        return text_out

    # the room left for {text}: window - answer budget - the template itself
    overhead = model.count_chat_tokens(t.render(text="", style=STYLES[style], max_words=max_words))
    budget = window - step_tokens - overhead - 16
    if budget < 64:
        raise InvalidParameter(f"the model's window ({window} tokens) is too small to summarize with this template")
    # map pieces: keep them well under the budget, small models summarize short inputs better
    piece_budget = min(budget, 1024)
    splitter = _Pieces(model)
    pieces = [p for item in items for p in splitter.split(item, piece_budget)]
    out.pieces = len(pieces)
    if len(pieces) == 1:
        emit("summarize", 0, 1)
        out.text = _limit_words(run(pieces[0], max_words), max_words, style)
        emit("summarize", 1, 1)
        return out
    partial_words = max(40, min(max_words, 80))
    partials = []
    emit("map", 0, len(pieces))
    for i, p in enumerate(pieces):
        partials.append(run(p, partial_words))
        emit("map", i + 1, len(pieces))
    while True:
        out.levels += 1
        joined = "\n\n".join(partials)
        if model.count_tokens(joined) <= budget:
            emit("reduce", 0, 1)
            out.text = _limit_words(run(joined, max_words), max_words, style)
            emit("reduce", 1, 1)
            return out
        groups = splitter.split(joined, budget)
        if len(groups) >= len(partials):  # no progress possible: pairs at least
            groups = ["\n\n".join(partials[i:i + 2]) for i in range(0, len(partials), 2)]
        emit("reduce", 0, len(groups))
        partials = []
        for i, g in enumerate(groups):
            partials.append(run(g, partial_words))
            emit("reduce", i + 1, len(groups))
