"""Retrieval over a collection: dense, BM25, or hybrid by reciprocal rank fusion.

Every mode takes the same metadata filters. Hybrid fuses the two ranked lists
with RRF (Cormack et al. 2009): score(d) = Σ 1 / (rrf_k + rank_i(d)), ranks
from 1, over each list that contains d; the lists are taken ``depth`` deep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from .choices import CHUNK_OVERLAP, CHUNK_SIZE
from .choices import RETRIEVAL_MODES as MODES
from .config import Settings, load_settings
from .embeddings import Embedder, get_embedder, mismatch
from .errors import InvalidParameter
from .stores import open_collection
from .stores.base import Filters, Hit

__all__ = ["Retriever", "TextRetriever", "search", "rrf", "MODES"]

Mode = Literal["dense", "bm25", "hybrid"]
RRF_K = 60
DEPTH = 100


def rrf(lists: Sequence[Sequence[Hit]], k: int, rrf_k: int = RRF_K, weights: Sequence[float] | None = None) -> list[Hit]:
    """Fuse ranked lists of hits; each fused hit's score is its RRF score."""
    weights = weights or [1.0] * len(lists)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, w in zip(lists, weights):
        for rank, h in enumerate(hits, start=1):
            scores[h.id] = scores.get(h.id, 0.0) + w / (rrf_k + rank)
            first.setdefault(h.id, h)
    order = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    out = []
    for i in order:
        h = first[i]
        out.append(Hit(id=h.id, source=h.source, text=h.text, score=scores[i], metadata=h.metadata))
    return out


def _with_similarity(h: Hit, sim: float | None) -> Hit:
    h.similarity = None if sim is None else float(sim)
    return h


@dataclass
class Retriever:
    """Search one collection. Opens the store and embedder once; reuse it for many queries."""

    collection: str
    settings: Settings | None = None
    embedder: Embedder | None = None
    rrf_k: int = RRF_K
    depth: int = DEPTH

    def __post_init__(self) -> None:
        self.settings = self.settings or load_settings()
        self.store = open_collection(self.collection, self.settings)
        if self.embedder is None:
            self.embedder = get_embedder(self.store.embedder, settings=self.settings)  # None: the default
        elif self.store.embedder and self.embedder.name != self.store.embedder:
            raise InvalidParameter(mismatch(self.collection, self.store.embedder, self.embedder.name))

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", filters: Filters | None = None) -> list[Hit]:
        if not isinstance(query, str) or not query.strip():
            raise InvalidParameter("the query is empty")
        if mode not in MODES:
            raise InvalidParameter(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidParameter(f"k must be a positive integer, got {k!r}")
        if mode == "bm25":
            return self.store.search_text(query, k, filters)
        qv = self.embedder.embed_queries([query])[0]
        if mode == "dense":
            return [_with_similarity(h, h.score) for h in self.store.query(qv, k, filters)]
        depth = max(self.depth, k)
        dense = self.store.query(qv, depth, filters)
        fused = rrf([dense, self.store.search_text(query, depth, filters)], k, self.rrf_k)
        sims = {h.id: h.score for h in dense}
        return [_with_similarity(h, sims.get(h.id)) for h in fused]

    def best_similarity(self, query: str, filters: Filters | None = None) -> float:
        """The highest cosine similarity between the query and any chunk (0 for an empty collection)."""
        hits = self.store.query(self.embedder.embed_queries([query])[0], 1, filters)
        return float(hits[0].score) if hits else 0.0

    def close(self) -> None:
        self.store.close()


class TextRetriever:
    """Retrieval over texts handed in with the question instead of a collection.

    The texts are split like ingested files and ranked by cosine similarity
    (every mode is dense: there is no index to fuse with). Used for the API's
    ``documents`` field and by the red-team suites, so that both run the same
    answer pipeline as a collection.
    """

    collection = "documents"

    def __init__(self, texts: Sequence[str | tuple[str, str]], embedder: Embedder, *, chunk_size: int = CHUNK_SIZE,
                 overlap: int = CHUNK_OVERLAP):
        from .documents.base import Document
        from .documents.splitter import Splitter

        docs = []
        for i, t in enumerate(texts):
            name, text = t if isinstance(t, tuple) else (f"document-{i + 1}", t)
            if not isinstance(text, str) or not text.strip():
                raise InvalidParameter(f"document {i + 1} is empty")
            docs.append(Document(text, {"source": name, "title": name}))
        self.embedder = embedder
        chunks = Splitter(embedder, chunk_size=chunk_size, overlap=overlap).split_all(docs)
        self.hits = [Hit(id=f"{c.metadata['source']}:{j}", source=c.metadata["source"], text=c.text, score=0.0,
                         metadata=dict(c.metadata)) for j, c in enumerate(chunks)]
        self._vectors = embedder.embed_passages([h.text for h in self.hits]) if self.hits else None
        self.store = self  # what Asker asks of a store: count()

    def count(self) -> int:
        return len(self.hits)

    def _ranked(self, query: str) -> list[Hit]:
        sims = self._vectors @ self.embedder.embed_queries([query])[0]
        order = sorted(range(len(self.hits)), key=lambda i: -float(sims[i]))
        return [_with_similarity(Hit(self.hits[i].id, self.hits[i].source, self.hits[i].text, float(sims[i]),
                                     self.hits[i].metadata), sims[i]) for i in order]

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", filters: Filters | None = None) -> list[Hit]:
        if not isinstance(query, str) or not query.strip():
            raise InvalidParameter("the query is empty")
        return self._ranked(query)[:k] if self.hits else []

    def best_similarity(self, query: str, filters: Filters | None = None) -> float:
        return float(self._ranked(query)[0].score) if self.hits else 0.0

    def close(self) -> None:
        pass


def search(collection: str, query: str, *, k: int = 5, mode: Mode = "hybrid", filters: Filters | None = None,
           settings: Settings | None = None) -> list[Hit]:
    """One-off search; for many queries keep a :class:`Retriever`."""
    r = Retriever(collection, settings)
    try:
        return r.search(query, k, mode, filters)
    finally:
        r.close()
