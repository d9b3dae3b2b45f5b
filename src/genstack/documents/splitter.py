"""Token-aware recursive splitting.

The document is tokenized once with the embedder's tokenizer (offsets kept),
so the token count of any character span is a bisection, not a re-tokenization.
Splitting is recursive by structure: markdown headings, then blank-line
paragraphs, then lines, then sentences, then words, then characters; a span is
only broken at a finer level when it does not fit ``chunk_size`` tokens.
Consecutive pieces are packed greedily into chunks of at most ``chunk_size``
tokens; when a document needs more than one chunk, every markdown heading
starts a new one, so ``heading_path`` describes the chunk. Within a section, each chunk after the first starts
with the trailing words of the previous one, at most ``overlap`` tokens.

Guarantees (checked by property tests): chunks appear in document order, every
non-whitespace character is in some chunk, no chunk exceeds ``chunk_size``
tokens, and consecutive chunks share at most ``overlap`` tokens.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from ..choices import CHUNK_OVERLAP, CHUNK_SIZE
from ..errors import InvalidParameter
from .base import Document

__all__ = ["Chunk", "Splitter", "TokenCounter", "WordTokenizer"]


class TokenCounter(Protocol):
    """Anything that can give token start/end offsets for a text."""

    def offsets(self, text: str) -> list[tuple[int, int]]: ...


class WordTokenizer:
    """Words and punctuation as tokens: the deterministic stand-in for tests."""

    _re = re.compile(r"\w+|[^\w\s]")

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._re.finditer(text)]


@dataclass
class Chunk:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return self.metadata["content_hash"]


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
# separators from coarse to fine; each is a regex whose matches are cut *before*
_LEVELS = [
    re.compile(r"(?m)^(?=#{1,6}[ \t])"),  # markdown headings
    re.compile(r"\n[ \t]*\n\s*"),  # blank-line paragraphs (cut after the gap)
    re.compile(r"\n"),  # lines
    re.compile(r"(?<=[.!?;:])\s+(?=\S)"),  # sentences
    re.compile(r"\s+"),  # words
]


class Splitter:
    def __init__(self, tokenizer: TokenCounter | None = None, chunk_size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP):
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 8:
            raise InvalidParameter(f"chunk size must be an integer of at least 8 tokens, got {chunk_size!r}")
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0 or overlap >= chunk_size // 2:
            raise InvalidParameter(f"overlap must be between 0 and half the chunk size ({chunk_size // 2 - 1}), got {overlap!r}")
        self.tokenizer = tokenizer or WordTokenizer()
        self.chunk_size = chunk_size
        self.overlap = overlap

    #: characters tokenized at a time: a 50 MB file tokenized whole took 6.6 GB (the tokenizer's
    #: encoding and Python offset tuples); windows cut at whitespace give the same tokens for
    #: whitespace-splitting tokenizers (WordPiece, the default), kept as one numpy array
    WINDOW = 200_000

    # -- token arithmetic on character spans --------------------------------------
    def _prepare(self, text: str) -> None:
        starts = []
        a = 0
        while a < len(text):
            b = min(len(text), a + self.WINDOW)
            if b < len(text):  # end the window at whitespace, so no token is cut in two
                cut = max(text.rfind(" ", a, b), text.rfind("\n", a, b))
                b = cut + 1 if cut > a else b
            starts.append(np.fromiter((a + s for s, _ in self.tokenizer.offsets(text[a:b])), dtype=np.int64))
            a = b
        self._starts = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)

    def count(self, a: int, b: int) -> int:
        """Tokens that start inside text[a:b]."""
        return int(np.searchsorted(self._starts, b) - np.searchsorted(self._starts, a))

    # -- splitting -------------------------------------------------------------------
    def _pieces(self, text: str, a: int, b: int, level: int) -> list[tuple[int, int]]:
        """Cut text[a:b] into spans that each fit chunk_size tokens."""
        if self.count(a, b) <= self.chunk_size:
            return [(a, b)]
        if level >= len(_LEVELS):  # a single huge "word": cut by tokens
            out, i = [], int(np.searchsorted(self._starts, a))
            j_end = int(np.searchsorted(self._starts, b))
            start = a
            while i < j_end:
                k = min(i + self.chunk_size, j_end)
                end = int(self._starts[k]) if k < j_end else b
                out.append((start, end))
                start, i = end, k
            return out
        cuts = [a]
        for m in _LEVELS[level].finditer(text, a, b):
            pos = m.end() if level == 1 else (m.start() if level in (0, 2) else m.end())
            if a < pos < b:
                cuts.append(pos)
        cuts.append(b)
        out = []
        for x, y in zip(cuts, cuts[1:]):
            if x < y:
                out.extend(self._pieces(text, x, y, level + 1))
        return out

    def _overlap_start(self, text: str, a: int, b: int) -> int:
        """Start of the longest word-aligned tail of text[a:b] with <= overlap tokens."""
        if self.overlap == 0:
            return b
        best = b
        for m in reversed(list(re.finditer(r"\S+", text[a:b]))):
            start = a + m.start()
            if self.count(start, b) > self.overlap:
                break
            best = start
        return best

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the chunks of ``text``."""
        self._prepare(text)
        pieces = [(x, y) for x, y in self._pieces(text, 0, len(text), 0) if text[x:y].strip()]
        sections = {m.start() for m in _HEADING.finditer(text)}
        chunks: list[tuple[int, int]] = []
        cur_a = cur_b = None
        for x, y in pieces:
            if cur_a is None:
                cur_a, cur_b = x, y
            elif x in sections:  # a heading starts a new chunk, with no overlap across sections
                chunks.append((cur_a, cur_b))
                cur_a, cur_b = x, y
            elif self.count(cur_a, y) <= self.chunk_size:
                cur_b = y
            else:
                chunks.append((cur_a, cur_b))
                ov = self._overlap_start(text, cur_a, cur_b)
                cur_a = ov if ov < cur_b and self.count(ov, y) <= self.chunk_size else x
                cur_b = y
        if cur_a is not None:
            chunks.append((cur_a, cur_b))
        # trim surrounding whitespace so offsets point at the text itself
        out = []
        for x, y in chunks:
            seg = text[x:y]
            lead = len(seg) - len(seg.lstrip())
            trail = len(seg) - len(seg.rstrip())
            out.append((x + lead, y - trail))
        return out

    def split(self, doc: Document) -> list[Chunk]:
        text = doc.text
        headings = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in _HEADING.finditer(text)]
        chunks = []
        for i, (a, b) in enumerate(self.spans(text)):
            body = text[a:b]
            path: list[tuple[int, str]] = []
            for pos, depth, title in headings:
                if pos > a:
                    break
                path = [p for p in path if p[0] < depth] + [(depth, title)]
            meta = dict(doc.metadata)
            meta.update({
                "chunk_index": i,
                "start": a,
                "end": b,
                "heading_path": " > ".join(t for _, t in path),
                "content_hash": hashlib.sha256(body.encode("utf-8")).hexdigest(),
                "n_tokens": self.count(a, b),
            })
            chunks.append(Chunk(body, meta))
        return chunks

    def split_all(self, docs: Sequence[Document]) -> list[Chunk]:
        return [c for d in docs for c in self.split(d)]
