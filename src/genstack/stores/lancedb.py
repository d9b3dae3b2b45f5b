"""A LanceDB store (the ``[lancedb]`` extra): a collection as Lance tables on a local folder or an
object-store URI, for collections larger than one machine's disk or shared between machines.

Layout: one ``chunks`` table. A chunk is a row; each source also has one
*source row* (``kind = 'source'``: its content hash, chunk count, time), so
that replacing a source is **one** ``merge_insert`` commit, matched on ``id``
with ``when_not_matched_by_source_delete(source = …)``: a reader (or a crash)
sees the source entirely before or entirely after, never half written, and
the hash is written in the same commit as the chunks. A ``meta`` table keeps
the embedder and the dimension.

Search:

- **dense**: exact cosine over the vectors, cached in memory per table
  version (a flat numpy scan answers 100k × 384 in milliseconds, where
  LanceDB's own flat search takes about 30× longer, see benchmarks/RESULTS.md);
  after :meth:`LanceDBStore.create_vector_index` (or past ``ANN_THRESHOLD``
  chunks when ``auto_index`` is on) LanceDB's IVF-PQ index answers instead, with
  ``nprobes`` and ``refine_factor`` for recall. Off by default: measured on this
  machine (benchmarks/RESULTS.md) it was slower than the exact scan at 100k and
  only 1.2x faster at 1M, at recall@10 0.82;
- **BM25**: Lance's native full-text index on title + text (English stemming,
  stopwords removed); rows written since the last :meth:`optimize` are searched
  too, unindexed. ``close()`` after writes folds them into the index.

Filters on ``source``, ``id`` and ``content_hash`` go to Lance as SQL; filters
on metadata keys are applied to the cached metadata (metadata is stored as JSON).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import GenstackError, InvalidParameter
from .base import Filters, Hit, Record, built_with, check_filter_key, check_vectors, top_k

__all__ = ["LanceDBStore"]

_COLUMNS = {"source", "id", "content_hash"}
_SOURCE_ROW = "\x00source:"
#: chunks above which a collection opened with auto_index gets an IVF vector index
ANN_THRESHOLD = 200_000


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _title(meta: dict[str, Any]) -> str:
    parts = [str(meta.get("title") or ""), str(meta.get("heading_path") or "")]
    return " ".join(p for p in parts if p)


def _import_lancedb():
    try:
        import lancedb  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        raise GenstackError("the lancedb store needs the lancedb extra: pip install 'genstack[lancedb]'") from None
    import lancedb

    return lancedb


class LanceDBStore:
    name = "lancedb"
    DIR = "lance"

    # -- the backend side ------------------------------------------------------------
    @classmethod
    def _uri(cls, folder: Path, settings: Any = None) -> str:
        base = getattr(settings, "lancedb_uri", "") if settings is not None else ""
        if base:
            return base.rstrip("/") + "/" + Path(folder).name
        return str(Path(folder) / cls.DIR)

    @classmethod
    def open_collection(cls, folder: Path, *, dim: int | None = None, embedder: str | None = None,
                        read_only: bool = False, settings: Any = None) -> "LanceDBStore":
        return cls(cls._uri(folder, settings), dim=dim, embedder=embedder, read_only=read_only)

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (Path(folder) / cls.DIR).is_dir()

    @classmethod
    def drop_collection(cls, folder: Path, *, settings: Any = None) -> None:
        """Drop the tables of a collection kept under ``lancedb_uri`` (a local folder goes with the collection)."""
        if getattr(settings, "lancedb_uri", ""):
            db = _import_lancedb().connect(cls._uri(folder, settings))
            for t in ("chunks", "meta"):
                try:
                    db.drop_table(t)
                except Exception:  # noqa: BLE001 - a table never created
                    pass

    # -- the store -------------------------------------------------------------------
    def __init__(self, uri: str | Path, *, dim: int | None = None, embedder: str | None = None,
                 read_only: bool = False, auto_index: bool = False, nprobes: int = 20, refine_factor: int = 10):
        lancedb = _import_lancedb()
        self.uri = str(uri)
        self.read_only = read_only
        self.auto_index, self.nprobes, self.refine_factor = auto_index, nprobes, refine_factor
        if not read_only and "://" not in self.uri:
            Path(self.uri).mkdir(parents=True, exist_ok=True)
        from datetime import timedelta

        try:
            # writes of other processes (an ingest beside a server) become visible within a second;
            # this store's own writes at once
            self.db = lancedb.connect(self.uri, read_consistency_interval=timedelta(seconds=1))
        except Exception as exc:  # noqa: BLE001 - any connection failure is one line
            raise GenstackError(f"cannot open the LanceDB store at {self.uri}: {exc}") from None
        self._lock = threading.RLock()
        self._cache: dict[str, Any] | None = None
        self._writes = 0
        meta = self._read_meta()
        for key, value in (("embedder", embedder), ("dim", dim)):
            if value is None:
                continue
            if key in meta and meta[key] != str(value):
                raise built_with(Path(self.uri).parent.name, key, meta[key], value)
            if key not in meta and not read_only:
                meta[key] = str(value)
                self._write_meta(meta)
        self.embedder: str | None = meta.get("embedder")
        self.dim: int | None = int(meta["dim"]) if meta.get("dim") else None
        self._tbl = self._open("chunks")

    @property
    def location(self) -> str:
        return self.uri

    def _open(self, name: str):
        try:
            return self.db.open_table(name)
        except (FileNotFoundError, ValueError):
            return None
        except Exception as exc:  # noqa: BLE001
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise

    def _read_meta(self) -> dict[str, str]:
        t = self._open("meta")
        return {} if t is None else {r["key"]: r["value"] for r in t.to_arrow().to_pylist()}

    def _write_meta(self, meta: dict[str, str]) -> None:
        import pyarrow as pa

        data = pa.table({"key": list(meta), "value": list(meta.values())})
        self.db.create_table("meta", data=data, mode="overwrite")

    def _schema(self):
        import pyarrow as pa

        return pa.schema([("id", pa.string()), ("source", pa.string()), ("kind", pa.string()), ("seq", pa.int64()),
                          ("title", pa.string()), ("text", pa.string()), ("search", pa.string()),
                          ("metadata", pa.string()), ("content_hash", pa.string()), ("source_hash", pa.string()),
                          ("n_chunks", pa.int64()), ("updated", pa.float64()),
                          ("vector", pa.list_(pa.float32(), self.dim))])

    def _table(self):
        """The chunks table, created (with its full-text index) on the first write."""
        if self._tbl is None:
            from lancedb.index import FTS

            self._tbl = self.db.create_table("chunks", schema=self._schema(), exist_ok=True)
            self._tbl.create_index("search", config=FTS(language="English", stem=True, remove_stop_words=True,
                                                        lower_case=True, with_position=False))
        return self._tbl

    # -- writing ------------------------------------------------------------------------
    def _check(self, records: Sequence[Record]) -> None:
        if self.read_only:
            raise GenstackError("this store was opened read-only")
        check_vectors(records, self.dim)
        for r in records:
            if r.id.startswith(_SOURCE_ROW):
                raise InvalidParameter(f"record id {r.id!r} is reserved")
        if self.dim is None and records:
            self.dim = int(np.asarray(records[0].vector).shape[0])
            meta = self._read_meta()
            meta["dim"] = str(self.dim)
            self._write_meta(meta)

    def _rows(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        return [{"id": r.id, "source": r.source, "kind": "chunk", "seq": i, "title": _title(r.metadata),
                 "text": r.text, "search": (_title(r.metadata) + "\n" + r.text).strip(),
                 "metadata": json.dumps(r.metadata, ensure_ascii=False, default=str), "content_hash": r.content_hash,
                 "source_hash": None, "n_chunks": None, "updated": None,
                 "vector": np.asarray(r.vector, dtype=np.float32)} for i, r in enumerate(records)]

    def _source_row(self, source: str, source_hash: str | None, n: int) -> dict[str, Any]:
        return {"id": _SOURCE_ROW + source, "source": source, "kind": "source", "seq": -1, "title": "", "text": "",
                "search": "", "metadata": "{}", "content_hash": "", "source_hash": source_hash, "n_chunks": n,
                "updated": time.time(), "vector": np.zeros(self.dim or 1, dtype=np.float32)}

    def _merge(self, rows: list[dict[str, Any]], delete_source: str | None = None) -> None:
        import pyarrow as pa

        tbl = self._table()
        data = pa.Table.from_pylist(rows, schema=self._schema())
        m = tbl.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
        if delete_source is not None:
            m = m.when_not_matched_by_source_delete(f"source = {_lit(delete_source)}")
        m.execute(data)
        self._writes += 1

    def replace_source(self, source: str, records: Sequence[Record], source_hash: str | None = None) -> None:
        if any(r.source != source for r in records):
            raise InvalidParameter("replace_source: every record must belong to the source being replaced")
        with self._lock:
            self._check(records)
            rows = self._rows(records) + [self._source_row(source, source_hash, len(records))]
            if self._tbl is None or self._tbl.count_rows(f"source = {_lit(source)}") == 0:
                # a new source (most of an ingest): one append commit, no join against the table.
                # Chunk ids are unique across sources (genstack derives them from the source path).
                import pyarrow as pa

                self._table().add(pa.Table.from_pylist(rows, schema=self._schema()))
                self._writes += 1
            else:
                self._merge(rows, source)

    def upsert(self, records: Sequence[Record]) -> None:
        if not records:
            return
        with self._lock:
            self._check(records)
            snap = self._snapshot()
            new_ids = {r.id for r in records}
            rows = self._rows(records)
            for source in {r.source for r in records}:
                kept = sum(1 for i, s in zip(snap["ids"], snap["sources"]) if s == source and i not in new_ids)
                n = kept + sum(1 for r in records if r.source == source)
                rows.append(self._source_row(source, snap["hashes"].get(source), n))
            self._merge(rows)

    def delete_source(self, source: str) -> int:
        with self._lock:
            if self.read_only:
                raise GenstackError("this store was opened read-only")
            snap = self._snapshot()
            n = int(np.sum(snap["sources"] == source)) if len(snap["sources"]) else 0
            if self._tbl is not None:
                self._tbl.delete(f"source = {_lit(source)}")
                self._writes += 1
            return n

    def optimize(self) -> None:
        """Fold rows written since the last call into the indexes and compact small fragments."""
        if self._tbl is not None and not self.read_only:
            self._tbl.optimize()
            self._writes = 0

    def create_vector_index(self, *, partitions: int | None = None, sub_vectors: int | None = None) -> None:
        """Build an IVF-PQ index on the vectors: approximate search from then on (see benchmarks/RESULTS.md)."""
        n = self.count()
        if n < 256:
            raise InvalidParameter(f"an approximate index needs at least 256 chunks; this collection has {n}")
        from lancedb.index import IvfPq

        dim = self.dim or 0
        self._table().create_index("vector", config=IvfPq(
            distance_type="cosine", num_partitions=partitions or max(1, int(np.sqrt(n))),
            num_sub_vectors=sub_vectors or (dim // 8 if dim % 8 == 0 else dim // 4 or 1)), replace=True)

    def has_vector_index(self) -> bool:
        if self._tbl is None:
            return False
        return any(getattr(ix, "columns", None) == ["vector"] for ix in self._tbl.list_indices())

    # -- reading ------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        """ids, sources, kinds, hashes, metadata and the vector matrix of the latest table version."""
        tbl = self._tbl if self._tbl is not None else self._open("chunks")
        self._tbl = tbl
        if tbl is None:
            return {"version": -1, "ids": np.array([], dtype=object), "sources": np.array([], dtype=object),
                    "chunk": np.zeros(0, dtype=bool), "hashes": {}, "content": np.array([], dtype=object),
                    "rowids": np.zeros(0, dtype=np.uint64),
                    "matrix": np.zeros((0, self.dim or 0), dtype=np.float32), "meta_raw": [], "meta": None,
                    "info": []}
        version = tbl.version
        if self._cache is None or self._cache["version"] != version:
            a = tbl.search().with_row_id(True).select(
                ["id", "source", "kind", "metadata", "content_hash", "source_hash", "n_chunks", "updated",
                 "vector"]).limit(None).to_arrow()
            kinds = np.asarray(a.column("kind").to_pylist(), dtype=object)
            chunk = kinds == "chunk"
            ids = np.asarray(a.column("id").to_pylist(), dtype=object)
            sources = np.asarray(a.column("source").to_pylist(), dtype=object)
            vec = a.column("vector").combine_chunks()
            mat = np.asarray(vec.values, dtype=np.float32).reshape(len(a), -1) if len(a) else \
                np.zeros((0, self.dim or 0), dtype=np.float32)
            src_rows = [(s, h, n, u) for s, k, h, n, u in zip(
                sources, kinds, a.column("source_hash").to_pylist(), a.column("n_chunks").to_pylist(),
                a.column("updated").to_pylist()) if k == "source"]
            self._cache = {
                "version": version, "ids": ids[chunk], "sources": sources[chunk], "chunk": chunk,
                "rowids": np.asarray(a.column("_rowid").to_pylist(), dtype=np.uint64)[chunk],
                "content": np.asarray(a.column("content_hash").to_pylist(), dtype=object)[chunk],
                "matrix": np.ascontiguousarray(mat[chunk]),
                "meta_raw": [m for m, c in zip(a.column("metadata").to_pylist(), chunk) if c], "meta": None,
                "hashes": {s: h for s, h, _, _ in src_rows if h is not None},
                "info": sorted(({"source": s, "hash": h, "chunks": int(n or 0), "updated": u} for s, h, n, u in src_rows),
                               key=lambda d: d["source"]),
            }
        return self._cache

    def source_hashes(self) -> dict[str, str]:
        return dict(self._snapshot()["hashes"])

    def sources(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self._snapshot()["info"]]

    def _mask(self, snap: dict[str, Any], filters: Filters | None) -> np.ndarray | None:
        """Which chunks of the snapshot pass ``filters`` (None: all)."""
        if not filters:
            return None
        n = len(snap["ids"])
        mask = np.ones(n, dtype=bool)
        for key, value in filters.items():
            check_filter_key(key)
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            if key in _COLUMNS:
                col = {"source": snap["sources"], "id": snap["ids"], "content_hash": snap["content"]}[key]
                mask &= np.isin(col, [str(v) for v in values])
                continue
            if snap["meta"] is None:
                snap["meta"] = [json.loads(m) for m in snap["meta_raw"]]
            ok = np.zeros(n, dtype=bool)
            for i, md in enumerate(snap["meta"]):
                if key in md:
                    got = md[key]
                    ok[i] = any(got == v if isinstance(v, bool) or v is None or isinstance(got, bool)
                                else (got == v or str(got) == str(v)) for v in values)
            mask &= ok
        return mask

    def count(self, filters: Filters | None = None) -> int:
        snap = self._snapshot()
        mask = self._mask(snap, filters)
        return len(snap["ids"]) if mask is None else int(mask.sum())

    def _fetch(self, ids: Sequence[str], rowids: Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
        """The rows of ``ids``: taken by row id when the snapshot's are still valid, else by a filter."""
        if not ids:
            return {}
        cols = ["id", "source", "text", "metadata"]
        if rowids is not None:
            try:
                rows = {r["id"]: r for r in self._tbl.take_row_ids([int(r) for r in rowids]).select(cols).to_list()}
                if set(rows) == set(ids):
                    return rows
            except Exception:  # noqa: BLE001 - the table moved on (compacted): look them up by id
                pass
        rows = self._tbl.search().where("id IN (" + ", ".join(_lit(i) for i in ids) + ")").select(
            cols).limit(len(ids)).to_list()
        return {r["id"]: r for r in rows}

    def _hits(self, scored: list[tuple[str, float]], rowids: Sequence[int] | None = None) -> list[Hit]:
        rows = self._fetch([i for i, _ in scored], rowids)
        out = []
        for i, score in scored:
            r = rows.get(i)
            if r is not None:
                out.append(Hit(id=r["id"], source=r["source"], text=r["text"], score=float(score),
                               metadata=json.loads(r["metadata"])))
        return out

    def query(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        if k < 1:
            raise InvalidParameter(f"k must be at least 1, got {k}")
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        snap = self._snapshot()
        mat = snap["matrix"]
        if mat.shape[0] == 0:
            return []
        if q.shape[0] != mat.shape[1]:
            raise InvalidParameter(f"query vector has {q.shape[0]} dimensions, the collection {mat.shape[1]}")
        mask = self._mask(snap, filters)
        if mask is None and self.has_vector_index():
            return self._ann(q, k)
        scores = mat @ q
        top = top_k(scores, k, mask)
        return self._hits([(snap["ids"][i], float(scores[i])) for i in top], [snap["rowids"][i] for i in top])

    def _ann(self, q: np.ndarray, k: int) -> list[Hit]:
        rows = (self._tbl.search(q, vector_column_name="vector").metric("cosine").nprobes(self.nprobes)
                .refine_factor(self.refine_factor).where("kind = 'chunk'", prefilter=True)
                .select(["id", "source", "text", "metadata"]).limit(k).to_list())
        return [Hit(id=r["id"], source=r["source"], text=r["text"], score=1.0 - float(r["_distance"]),
                    metadata=json.loads(r["metadata"])) for r in rows]

    def search_text(self, text: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        if k < 1:
            raise InvalidParameter(f"k must be at least 1, got {k}")
        snap = self._snapshot()
        if not len(snap["ids"]) or not re.search(r"\w", text):
            return []
        mask = self._mask(snap, filters)
        where = "kind = 'chunk'"
        if filters:
            cols = {key: v for key, v in filters.items() if key in _COLUMNS}
            for key, v in cols.items():
                values = list(v) if isinstance(v, (list, tuple, set)) else [v]
                where += f" AND {key} IN (" + ", ".join(_lit(x) for x in values) + ")"
        limit = k if mask is None else max(k, int(mask.sum()))
        words = " ".join(re.findall(r"\w+", text))
        rows = (self._tbl.search(words, query_type="fts", fts_columns="search").where(where, prefilter=True)
                .select(["id", "source", "text", "metadata"]).limit(limit).to_list())
        if mask is not None:
            allowed = set(snap["ids"][mask].tolist())
            rows = [r for r in rows if r["id"] in allowed]
        return [Hit(id=r["id"], source=r["source"], text=r["text"], score=float(r["_score"]),
                    metadata=json.loads(r["metadata"])) for r in rows[:k] if r["_score"] > 0]

    def vectors_by_hash(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        want = {h for h in hashes if h}
        if not want or self._tbl is None:
            return {}
        if self._cache is None or self._cache["version"] != self._tbl.version:
            # between writes (an ingest): ask Lance for just these rows rather than reload every vector
            out: dict[str, np.ndarray] = {}
            hs = sorted(want)
            for i in range(0, len(hs), 500):
                part = hs[i:i + 500]
                rows = self._tbl.search().where("kind = 'chunk' AND content_hash IN ("
                                                + ", ".join(_lit(h) for h in part) + ")").select(
                    ["content_hash", "vector"]).limit(None).to_list()
                for r in rows:
                    out.setdefault(r["content_hash"], np.asarray(r["vector"], dtype=np.float32))
            return out
        snap = self._cache
        out: dict[str, np.ndarray] = {}
        for i, h in enumerate(snap["content"]):
            if h in want and h not in out:
                out[h] = snap["matrix"][i].copy()
        return out

    def texts_in_order(self) -> list[str]:
        if self._tbl is None:
            return []
        a = self._tbl.search().where("kind = 'chunk'").select(["source", "seq", "text"]).limit(None).to_arrow()
        rows = sorted(zip(a.column("source").to_pylist(), a.column("seq").to_pylist(), a.column("text").to_pylist()),
                      key=lambda r: (r[0], r[1]))
        out: dict[str, list[str]] = {}
        for source, _, text in rows:
            out.setdefault(source, []).append(text)
        return ["\n\n".join(v) for v in out.values()]

    def chunks(self) -> list[Hit]:
        if self._tbl is None:
            return []
        a = (self._tbl.search().where("kind = 'chunk'").select(["id", "source", "seq", "text", "metadata"])
             .limit(None).to_arrow())
        rows = sorted(zip(*(a.column(c).to_pylist() for c in ("source", "seq", "id", "text", "metadata"))),
                      key=lambda r: (r[0], r[1]))
        return [Hit(id=i, source=s, text=t, score=0.0, metadata=json.loads(m)) for s, _, i, t, m in rows]

    def close(self) -> None:
        with self._lock:
            if self._writes and not self.read_only:
                try:
                    self.optimize()
                except Exception:  # noqa: BLE001 - the data is written; the index catches up next time
                    pass
            if self.auto_index and not self.read_only and self._tbl is not None and self.count() >= ANN_THRESHOLD \
                    and not self.has_vector_index():
                self.create_vector_index()
            self._cache = None
