"""BM25 at scale: SQLite FTS5 (genstack's store before), FTS5 with the OR query capped to the rarest
terms, genstack's sparse keyword index (genstack.stores.sparse: bm25s' design, read out of FTS5,
FTS5's scores) and bm25s itself (a sparse-matrix scorer with a memory-mapped index), on the same
texts and queries.

    python benchmarks/bm25.py [--sizes 5183 100000 1000000] [--caps 4 6 8] [--queries 300]

The corpus at every size holds the 5,183 real BEIR SciFact documents (title and text, one chunk
each) and, beyond them, distractor chunks made of three real SciFact sentences drawn at random.
So nDCG@10 on the 300 SciFact test queries is measured at every size, 1M included, against the
same judgements; the distractors contain the relevant documents' own sentences, so quality falls
with size for every engine alike. The distractors repeat a 45k-sentence vocabulary, which makes
posting lists longer than a real corpus of that size would: a pessimistic case for FTS5.

genstack's rows go through ``SQLiteStore.replace_source`` as ``genstack ingest`` writes them (with
4-d placeholder vectors: no model runs here). bm25s tokenizes with the same stopwords and Porter
stemmer (PyStemmer) and indexes title + text as one field, as FTS5's bm25() does. Each query is
timed one at a time, reading the top 10 ids; every engine's time includes tokenizing the query.
The sparse index's build time is its own (FTS5's build is before it); its memory is the process's
peak RSS before and after the build.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from genstack.evaluation.retrieval import load_beir, ndcg_at_k  # noqa: E402
from genstack.stores.base import Record  # noqa: E402
from genstack.stores.sqlite import _STOP, SQLiteStore  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval" / "scifact"
PER_SOURCE = 1000


def corpus(n: int) -> list[tuple[str, str, str]]:
    """(doc id, title, text): the SciFact documents, then distractors to ``n``."""
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    out = [(str(d["_id"]), d.get("title", ""), d["text"]) for d in docs]
    pool = [s.strip() for d in docs for s in d["text"].split(". ") if len(s.split()) > 5]
    rng = random.Random(0)
    for i in range(max(0, n - len(out))):
        out.append((f"x{i}", "", ". ".join(rng.choice(pool) for _ in range(3))))
    return out[:max(n, len(docs))]


def rarest(store: SQLiteStore, text: str, m: int, df: dict[str, int]) -> list[str]:
    """The ``m`` query words whose FTS5 terms are in the fewest chunks (query order kept): the capped
    OR query. Each word is stemmed by FTS5's own tokenizer (a temp FTS5 table read through
    fts5vocab) and its document count read from the index's fts5vocab, once per term (``df``)."""
    words = list(dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in _STOP))
    if len(words) <= m:
        return words
    db = store.db
    db.executescript(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.q_tok USING fts5(t, tokenize='porter unicode61 remove_diacritics 2');"
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.q_tok_terms USING fts5vocab(temp, q_tok, instance);"
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_terms USING fts5vocab(main, chunks_fts, row);")
    db.executemany("INSERT INTO temp.q_tok(rowid, t) VALUES (?, ?)", list(enumerate(words)))
    terms: dict[int, list[str]] = {}
    for term, i in db.execute("SELECT term, doc FROM temp.q_tok_terms"):
        terms.setdefault(i, []).append(term)
    db.execute("DELETE FROM temp.q_tok")
    for term in {t for ts in terms.values() for t in ts} - df.keys():
        r = db.execute("SELECT doc FROM temp.chunks_terms WHERE term = ?", (term,)).fetchone()
        df[term] = int(r[0]) if r else 0
    known = [i for i in range(len(words)) if any(df.get(t, 0) for t in terms.get(i, []))]
    keep = set(sorted(known, key=lambda i: (max(df[t] for t in terms[i]), i))[:m])
    return [w for i, w in enumerate(words) if i in keep]


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def timed(search, queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    runs, lat = {}, []
    for qid, q in queries.items():
        t = time.perf_counter()
        runs[qid] = search(q)
        lat.append(time.perf_counter() - t)
    return runs, lat


def ndcg(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    return float(np.mean([ndcg_at_k(runs[q], qrels[q], 10) for q in runs]))


def row(name: str, n: int, runs, lat, qrels, extra: str = "") -> dict:
    r = {"engine": name, "chunks": n, "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "ndcg@10": ndcg(runs, qrels)}
    print(f"{n:>9,} {name:<14} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  nDCG@10 {r['ndcg@10']:.4f} {extra}",
          flush=True)
    return r


ENGINES = ("fts5", "caps", "sparse", "bm25s")


def run_size(n: int, caps: list[int], queries: dict[str, str], qrels, work: Path,
             engines: tuple[str, ...] = ENGINES) -> list[dict]:
    texts = corpus(n)
    out = []
    # -- genstack's store (FTS5) ------------------------------------------------------
    store = SQLiteStore(work / f"fts-{n}.db", dim=4)
    t = time.perf_counter()
    vec = np.ones(4, dtype=np.float32) / 2
    for s in range(0, len(texts), PER_SOURCE):
        part = texts[s:s + PER_SOURCE]
        src = f"src{s // PER_SOURCE:05d}"
        store.replace_source(src, [Record(d, src, text, vec, {"title": title} if title else {}, f"h{s + j}")
                                   for j, (d, title, text) in enumerate(part)], src)
    store.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
    build = time.perf_counter() - t
    print(f"{n:>9,} fts5 build {build:.0f} s", flush=True)

    def fts(q):
        return [h.id for h in store.search_text(q, k=10)]

    if "fts5" in engines:
        fts("warm up the page cache")
        runs, lat = timed(fts, queries)
        out.append(row("fts5", n, runs, lat, qrels) | {"build_s": build})
    df: dict[str, int] = {}
    for m in caps if "caps" in engines else []:
        def capped(q, m=m):
            return [h.id for h in store.search_text(" ".join(rarest(store, q, m, df)), k=10)]

        df.clear()
        cold_runs, cold = timed(capped, queries)  # the first time each term's count is read
        runs, lat = timed(capped, queries)
        out.append(row(f"fts5-cap{m}", n, runs, lat, qrels, f"(first pass p50 {pct(cold, 50):.1f} ms)")
                   | {"cold_p50_ms": pct(cold, 50)})
    # -- genstack's sparse index (bm25s' design, FTS5's terms and scores) -----------------
    rss0 = peak_rss_mb()
    t = time.perf_counter()
    store.keyword_index = "sparse"
    assert store.update_keyword_index() == "sparse"
    build = time.perf_counter() - t
    rss1 = peak_rss_mb()
    disk = sum(f.stat().st_size for f in work.glob(f"fts-{n}.bm25-v*/*")) / 2**20
    fts("warm up")
    runs, lat = timed(fts, queries)
    out.append(row("genstack-sparse", n, runs, lat, qrels,
                   f"(build {build:.1f} s; {disk:.0f} MB on disk; process peak RSS {rss0:.0f} -> {rss1:.0f} MB)")
               | {"build_s": build, "disk_mb": disk, "peak_rss_before_mb": rss0, "peak_rss_after_mb": rss1})
    store.db.close()
    if "bm25s" not in engines:
        return out
    # -- bm25s ---------------------------------------------------------------------------
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("porter")
    stop = sorted(_STOP)
    t = time.perf_counter()
    # stopwords kept in the index and dropped from queries, as FTS5 does: 0.01 nDCG@10 better than
    # bm25s' default of dropping them from both, at 5k
    tokens = bm25s.tokenize([f"{title} {text}" for _, title, text in texts], stopwords=None, stemmer=stemmer,
                            token_pattern=r"(?u)\b\w+\b", show_progress=False)
    index = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    index.index(tokens, show_progress=False)
    index.save(work / f"bm25s-{n}")
    build = time.perf_counter() - t
    del index, tokens
    index = bm25s.BM25.load(work / f"bm25s-{n}", mmap=True)
    ids = np.array([d for d, _, _ in texts])

    def bm25s_search(q):
        qt = bm25s.tokenize([q], stopwords=stop, stemmer=stemmer, token_pattern=r"(?u)\b\w+\b", show_progress=False,
                            return_ids=False)
        if not qt[0]:
            return []
        docs, _ = index.retrieve(qt, k=10, show_progress=False, n_threads=1)
        return list(ids[docs[0]])

    bm25s_search("warm up")
    runs, lat = timed(bm25s_search, queries)
    out.append(row("bm25s", n, runs, lat, qrels, f"(build {build:.1f} s)") | {"build_s": build})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[5183, 100_000, 1_000_000])
    ap.add_argument("--caps", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                    help="the engines to time (genstack's sparse index always runs)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the indexes (a temp folder by default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not (SCIFACT / "corpus.jsonl").is_file():
        sys.exit(f"skipped: BEIR SciFact is not at {SCIFACT}")
    data = load_beir(SCIFACT)
    queries = dict(list(data.queries.items())[: args.queries])
    qrels = {q: data.qrels[q] for q in queries}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        rows = [r for n in args.sizes for r in run_size(n, args.caps, queries, qrels, Path(tmp), tuple(args.engines))]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
