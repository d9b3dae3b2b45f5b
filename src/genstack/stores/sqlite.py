"""The embedded default store: one SQLite file per collection, vectors in numpy.

Why not LanceDB (the suggested default)? Measured on this machine (see
benchmarks/RESULTS.md and shared/notes/baselines.md): a flat numpy scan of
100,000 × 384 vectors answers top-10 in ~8 ms where LanceDB's flat search took
~241 ms, and at the scale one machine ingests (up to a few hundred thousand
chunks) a flat scan is exact and fast enough. SQLite adds what matters for a
document store: ACID transactions (an ingest killed with SIGKILL leaves the
store as it was before the file being written), FTS5 with BM25 ranking in the
same file and the same transaction as the chunks, and json_extract filters.

Layout: ``chunks`` (text, JSON metadata, float32 vector blob), ``sources``
(content hash per file), ``chunks_fts`` (FTS5 index kept in sync by triggers),
``meta`` (embedder, dimension, a version counter bumped by every write). The
vector matrix is loaded once and cached until the version changes.

Big collections also get a derived BM25 index by sparse matrices (:mod:`genstack.stores.sparse`),
read out of FTS5 and stamped with the version it was built at and used only while that version is
the store's; FTS5 answers otherwise. From 200,000 chunks the dense scan ranks the vectors' sign codes
first and scores only the nearest exactly (:mod:`genstack.stores.binary`, ``dense_index``); the codes
are rebuilt with the matrix cache, so they too follow the version.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import GenstackError, InvalidParameter
from .base import Filters, Hit, Record, built_with, check_filter_key, check_vectors, top_k
from .._cores import blas_one_thread
from .binary import BinaryCodes, rescore_count
from .migrations import FTS_TOKENIZER, migrate
from .sparse import build_sparse_index, load_sparse_index, query_terms, sweep

__all__ = ["SQLiteStore"]

_COLUMNS = {"source", "id", "content_hash"}
# English stopwords dropped from BM25 queries (Lucene's default English set)
_STOP = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)


def _locked(method):
    """Reads take the store's lock: a write transaction in progress on this connection (from
    another thread) must never be visible half done."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def _title(meta: dict[str, Any]) -> str:
    """What BM25 indexes besides the text: the document title and heading path."""
    parts = [str(meta.get("title") or ""), str(meta.get("heading_path") or "")]
    return " ".join(p for p in parts if p)


