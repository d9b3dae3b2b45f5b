"""The VectorStore protocol: what every store backend must do, and all that callers may use.

A store holds the chunks of one collection. Writes are grouped by *source*
(the file a chunk came from): :meth:`VectorStore.replace_source` swaps all of a
source's chunks and records the source's content hash in one atomic step, which
is what makes incremental and crash-safe ingest possible on any backend.

A backend is a class registered in the ``genstack.stores`` entry-point group
(the built-in ``sqlite`` and ``lancedb`` stores register exactly so) with a
``name`` and two class methods, :meth:`StoreBackend.open_collection` and
:meth:`StoreBackend.exists`, which work on a collection's folder. Nothing
outside a store reaches past this protocol. ``genstack.testing`` holds the
conformance suite, in per-capability mixins a third-party store adopts one by one.

Optional: ``finish_source(source, ids, source_hash)``. Ingest writes a large file in parts with
:meth:`VectorStore.upsert` so that a kill keeps them; a store that has ``finish_source`` ends such a
file there (drop the source's chunks whose id is not in ``ids``, record the hash, atomically), so the
file's vectors need not stay in memory until the end. Without it, ingest keeps them and ends the file
with :meth:`VectorStore.replace_source`. The SQLite store has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Record", "Hit", "Filters", "VectorStore", "StoreBackend", "FILTER_KEY", "check_filter_key",
           "check_vectors", "top_k", "built_with"]

#: what a metadata filter key may look like (it may end up in a query language)
FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def check_filter_key(key: Any) -> str:
    from ..errors import InvalidParameter

    if not isinstance(key, str) or not FILTER_KEY.match(key):
        raise InvalidParameter(f"invalid filter key {key!r}")
    return key


def built_with(collection: str, key: str, stored: Any, value: Any) -> Exception:
    """The refusal for opening ``collection`` with another embedder or dimension than it was built with."""
    from ..embeddings.base import mismatch
    from ..errors import InvalidParameter

    if key == "embedder":
        return InvalidParameter(mismatch(collection, str(stored), str(value)))
    return InvalidParameter(f"collection {collection!r} was built with {key} {stored}, not {value}; "
                            "use the same embedder or a new collection")


def check_vectors(records: Sequence["Record"], dim: int | None) -> None:
    """Every record's vector is one finite row of ``dim`` numbers (any length while ``dim`` is unknown)."""
    from ..errors import InvalidParameter

    for r in records:
        v = np.asarray(r.vector)
        if v.ndim != 1 or (dim is not None and v.shape[0] != dim):
            raise InvalidParameter(f"record {r.id!r}: vector has shape {v.shape}, expected ({dim},)")
        if not np.all(np.isfinite(v)):
            raise InvalidParameter(f"record {r.id!r}: vector has NaN or infinite values")


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest ``scores`` (only where ``mask``), best first: the exact scan's last step."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
        k = min(k, int(mask.sum()))
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]

#: equality filters on metadata: {"key": value} or {"key": [v1, v2]} (any of)
Filters = Mapping[str, Any]


@dataclass
class Record:
    id: str
    source: str
    text: str
    vector: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""


@dataclass
class Hit:
    id: str
    source: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    #: cosine similarity to the query, when a dense search scored this chunk
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "source": self.source, "score": self.score, "text": self.text, "metadata": self.metadata}
        if self.similarity is not None:
            d["similarity"] = self.similarity
        return d


@runtime_checkable
class VectorStore(Protocol):
    """The chunks of one collection: atomic per-source writes, dense and BM25 search, filters."""

    #: the embedder the collection was built with, and its vectors' dimension (None until known)
    embedder: str | None
    dim: int | None

    @property
    def location(self) -> str:
        """Where the data lives (a file, a folder or an object-store URI), for display."""

    def replace_source(self, source: str, records: Sequence[Record], source_hash: str | None = None) -> None:
        """Atomically replace every chunk of ``source`` and record its content hash."""

    def upsert(self, records: Sequence[Record]) -> None:
        """Insert records, replacing any with the same id."""

    def delete_source(self, source: str) -> int:
        """Delete a source's chunks and its hash; return how many chunks went."""

    def source_hashes(self) -> dict[str, str]:
        """{source: content hash} for every source stored."""

    def sources(self) -> list[dict[str, Any]]:
        """One ``{"source", "hash", "chunks", "updated"}`` per source, by source name."""

    def texts_in_order(self) -> list[str]:
        """Each source's chunks joined in document order (for summaries), sources by name."""

    def chunks(self) -> list[Hit]:
        """Every chunk as a Hit (score 0), sources by name and each source's chunks in document order."""

    def query(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """Top-k chunks by cosine similarity (vectors are unit length)."""

    def search_text(self, text: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """Top-k chunks by BM25 over the chunk text."""

    def vectors_by_hash(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors for chunk content hashes (to skip re-embedding)."""

    def count(self, filters: Filters | None = None) -> int:
        """Number of chunks (matching ``filters``)."""

    def close(self) -> None: ...


@runtime_checkable
class StoreBackend(Protocol):
    """The class side of a store: how a collection's folder becomes a :class:`VectorStore`."""

    #: the name it is registered under in ``genstack.stores`` and chosen with (``--store NAME``)
    name: str

    @classmethod
    def open_collection(cls, folder: Path, *, dim: int | None = None, embedder: str | None = None,
                        read_only: bool = False, settings: Any = None) -> VectorStore:
        """Open (creating when missing, unless ``read_only``) the store of the collection in ``folder``."""

    @classmethod
    def exists(cls, folder: Path) -> bool:
        """Does ``folder`` hold a collection of this backend?"""
