"""Citations: ``[n]`` markers in an answer, checked against the sources given.

A marker may hold several numbers (``[1, 3]``, ``[2][4]``). Numbers that do
not name a source that was in the prompt are removed (and reported), so every
citation the user sees points at a real source. :class:`CitationFilter` does
the same on a stream, holding back only an unfinished ``[...`` marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["CitationCheck", "check_citations", "CitationFilter", "CITATION"]

#: a citation marker: [1] or [1, 2] or [1;2] (also "[Source 1]")
CITATION = re.compile(r"\[\s*(?:sources?\s*)?(\d{1,3}(?:\s*[,;]\s*(?:sources?\s*)?\d{1,3})*)\s*\]", re.I)
_NUM = re.compile(r"\d+")


@dataclass
class CitationCheck:
    text: str  # the answer with invalid citation numbers removed
    cited: list[int] = field(default_factory=list)  # valid source numbers, in order of first use
    invalid: list[int] = field(default_factory=list)  # numbers that named no source (removed)


def _rewrite(match: re.Match, n_sources: int, cited: list[int], invalid: list[int]) -> str:
    nums = [int(x) for x in _NUM.findall(match.group(1))]
    keep = []
    for n in nums:
        if 1 <= n <= n_sources:
            if n not in keep:
                keep.append(n)
            if n not in cited:
                cited.append(n)
        elif n not in invalid:
            invalid.append(n)
    if not keep:
        return ""
    return "[" + ", ".join(str(n) for n in keep) + "]"


def check_citations(text: str, n_sources: int) -> CitationCheck:
    """Keep citations to sources 1..n_sources; drop (and report) the others."""
    f = CitationFilter(n_sources)
    out = f.feed(text) + f.flush()
    return CitationCheck(out, f.cited, f.invalid)


class CitationFilter:
    """Streaming version of :func:`check_citations`: ``feed`` pieces, then ``flush``.

    The output is the same however the text is split into pieces.
    """

    _MAX_MARKER = 40

    def __init__(self, n_sources: int):
        self.n_sources = n_sources
        self.cited: list[int] = []
        self.invalid: list[int] = []
        self._buf = ""

    def feed(self, text: str) -> str:
        self._buf += text
        out = []
        while True:
            i = self._buf.find("[")
            if i < 0:
                out.append(self._buf)
                self._buf = ""
                break
            out.append(self._buf[:i])
            self._buf = self._buf[i:]
            j = self._buf.find("]")
            if j < 0:
                if len(self._buf) > self._MAX_MARKER or not _could_be_marker(self._buf):
                    out.append(self._buf[0])
                    self._buf = self._buf[1:]
                    continue
                break  # wait for more text
            candidate = self._buf[: j + 1]
            m = CITATION.fullmatch(candidate)
            if m:
                out.append(_rewrite(m, self.n_sources, self.cited, self.invalid))
                self._buf = self._buf[j + 1:]
            else:
                out.append(self._buf[0])
                self._buf = self._buf[1:]
        return "".join(out)

    def flush(self) -> str:
        out, self._buf = self._buf, ""
        return out


def _could_be_marker(prefix: str) -> bool:
    """Could ``prefix`` (starting with '[') still grow into a citation marker?"""
    return re.fullmatch(r"\[\s*(?:s(?:o(?:u(?:r(?:c(?:e(?:s)?)?)?)?)?)?\s*)?[\d\s,;sourceSOURCE]*", prefix) is not None