class SQLiteStore:
    name = "sqlite"
    FILE = "store.sqlite"

    @classmethod
    def open_collection(cls, folder: Path, *, dim: int | None = None, embedder: str | None = None,
                        read_only: bool = False, settings: Any = None) -> "SQLiteStore":
        return cls(Path(folder) / cls.FILE, dim=dim, embedder=embedder, read_only=read_only,
                   keyword_index=getattr(settings, "keyword_index", "auto"),
                   dense_index=getattr(settings, "dense_index", "auto"))

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (Path(folder) / cls.FILE).is_file()

    @property
    def location(self) -> str:
        return str(self.path)

    def __init__(self, path: str | Path, *, dim: int | None = None, embedder: str | None = None,
                 read_only: bool = False, keyword_index: str = "auto", dense_index: str = "auto"):
        self.path = Path(path)
        self.read_only = read_only
        self.keyword_index = keyword_index  # "auto", "sparse" or "fts5": see update_keyword_index
        self.dense_index = dense_index  # "auto", "exact" or "binary": see dense_engine
        self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if read_only else f"file:{self.path}"
        try:
            self.db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if not read_only:
                migrate(self.db)
        except sqlite3.DatabaseError as exc:
            raise GenstackError(f"cannot open the store at {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._sparse_cache: tuple[int, Any] | None = None
        self._codes: tuple[int, BinaryCodes] | None = None
        if not read_only:
            self._init_meta(dim, embedder)
        self.dim = int(self.meta("dim") or 0) or None
        self.embedder = self.meta("embedder")

    # -- meta ---------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _init_meta(self, dim: int | None, embedder: str | None) -> None:
        with self._write():
            for key, value in (("embedder", embedder), ("dim", dim)):
                if value is None:
                    continue
                stored = self.meta(key)
                if stored is None:
                    self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, str(value)))
                elif stored != str(value):
                    raise built_with(self.path.parent.name, key, stored, value)
            if self.meta("created") is None:
                self.db.execute("INSERT INTO meta(key, value) VALUES ('created', ?)", (str(time.time()),))

    def version(self) -> int:
        return int(self.meta("version") or 0)

    # -- writing ------------------------------------------------------------------------
    class _Tx:
        def __init__(self, store: "SQLiteStore"):
            self.store = store

        def __enter__(self):
            self.store._lock.acquire()
            self.store.db.execute("BEGIN IMMEDIATE")
            self.changes = self.store.db.total_changes
            return self.store.db

        def __exit__(self, exc_type, exc, tb):
            try:
                if exc_type is None:
                    # a transaction that changed nothing (opening a store) keeps the version: the
                    # caches stamped with it (the vectors, the sparse keyword index) stay current
                    if self.store.db.total_changes != self.changes:
                        self.store.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")
                    self.store.db.execute("COMMIT")
                else:
                    self.store.db.execute("ROLLBACK")
            finally:
                self.store._lock.release()
            return False

    def _write(self) -> "_Tx":
        if self.read_only:
            raise GenstackError("this store was opened read-only")
        return SQLiteStore._Tx(self)

    def _check(self, records: Sequence[Record]) -> None:
        check_vectors(records, self.dim)

    def _insert(self, db: sqlite3.Connection, records: Sequence[Record]) -> None:
        db.executemany(
            "INSERT INTO chunks(id, source, title, text, metadata, content_hash, vector) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET source=excluded.source, title=excluded.title, text=excluded.text, "
            "metadata=excluded.metadata, content_hash=excluded.content_hash, vector=excluded.vector",
            [
                (r.id, r.source, _title(r.metadata), r.text, json.dumps(r.metadata, ensure_ascii=False, default=str),
                 r.content_hash, np.asarray(r.vector, dtype=np.float32).tobytes())
                for r in records
            ],
        )

    def _set_dim(self, db: sqlite3.Connection, records: Sequence[Record]) -> None:
        if self.dim is None and records:
            self.dim = int(np.asarray(records[0].vector).shape[0])
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('dim', ?)", (str(self.dim),))

    def replace_source(self, source: str, records: Sequence[Record], source_hash: str | None = None) -> None:
        self._check(records)
        if any(r.source != source for r in records):
            raise InvalidParameter("replace_source: every record must belong to the source being replaced")
        with self._write() as db:
            self._set_dim(db, records)
            db.execute("DELETE FROM chunks WHERE source = ?", (source,))
            self._insert(db, records)
            db.execute(
                "INSERT INTO sources(source, hash, n_chunks, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(source) DO UPDATE SET hash=excluded.hash, n_chunks=excluded.n_chunks, updated=excluded.updated",
                (source, source_hash, len(records), time.time()),
            )

    def finish_source(self, source: str, ids: Sequence[str], source_hash: str | None = None) -> None:
        """End a source written in parts by :meth:`upsert`: its chunks not in ``ids`` go, its hash is set,
        in one transaction, without the vectors passing through again (see :mod:`genstack.stores.base`)."""
        with self._write() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_ids(id TEXT PRIMARY KEY)")
            db.execute("DELETE FROM keep_ids")
            db.executemany("INSERT OR IGNORE INTO keep_ids(id) VALUES (?)", ((i,) for i in ids))
            db.execute("DELETE FROM chunks WHERE source = ? AND id NOT IN (SELECT id FROM keep_ids)", (source,))
            db.execute("DELETE FROM keep_ids")
            n = db.execute("SELECT COUNT(*) FROM chunks WHERE source = ?", (source,)).fetchone()[0]
            db.execute(
                "INSERT INTO sources(source, hash, n_chunks, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(source) DO UPDATE SET hash=excluded.hash, n_chunks=excluded.n_chunks, updated=excluded.updated",
                (source, source_hash, n, time.time()),
            )

    def upsert(self, records: Sequence[Record]) -> None:
        self._check(records)
        with self._write() as db:
            self._set_dim(db, records)
            self._insert(db, records)
            for source in {r.source for r in records}:
                db.execute(
                    "INSERT INTO sources(source, hash, n_chunks, updated) VALUES (?, NULL, 0, ?) "
                    "ON CONFLICT(source) DO NOTHING", (source, time.time()))
                db.execute("UPDATE sources SET n_chunks = (SELECT COUNT(*) FROM chunks WHERE source = ?) WHERE source = ?",
                           (source, source))

    def delete_source(self, source: str) -> int:
        with self._write() as db:
            n = db.execute("DELETE FROM chunks WHERE source = ?", (source,)).rowcount
            db.execute("DELETE FROM sources WHERE source = ?", (source,))
        return n

    # -- reading ------------------------------------------------------------------------
    @_locked
    def source_hashes(self) -> dict[str, str]:
        return {s: h for s, h in self.db.execute("SELECT source, hash FROM sources") if h is not None}

    @_locked
    def sources(self) -> list[dict[str, Any]]:
        return [
            {"source": s, "hash": h, "chunks": n, "updated": u}
            for s, h, n, u in self.db.execute("SELECT source, hash, n_chunks, updated FROM sources ORDER BY source")
        ]

    def _where(self, filters: Filters | None) -> tuple[str, list[Any]]:
        if not filters:
            return "", []
        clauses, args = [], []
        for key, value in filters.items():
            check_filter_key(key)
            col = f"c.{key}" if key in _COLUMNS else f"json_extract(c.metadata, '$.{key}')"
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            if not values:
                clauses.append("0")
                continue
            alts = []
            for v in values:
                if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
                    alts.append(f"{col} IS ?")
                    args.append(v)
                else:
                    # metadata values come back as their JSON type: compare numbers given as text too
                    alts.append(f"CAST({col} AS TEXT) = ?")
                    args.append(str(v))
            clauses.append("(" + " OR ".join(alts) + ")")
        return " AND ".join(clauses), args

    @_locked
    def count(self, filters: Filters | None = None) -> int:
        where, args = self._where(filters)
        sql = "SELECT COUNT(*) FROM chunks c" + (f" WHERE {where}" if where else "")
        return int(self.db.execute(sql, args).fetchone()[0])

    def _matrix(self) -> tuple[np.ndarray, np.ndarray]:
        version = self.version()
        if self._cache is None or self._cache[0] != version:
            rows = self.db.execute("SELECT rowid, vector FROM chunks ORDER BY rowid").fetchall()
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            if rows:
                mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            else:
                mat = np.zeros((0, self.dim or 0), dtype=np.float32)
            self._cache = (version, rowids, mat)
        return self._cache[1], self._cache[2]

    def _hits(self, scored: list[tuple[int, float]]) -> list[Hit]:
        if not scored:
            return []
        ids = [r for r, _ in scored]
        rows = {
            r[0]: r
            for r in self.db.execute(
                f"SELECT rowid, id, source, text, metadata FROM chunks WHERE rowid IN ({','.join('?' * len(ids))})", ids
            )
        }
        out = []
        for rowid, score in scored:
            r = rows.get(rowid)
            if r is not None:
                out.append(Hit(id=r[1], source=r[2], text=r[3], score=float(score), metadata=json.loads(r[4])))
        return out

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if not filters:
            return None
        where, args = self._where(filters)
        return np.fromiter((r[0] for r in self.db.execute(f"SELECT c.rowid FROM chunks c WHERE {where}", args)),
                           dtype=np.int64)

    @_locked
    def query(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        if k < 1:
            raise InvalidParameter(f"k must be at least 1, got {k}")
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        rowids, mat = self._matrix()
        if mat.shape[0] == 0:
            return []
        if q.shape[0] != mat.shape[1]:
            raise InvalidParameter(f"query vector has {q.shape[0]} dimensions, the collection {mat.shape[1]}")
        allowed = self._allowed(filters)
        mask = None if allowed is None else np.isin(rowids, allowed)
        if self._dense_engine(len(rowids)) == "binary":
            rows = self._binary(mat).candidates(q, rescore_count(k, len(rowids)), mask)
            with blas_one_thread():  # see genstack._cores: no BLAS worker left spinning
                scores = mat[rows] @ q  # exact cosines of the candidates only
            return self._hits([(int(rowids[rows[i]]), float(scores[i])) for i in top_k(scores, k)])
        # a scan of fewer than BINARY_MIN_CHUNKS vectors takes a few ms on one BLAS thread; a bigger
        # exact one (dense_index = "exact") keeps every thread: it is 2x faster there
        with blas_one_thread() if len(rowids) < self.BINARY_MIN_CHUNKS else contextlib.nullcontext():
            scores = mat @ q
        top = top_k(scores, k, mask)
        return self._hits([(int(rowids[i]), float(scores[i])) for i in top])

    #: ``dense_index = "auto"`` ranks sign codes first from this many chunks up (below it the exact
    #: scan takes a few milliseconds and the codes would cost more than they save)
    BINARY_MIN_CHUNKS = 200_000

    def _dense_engine(self, n: int) -> str:
        if self.dense_index == "auto":
            return "binary" if n >= self.BINARY_MIN_CHUNKS else "exact"
        return self.dense_index

    def dense_engine(self) -> str:
        """What answers vector queries now: "exact" (every vector scored) or "binary" (sign codes
        first, the nearest rescored exactly; :mod:`genstack.stores.binary`)."""
        with self._lock:
            return self._dense_engine(self.count())

    def _binary(self, mat: np.ndarray) -> BinaryCodes:
        version = self._cache[0] if self._cache is not None else self.version()
        if self._codes is None or self._codes[0] != version:
            self._codes = (version, BinaryCodes(mat))
        return self._codes[1]

    @staticmethod
    def fts_query(text: str) -> str:
        """A free-text question as an FTS5 query: its words OR-ed, stopwords dropped."""
        words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOP]
        return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))

    @_locked
    def search_text(self, text: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        if k < 1:
            raise InvalidParameter(f"k must be at least 1, got {k}")
        match = self.fts_query(text)
        if not match:
            return []
        sparse = self._sparse()
        if sparse is not None:
            words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOP]
            terms = query_terms(list(dict.fromkeys(words)), sparse.tokenizer)
            if terms is not None:  # else a word is a phrase to FTS5: it answers
                return self._hits(sparse.search(terms, k, self._allowed(filters)))
        where, args = self._where(filters)
        sql = (
            "SELECT c.rowid, -bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ?" + (f" AND {where}" if where else "") + " ORDER BY bm25(chunks_fts) LIMIT ?"
        )
        return self._hits([(r[0], r[1]) for r in self.db.execute(sql, [match, *args, k])])

    # -- the derived keyword index ------------------------------------------------------
    #: ``keyword_index = "auto"`` builds the sparse BM25 index from this many chunks up (FTS5 takes
    #: about 10 ms a query at 5k chunks and grows with the collection; the build costs a full read)
    SPARSE_MIN_CHUNKS = 20_000

    @property
    def _sparse_base(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.bm25")

    def _sparse(self) -> Any:
        """The sparse BM25 index built at the store's current version, or None (FTS5 answers)."""
        if self.keyword_index == "fts5":
            return None
        version = self.version()
        if self._sparse_cache is not None and self._sparse_cache[0] == version:
            return self._sparse_cache[1]
        index = load_sparse_index(self._sparse_base, version)  # a stat when there is none (another
        self._sparse_cache = (version, index) if index is not None else None  # process may build it)
        return index

    def keyword_engine(self) -> str:
        """What answers BM25 queries now: "sparse" (a current sparse index) or "fts5"."""
        with self._lock:
            return "sparse" if self._sparse() is not None else "fts5"

    def update_keyword_index(self) -> str:
        """Build the sparse BM25 index for the store as it is now, if the ``keyword_index`` setting
        asks for one ("sparse": always; "auto": from :attr:`SPARSE_MIN_CHUNKS` chunks; "fts5":
        never, and any built one is removed). Returns the engine that answers BM25 queries now.

        The index is read out of FTS5 in one snapshot, on a connection of its own, so searches and
        writes go on meanwhile; a write during the build makes the new index stale, and FTS5
        answers until the next build."""
        if self.keyword_index == "fts5":
            sweep(self._sparse_base)
            return "fts5"
        if self.keyword_index != "sparse" and self.count() < self.SPARSE_MIN_CHUNKS:
            if self.keyword_engine() == "fts5":
                sweep(self._sparse_base)  # a collection that shrank: its old index is stale
            return self.keyword_engine()
        if self.keyword_engine() == "sparse":
            return "sparse"
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        try:
            db.execute("BEGIN")
            row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            build_sparse_index(self._sparse_base, db, int(row[0]) if row else 0, tokenizer=FTS_TOKENIZER)
            db.execute("COMMIT")
        finally:
            db.close()
        return self.keyword_engine()

    @_locked
    def vectors_by_hash(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        hashes = [h for h in dict.fromkeys(hashes) if h]
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            for h, blob in self.db.execute(
                f"SELECT content_hash, vector FROM chunks WHERE content_hash IN ({','.join('?' * len(part))})", part
            ):
                out.setdefault(h, np.frombuffer(blob, dtype=np.float32).copy())
        return out

    @_locked
    def texts_in_order(self) -> list[str]:
        """Each source's chunks joined in document order (for summaries), sources by name."""
        out: dict[str, list[str]] = {}
        for source, text in self.db.execute("SELECT source, text FROM chunks ORDER BY source, rowid"):
            out.setdefault(source, []).append(text)
        return ["\n\n".join(v) for v in out.values()]

    @_locked
    def chunks(self) -> list[Hit]:
        rows = self.db.execute("SELECT id, source, text, metadata FROM chunks ORDER BY source, rowid").fetchall()
        return [Hit(id=i, source=s, text=t, score=0.0, metadata=json.loads(m)) for i, s, t, m in rows]

    def close(self) -> None:
        self.db.close()
