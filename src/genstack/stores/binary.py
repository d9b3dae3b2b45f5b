"""A compressed first pass for the exact vector scan: sign bits, Hamming distance, exact rescoring.

An exact scan of a million 384-dimension float32 vectors reads 1.5 GB per query (about 80 ms on a
laptop's memory bandwidth). Each vector's signs, taken after subtracting the collection's mean
vector (MiniLM's dimensions are not centred, and uncentred signs waste bits), fit in 48 bytes: a
query's Hamming distance to all of them reads 48 MB. The nearest ``rescore`` codes (all codes tied
at the cut-off distance included) are then scored exactly against the float32 vectors, so every
score returned is the exact cosine, and only the candidate set is approximate. The candidate count
is what trades speed for recall: benchmarks/RESULTS.md has nDCG@10 and recall against the exact
scan on SciFact.

Codes are rebuilt from the vectors whenever the store changes (they are derived, like the matrix
cache), so they can never be out of step with the vectors.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BinaryCodes", "rescore_count"]

#: rows packed per block while building codes (bounds the temporary float copy to ~100 MB at 384 dims)
BLOCK = 65_536


def rescore_count(k: int, n: int) -> int:
    """How many first-pass candidates are rescored exactly for a top-``k`` query over ``n`` vectors:
    at least 1,000 and 100 per result, and 0.1% of the collection (the exact scan stays exact
    below that)."""
    return min(n, max(1_000, 100 * k, n // 1_000))


class BinaryCodes:
    """Sign codes of a matrix's rows around its mean, packed into 64-bit words."""

    def __init__(self, mat: np.ndarray):
        n, dim = mat.shape
        self.dim = dim
        self.mean = mat.mean(axis=0, dtype=np.float64).astype(np.float32) if n else np.zeros(dim, np.float32)
        self.words = -(-dim // 64)
        # word-major (words, n): the distance pass streams each word's column contiguously
        codes = np.empty((self.words, n), dtype=np.uint64)
        for start in range(0, n, BLOCK):
            codes[:, start:start + BLOCK] = self._pack(mat[start:start + BLOCK]).T
        self.codes = codes

    def _pack(self, rows: np.ndarray) -> np.ndarray:
        bits = np.packbits(rows > self.mean, axis=1)  # (n, dim/8) uint8
        pad = self.words * 8 - bits.shape[1]
        if pad:
            bits = np.pad(bits, ((0, 0), (0, pad)))
        return np.ascontiguousarray(bits).view(np.uint64)

    def distances(self, q: np.ndarray) -> np.ndarray:
        """Hamming distance from ``q``'s code to every row's (uint16)."""
        qc = self._pack(q.reshape(1, -1))[0]
        d = np.zeros(self.codes.shape[1], dtype=np.uint16)
        x = np.empty(self.codes.shape[1], dtype=np.uint64)
        c = np.empty(self.codes.shape[1], dtype=np.uint8)
        for w in range(self.words):
            np.bitwise_xor(self.codes[w], qc[w], out=x)
            np.bitwise_count(x, out=c)
            d += c
        return d

    def candidates(self, q: np.ndarray, count: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Row indices of (at least) the ``count`` codes nearest ``q``'s, where ``mask`` allows;
        every row at the cut-off distance is included, so the set does not depend on row order."""
        d = self.distances(q)
        far = self.words * 64 + 1
        if mask is not None:
            d[~mask] = far
        hist = np.bincount(d, minlength=far + 1)
        allowed = len(d) - int(hist[far])
        if count >= allowed:
            return np.flatnonzero(d < far)
        cut = int(np.searchsorted(np.cumsum(hist), count))  # the first distance reaching count rows
        return np.flatnonzero(d <= cut)
