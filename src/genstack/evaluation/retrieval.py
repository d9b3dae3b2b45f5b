"""Retrieval evaluation on any BEIR-format folder.

Layout accepted: ``corpus.jsonl`` (``_id``, ``title``, ``text``),
``queries.jsonl`` (``_id``, ``text``) and the judgements either as
``qrels/<split>.tsv`` (BEIR) or ``qrels_<split>.tsv``, each with a header line
and ``query-id  corpus-id  score`` columns.

The corpus is ingested like any other file into a collection (incrementally:
a second run reuses it), each record becoming a document with its ``_id`` in
the metadata. A document's score for a query is the best score of its chunks.

Metrics, as BEIR computes them through pytrec_eval (trec_eval's ``ndcg_cut``):
nDCG@10 with the relevance level itself as the gain (rel over log2(rank + 1);
negative levels count as 0), Recall@10 and @100 (judged-relevant documents found
over all judged-relevant), MRR@10 (reciprocal rank of the first relevant
document), each averaged over the queries that have judgements. As BEIR's
``EvaluateRetrieval.evaluate`` does by default, a retrieved document whose id is
the query's id is dropped (ArguAna and Quora hold the queries in the corpus).
With binary judgements (SciFact) the gains are the same as 2^rel - 1, which this
module used before 2026-12-08; graded sets (NFCorpus, TREC-COVID) differ.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..choices import RETRIEVAL_MODES
from ..config import Settings, load_settings
from ..embeddings.base import Embedder
from ..errors import GenstackError, InvalidParameter

__all__ = ["BeirData", "load_beir", "ndcg_at_k", "recall_at_k", "mrr_at_k", "ranked_documents", "evaluate_beir"]


@dataclass
class BeirData:
    root: Path
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(root: str | Path, split: str = "test") -> BeirData:
    root = Path(root)
    corpus = root / "corpus.jsonl"
    qfile = root / "queries.jsonl"
    for p in (corpus, qfile):
        if not p.is_file():
            raise GenstackError(f"{root} is not a BEIR folder: {p.name} is missing")
    qrels_file = next((p for p in (root / "qrels" / f"{split}.tsv", root / f"qrels_{split}.tsv") if p.is_file()), None)
    if qrels_file is None:
        raise GenstackError(f"no judgements for split {split!r} in {root} (qrels/{split}.tsv or qrels_{split}.tsv)")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        header = next(rows, None)
        if header is None:
            raise GenstackError(f"{qrels_file} is empty")
        for n, row in enumerate(rows, start=2):
            if row == header or not row:  # some exports repeat the header line
                continue
            if len(row) < 3:
                raise GenstackError(f"{qrels_file} line {n}: expected query-id, corpus-id, score")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except ValueError:
                raise GenstackError(f"{qrels_file} line {n}: score {row[2]!r} is not an integer") from None
    queries = {}
    with qfile.open() as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    q = json.loads(line)
                    queries[str(q["_id"])] = q["text"]
                except (ValueError, KeyError):
                    raise GenstackError(f"{qfile} line {n}: expected a JSON object with _id and text") from None
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise GenstackError(f"{len(missing)} judged queries are not in {qfile.name} (first: {missing[0]})")
    return BeirData(root, corpus, {q: queries[q] for q in qrels}, qrels)


def ndcg_at_k(ranked: Sequence[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(max(rels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], rels: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def ranked_documents(hits) -> list[str]:
    """The BEIR document ids of ranked chunk hits, each document at its best chunk's rank."""
    return list(dict.fromkeys(str(h.metadata.get("_id", h.id)) for h in hits))


def evaluate_beir(
    root: str | Path,
    *,
    split: str = "test",
    modes: Sequence[str] = RETRIEVAL_MODES,
    settings: Settings | None = None,
    embedder: Embedder | str | None = None,
    collection: str | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    depth: int = 100,
    progress=None,
) -> dict:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 on a BEIR folder; its corpus is ingested into a collection."""
    from ..documents import LoaderOptions
    from ..ingestion import ingest
    from ..retrieval import MODES, Retriever

    for m in modes:
        if m not in MODES:
            raise InvalidParameter(f"mode must be one of {', '.join(MODES)}, got {m!r}")
    settings = settings or load_settings()
    data = load_beir(root, split)
    name = collection or f"beir-{Path(root).resolve().name}"
    t0 = time.perf_counter()
    report = ingest([data.corpus], name, settings=settings, embedder=embedder, chunk_size=chunk_size, overlap=overlap,
                    loader_options=LoaderOptions(text_field="text"), progress=progress)
    if report.failed:
        raise GenstackError(f"could not ingest the corpus: {report.failed[0][1]}")
    ingest_s = time.perf_counter() - t0
    retriever = Retriever(name, settings, embedder=embedder if isinstance(embedder, Embedder) else None)
    results: dict = {"dataset": str(root), "split": split, "queries": len(data.queries), "collection": name,
                     "embedder": retriever.embedder.name, "ingest_seconds": round(ingest_s, 1), "modes": {}}
    try:
        for mode in modes:
            t = time.perf_counter()
            sums = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
            for qid, text in data.queries.items():
                hits = retriever.search(text, k=depth * 2, mode=mode)
                ranked = [d for d in ranked_documents(hits) if d != qid]  # BEIR's ignore_identical_ids
                rels = data.qrels[qid]
                sums["ndcg@10"] += ndcg_at_k(ranked, rels, 10)
                sums["recall@10"] += recall_at_k(ranked, rels, 10)
                sums["recall@100"] += recall_at_k(ranked, rels, 100)
                sums["mrr@10"] += mrr_at_k(ranked, rels, 10)
            n = len(data.queries)
            elapsed = time.perf_counter() - t
            results["modes"][mode] = {k: round(v / n, 4) for k, v in sums.items()} | {
                "ms_per_query": round(1000 * elapsed / n, 1)}
    finally:
        retriever.close()
    return results
