"""BM25 by a sparse matrix (memory-mapped numpy arrays) beside a SQLite store's FTS5 index.

FTS5 answers a BM25 query by walking each query term's posting list through SQLite's B-tree pages:
about 9 ms at 5k chunks, 85 ms at 100k and 830 ms at 1M on this machine (benchmarks/RESULTS.md,
"BM25 at scale"). The design of bm25s (Lù 2024) keeps every chunk's BM25 weight per term in one
precomputed sparse matrix, term-major, and answers by adding a few slices of it: tens of times
faster. This module is that design, fed by FTS5's own index and scored by FTS5's own formula, so
both engines give the same ranking.

It is a **derived** index. The chunks table and its FTS5 index stay the source of truth and are
written in one transaction as before; this index is read out of FTS5 (``fts5vocab``) in one read
snapshot of the store and stamped with the store's version, which every write transaction bumps.
A search uses it only while that version is still the store's; otherwise FTS5 answers. So a crash
can leave it stale but never out of step: a stale index is never read, and a half-written one is a
``.partial`` folder that is never read either and is swept by the next build.

The terms are FTS5's: its tokenizer made them at insert time, and a query's words go through the
same tokenizer (an in-memory FTS5 table), so nothing here re-implements tokenizing or stemming.
Scores are FTS5's ``bm25()`` (fts5_aux.c): one field, the row's columns together (FTS5 sums a
term's frequency over columns and uses the row's whole length), k1 1.2, b 0.75, and
idf = ln((N - n + 0.5) / (n + 0.5)), floored at 1e-6 for a term in more than half the chunks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SparseIndex", "build_sparse_index", "load_sparse_index", "query_terms", "sweep"]

FORMAT = 1
K1, B = 1.2, 0.75
IDF_FLOOR = 1e-6
_local = threading.local()


def query_terms(words: list[str], tokenizer: str) -> list[str] | None:
    """The FTS5 term of each of ``words`` under ``tokenizer`` (a ``tokenize=`` argument), in order
    and not deduplicated (two words with one stem are two phrases to FTS5, each scored); None when a
    word makes more than one token (FTS5 would read it as a phrase)."""
    tables = getattr(_local, "tables", None)
    if tables is None:
        tables = _local.tables = {}
    db = tables.get(tokenizer)
    if db is None:
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute("CREATE VIRTUAL TABLE q USING fts5(x, tokenize=%s)" % _quote(tokenizer))
        db.execute("CREATE VIRTUAL TABLE qv USING fts5vocab(q, 'instance')")
        tables[tokenizer] = db
    db.execute("BEGIN")
    try:
        db.executemany("INSERT INTO q(rowid, x) VALUES (?, ?)", [(i + 1, w) for i, w in enumerate(words)])
        rows = db.execute("SELECT doc, term FROM qv ORDER BY doc, offset").fetchall()
    finally:
        db.execute("ROLLBACK")
    docs = [d for d, _ in rows]
    if len(set(docs)) != len(docs):
        return None
    return [t for _, t in rows]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _version_dir(base: Path, version: int) -> Path:
    return base.with_name(f"{base.name}-v{version}")


@dataclass
class SparseIndex:
    """Term-major BM25 weights: chunk positions ``indices[indptr[t]:indptr[t + 1]]`` hold term ``t``
    with weights ``data[...]``; ``rowids`` maps positions to the store's rowids."""

    version: int
    tokenizer: str
    vocab: dict[str, int]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    rowids: np.ndarray

    def search(self, terms: list[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(rowid, score) of the ``k`` best chunks that hold at least one of ``terms`` (FTS5 terms,
        from :func:`query_terms`; one given twice counts twice, as in FTS5), best first; ``allowed``: the rowids a filter lets through."""
        scores = np.zeros(len(self.rowids), dtype=np.float64)
        for term in terms:
            t = self.vocab.get(term)
            if t is not None:
                s, e = self.indptr[t], self.indptr[t + 1]
                scores[self.indices[s:e]] += self.data[s:e]  # a term's chunks are distinct
        if allowed is not None:
            scores[~np.isin(self.rowids, allowed)] = 0.0
        hit = np.flatnonzero(scores > 0)
        if hit.size > k:
            hit = hit[np.argpartition(-scores[hit], k - 1)[:k]]
        hit = hit[np.lexsort((self.rowids[hit], -scores[hit]))]  # ties in rowid order, as FTS5
        return [(int(self.rowids[i]), float(scores[i])) for i in hit]


def bm25_weights(indptr: np.ndarray, doc: np.ndarray, tf: np.ndarray, lengths: np.ndarray,
                 block: int = 1 << 22) -> np.ndarray:
    """FTS5's BM25 weight of each posting of the term-major matrix ``indptr``/``doc`` (chunk
    positions), ``tf`` its term frequency, ``lengths`` each chunk's token count; computed a block of
    terms at a time, so the float64 temporaries stay small."""
    n = len(lengths)
    df = np.diff(indptr)
    idf = np.log((n - df + 0.5) / (df + 0.5))
    idf[idf <= 0] = IDF_FLOOR
    avgdl = max(float(lengths.sum()) / n if n else 0.0, 1e-9)
    norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)  # per chunk
    data = np.empty(len(doc), dtype=np.float32)
    t0 = 0
    while t0 < len(df):
        t1 = max(int(np.searchsorted(indptr, indptr[t0] + block, side="right")) - 1, t0 + 1)
        s, e = int(indptr[t0]), int(indptr[t1])
        f = tf[s:e].astype(np.float64)
        data[s:e] = np.repeat(idf[t0:t1], df[t0:t1]) * f * (K1 + 1) / (f + norm[doc[s:e]])
        t0 = t1
    return data


def build_sparse_index(base: Path, db: sqlite3.Connection, version: int, *, fts: str = "chunks_fts",
                       content: str = "chunks", tokenizer: str, batch: int = 1 << 20) -> Path:
    """Read the FTS5 index ``fts`` (over ``content``) through ``db``, a connection inside a read
    transaction of the store at ``version``, into ``base-vN``.

    Written into a ``.partial`` folder first and renamed when complete; then older versions go
    (a reader holding one has it memory-mapped, which outlives the unlink)."""
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.genstack_vocab_row USING fts5vocab(main, {fts}, 'row')")
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.genstack_vocab_inst USING fts5vocab(main, {fts}, 'instance')")
    rowids = np.fromiter((r[0] for r in db.execute(f"SELECT rowid FROM {content} ORDER BY rowid")), dtype=np.int64)
    terms: list[str] = []
    df_list: list[int] = []
    cnt_list: list[int] = []
    for term, d, c in db.execute("SELECT term, doc, cnt FROM temp.genstack_vocab_row"):
        terms.append(term)
        df_list.append(d)
        cnt_list.append(c)
    df = np.asarray(df_list, dtype=np.int64)
    cnt = np.asarray(cnt_list, dtype=np.int64)
    del df_list, cnt_list
    indptr = np.zeros(len(terms) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    # Every occurrence, term-major (the row table's term order) and rowid-ascending within a term:
    # a posting is a run of one rowid, its length the term frequency. Read in batches that end on a
    # term boundary, so no run is split; each term's postings must number its document count.
    ends = np.cumsum(cnt)
    doc = np.empty(int(indptr[-1]), dtype=np.int32)
    tf = np.empty(int(indptr[-1]), dtype=np.float32)
    lengths = np.zeros(len(rowids), dtype=np.float64)  # tokens per chunk
    cur = db.execute("SELECT doc FROM temp.genstack_vocab_inst")
    done, t0 = 0, 0
    while t0 < len(terms):
        t1 = max(int(np.searchsorted(ends, done + batch, side="right")), t0 + 1)
        want = int(ends[t1 - 1]) - done
        occ = np.array(cur.fetchmany(want), dtype=np.int64).reshape(-1)
        if len(occ) != want:
            raise RuntimeError("the FTS5 index changed while it was read")
        term = np.repeat(np.arange(t0, t1), cnt[t0:t1])
        start = np.flatnonzero(np.r_[True, (occ[1:] != occ[:-1]) | (term[1:] != term[:-1])])
        if not np.array_equal(np.bincount(term[start] - t0, minlength=t1 - t0), df[t0:t1]):
            raise RuntimeError("the FTS5 vocabulary and its postings disagree")
        s, e = int(indptr[t0]), int(indptr[t1])
        doc[s:e] = np.searchsorted(rowids, occ[start])
        tf[s:e] = np.diff(np.r_[start, len(occ)])
        lengths += np.bincount(doc[s:e], weights=tf[s:e], minlength=len(rowids))
        done += want
        t0 = t1
    if cur.fetchone() is not None:
        raise RuntimeError("the FTS5 index changed while it was read")
    data = bm25_weights(indptr, doc, tf, lengths)
    del tf
    final = _version_dir(base, version)
    tmp = final.with_name(f"{final.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        tmp.mkdir(parents=True)
        for name, arr in (("indptr", indptr), ("indices", doc), ("data", data), ("rowids", rowids)):
            np.save(tmp / f"{name}.npy", arr)
        (tmp / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "version": version, "chunks": len(rowids),
                                                   "terms": len(terms), "tokenizer": tokenizer, "k1": K1, "b": B}))
        try:
            os.replace(tmp, final)
        except OSError:  # the same version built by another thread or process first: keep that one
            if not (final / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sweep(base, keep=final)
    return final


def _parse(name: str, base: str) -> tuple[int, int | None] | None:
    """(version, pid of its builder if a partial) from a folder name ``base-vN[.PID-TOKEN.partial]``."""
    rest = name[len(base) + 2:]
    version, _, partial = rest.partition(".")
    if not version.isdigit():
        return None
    if not partial:
        return int(version), None
    pid = partial.split("-", 1)[0]
    return (int(version), int(pid)) if pid.isdigit() and partial.endswith(".partial") else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep(base: Path, keep: Path | None = None) -> None:
    """Remove the versions of ``base`` older than ``keep`` (all of them without it) and the partial
    builds of processes that died. A newer version (another builder's) and the partial builds of
    live processes stay."""
    newest = _parse(keep.name, base.name)[0] if keep is not None else None
    for p in base.parent.glob(f"{base.name}-v*"):
        got = _parse(p.name, base.name)
        if p == keep or got is None or not p.is_dir():
            continue
        version, pid = got
        if pid is not None:
            if _alive(pid):
                continue  # being built
        elif newest is not None and version > newest:
            continue
        shutil.rmtree(p, ignore_errors=True)


def load_sparse_index(base: Path, version: int) -> SparseIndex | None:
    """The index built at ``version``, memory-mapped, or None when there is none for it."""
    folder = _version_dir(base, version)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("version") != version:
            return None
        terms = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("indptr", "indices", "data", "rowids")}
    except (OSError, ValueError):  # none, or swept by a newer build meanwhile
        return None
    return SparseIndex(version, meta["tokenizer"], {t: i for i, t in enumerate(terms)}, **arrays)
