"""Ingest: load → split → embed → store, incrementally and crash-safely.

* A file whose bytes hash the same as when it was last stored is skipped
  without being read further ("unchanged").
* A changed file has all its chunks replaced in one transaction together with
  its new hash, so a crash (even SIGKILL) leaves either the old chunks and old
  hash, or the new ones: re-running finishes the job with no duplicates and
  no lost chunks.
* Chunks whose embedding input is already stored (same hash) reuse the stored
  vector instead of being embedded again.
* ``prune=True`` removes the chunks of files that are gone from the folders
  given. Files that fail to load are reported and skipped; what was stored
  for them before is kept.

Where the work runs is an *engine* (:mod:`.engines`): loading and splitting
files (:func:`prepare_file`) and embedding batches. Whatever the engine, this
process is the only writer, and it writes in file order, so the store's
transactions, the skips and the crash safety above are the same for all:

* the local engine prepares files on this thread and embeds on one
  background thread, so loading, splitting and the store's writes of one batch
  overlap with embedding the next; a big file (a JSONL of thousands of
  records) is split lazily, its first part embedding while the rest is split
  (:func:`prepare_pieces`);
* the Ray engine (``ray=True`` or an address; the ``ray`` extra) prepares and
  embeds on Ray actors, several batches in flight, results streamed back in
  order.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .._files import sha256_file
from ..choices import CHUNK_OVERLAP, CHUNK_SIZE
from ..config import Settings, load_settings
from ..documents import LoaderOptions, LoadError, load_file, walk_paths
from ..documents.splitter import Chunk, Splitter
from ..embeddings import Embedder, get_embedder
from ..errors import GenstackError
from ..stores import open_collection
from ..stores.collections import collection_dir, collection_exists, delete_collection
from ..stores.base import Record
from .chunking import check_chunking, record_chunking, recorded_chunking

__all__ = ["IngestReport", "ingest", "prepare_file", "prepare_pieces", "Work", "Prepared", "DEFAULT_CHUNK_SIZE", "DEFAULT_OVERLAP"]

DEFAULT_CHUNK_SIZE = CHUNK_SIZE
DEFAULT_OVERLAP = CHUNK_OVERLAP
EMBED_BATCH = 256  # chunks per embed call: the embedder sorts each call by length, so bigger calls pad less
#: a file with more chunks than this is written in parts of this many as they are embedded (without its
#: content hash, so a re-run redoes the file but re-embeds only what no part stored); the last write
#: replaces the whole source with its hash, as for any file
PART_CHUNKS = 1024


@dataclass
class IngestReport:
    collection: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    #: chunks flagged by kind ("injection": orders to the model, "hidden-text": HTML a reader would not see)
    flagged: dict[str, int] = field(default_factory=dict)
    #: (source, chunk index, kind, evidence) for each flag, for the report
    flags: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: the engine answering BM25 queries after the run ("sparse" or "fts5"; None for a store without one)
    keyword_index: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {
            "collection": self.collection, "added": self.added, "updated": self.updated,
            "unchanged": self.unchanged, "removed": self.removed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks": self.chunks, "embedded": self.embedded, "seconds": round(self.seconds, 3),
            "keyword_index": self.keyword_index,
            "flagged": dict(self.flagged),
            "flags": [{"path": p, "chunk": i, "kind": k, "evidence": e} for p, i, k, e in self.flags],
        }


def flag_chunk(chunk: Chunk) -> list[tuple[str, str]]:
    """Mark a chunk that gives orders to the model or comes from hidden HTML; returns ``(kind, evidence)``."""
    from ..guard.injection import instruction_sentences

    found: list[tuple[str, str]] = []
    flags = [f for f in chunk.metadata.get("flags", []) if f != "injection"]
    for f in flags:
        found.append((f, "; ".join(chunk.metadata.get("hidden_text", []))[:200]))
    spans = instruction_sentences(chunk.text)
    if spans:
        flags.append("injection")
        chunk.metadata["injection"] = sorted({r for _, _, sc in spans for r in sc.reasons})
        found += [("injection", " ".join(chunk.text[a:b].split())[:200]) for a, b, _ in spans]
    if flags:
        chunk.metadata["flags"] = flags
    return found


def embed_input(chunk: Chunk) -> str:
    """The text the embedder sees: the chunk, led by its document title when that adds context."""
    title = str(chunk.metadata.get("title") or "").strip()
    if title and not chunk.text.lstrip("# ").startswith(title):
        return f"{title}\n{chunk.text}"
    return chunk.text


def _records(source: str, chunks: Sequence[Chunk], vectors: np.ndarray, start: int = 0) -> list[Record]:
    """Records of ``chunks`` (the chunks of ``source`` from position ``start`` on)."""
    sid = hashlib.sha1(source.encode()).hexdigest()[:12]
    return [
        Record(id=f"{sid}:{start + i}", source=source, text=c.text, vector=vectors[i], metadata=c.metadata,
               content_hash=hashlib.sha256(embed_input(c).encode()).hexdigest())
        for i, c in enumerate(chunks)
    ]


Progress = Callable[[str, dict], None]


@dataclass
class Work:
    """A file that needs (re)ingesting: its path, the source name it is stored under and its content hash."""
    path: str
    source: str
    digest: str
    is_new: bool


@dataclass
class Prepared:
    """A file loaded, split and screened: its chunks and their flags ``(chunk index, kind, evidence)``,
    or why it could not be loaded."""
    chunks: list[Chunk] = field(default_factory=list)
    flags: list[tuple[int, str, str]] = field(default_factory=list)
    error: str | None = None


def prepare_pieces(work: Work, splitter: Splitter, loader_options: LoaderOptions | None = None,
                   size: int | None = None) -> Iterator[Prepared]:
    """Load, split and screen one file, yielding its chunks in pieces of about ``size`` as its documents
    are split (a JSONL of thousands of records starts embedding after its first ``size`` chunks, not after
    the whole file; ``size`` defaults to ``PART_CHUNKS``); chunk indexes run on across pieces. A file that cannot be loaded is one piece with
    the error. The part of ingest that needs no store (so any engine runs it)."""
    try:
        docs = load_file(Path(work.path), loader_options)
    except LoadError as exc:
        yield Prepared(error=exc.reason)
        return
    size = size or PART_CHUNKS
    piece, index = Prepared(), 0
    for d in docs:
        d.metadata["source"] = work.source
        d.metadata["file_hash"] = work.digest
        for c in splitter.split(d):
            c.metadata["chunk_index"] = index
            piece.chunks.append(c)
            piece.flags += [(index, kind, evidence) for kind, evidence in flag_chunk(c)]
            index += 1
        if len(piece.chunks) >= size:
            yield piece
            piece = Prepared()
    if piece.chunks or not index:
        yield piece


def prepare_file(work: Work, splitter: Splitter, loader_options: LoaderOptions | None = None) -> Prepared:
    """:func:`prepare_pieces` in one piece."""
    whole = Prepared()
    for piece in prepare_pieces(work, splitter, loader_options):
        if piece.error is not None:
            return piece
        whole.chunks += piece.chunks
        whole.flags += piece.flags
    return whole


@dataclass
class _Job:
    """One batch on its way through the engine: what it reuses, what it waits for, what to do with it."""
    inputs: list[str]
    hashes: list[str]
    vectors: np.ndarray
    todo: list[int]
    deferred: list[int]  # content another batch still in flight is embedding: read back from the store
    handles: list[tuple[list[int], object]]
    done: Callable[[np.ndarray], None]
    copies: list[tuple[int, int]] = field(default_factory=list)  # (i, j): chunk i has chunk j's content


def ingest(
    paths: Sequence[str | Path],
    collection: str,
    *,
    settings: Settings | None = None,
    embedder: Embedder | str | None = None,
    chunk_size: int | None = None,
    overlap: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    loader_options: LoaderOptions | None = None,
    progress: Progress | None = None,
    store: str | None = None,
    ray: bool | str = False,
    ray_workers: int | None = None,
) -> IngestReport:
    """Ingest files and folders into ``collection`` (created if missing, in the ``store`` backend,
    default ``settings.store``).

    ``ray=True`` fans loading, splitting and embedding out to a Ray cluster (``ray.init()``: the one
    in ``RAY_ADDRESS``, or a new local one), ``ray="HOST:PORT"`` to that cluster, with ``ray_workers``
    actors (default: one per CPU of the cluster). The files must be readable at the same paths on
    every Ray node. This process stays the only writer."""
    from .engines import LocalEngine, RayEngine

    settings = settings or load_settings()
    t0 = time.perf_counter()
    existed = collection_exists(collection, settings)
    folder = collection_dir(collection, settings)
    if embedder is None and existed:
        existing = open_collection(collection, settings)
        try:
            embedder = existing.embedder  # more files: the collection's own embedder and arithmetic, not today's default
        finally:
            existing.close()
    spec = embedder if isinstance(embedder, str) else None
    if not isinstance(embedder, Embedder):
        embedder = get_embedder(embedder, settings=settings)
    # a collection keeps its chunking; an invalid value is reported as such before any mismatch
    recorded = recorded_chunking(folder) if existed else None
    base = recorded or (DEFAULT_CHUNK_SIZE, DEFAULT_OVERLAP)
    chunk_size = base[0] if chunk_size is None else chunk_size
    overlap = base[1] if overlap is None else overlap
    splitter = Splitter(embedder, chunk_size=chunk_size, overlap=overlap)  # the embedder's own tokenizer
    check_chunking(collection, recorded, (chunk_size, overlap))
    walk = walk_paths(paths, include, exclude)
    if not walk.files and walk.missing and not prune:
        raise GenstackError("nothing to ingest: " + "; ".join(f"{p}: {r}" for p, r in walk.missing))
    emit = progress or (lambda event, data: None)
    # the collection first: an embedder mismatch fails at once, before any Ray cluster starts
    store = open_collection(collection, settings, create=True, embedder=embedder.name, dim=embedder.dim, store=store)
    record_chunking(folder, chunk_size, overlap)
    try:
        if ray:
            engine = RayEngine(None if ray is True else str(ray), workers=ray_workers, embedder=spec or embedder.name,
                               settings=settings, chunk_size=chunk_size, overlap=overlap, loader_options=loader_options)
            emit("engine", {"engine": "ray", "workers": len(engine.pids), "pids": list(engine.pids)})
        else:
            engine = LocalEngine(embedder, splitter, loader_options)
    except BaseException:
        store.close()
        if not existed:  # no Ray, no cluster: leave no empty collection behind
            delete_collection(collection, settings)
        raise
    report = IngestReport(collection)
    kept = True
    try:
        report.failed.extend(walk.missing)
        known = store.source_hashes()
        emit("start", {"files": len(walk.files)})
        jobs: deque[_Job] = deque()
        inflight: Counter[str] = Counter()  # content hashes being embedded by jobs not yet written

        def submit(chunks: Sequence[Chunk], done: Callable[[np.ndarray], None]) -> None:
            """Send ``chunks`` to be embedded (only content the store does not hold already, once), and
            when at most ``engine.window`` jobs are in flight, write the oldest ones, in order."""
            inputs = [embed_input(c) for c in chunks]
            hashes = [hashlib.sha256(t.encode()).hexdigest() for t in inputs]
            reuse = store.vectors_by_hash(hashes)
            vectors = np.zeros((len(inputs), embedder.dim), dtype=np.float32)
            todo, deferred, copies, first = [], [], [], {}
            for i, h in enumerate(hashes):
                if h in reuse:
                    vectors[i] = reuse[h]
                elif h in inflight:
                    deferred.append(i)
                elif h in first:  # the same content twice in this batch: embedded once
                    copies.append((i, first[h]))
                else:
                    first[h] = i
                    todo.append(i)
            handles = []
            for start in range(0, len(todo), EMBED_BATCH):
                idx = todo[start:start + EMBED_BATCH]
                handles.append((idx, engine.embed([inputs[i] for i in idx])))
            inflight.update(hashes[i] for i in todo)
            jobs.append(_Job(inputs, hashes, vectors, todo, deferred, handles, done, copies))
            while len(jobs) > engine.window:
                complete(jobs.popleft())

        def complete(job: _Job) -> None:
            for idx, handle in job.handles:
                job.vectors[idx] = handle.result()
                emit("embedded", {"chunks": len(idx)})
            report.embedded += len(job.todo)
            for i, j in job.copies:
                job.vectors[i] = job.vectors[j]
            if job.deferred:  # the earlier job that embeds this content has been written by now
                got = store.vectors_by_hash([job.hashes[i] for i in job.deferred])
                missing = [i for i in job.deferred if job.hashes[i] not in got]
                for i in job.deferred:
                    if job.hashes[i] in got:
                        job.vectors[i] = got[job.hashes[i]]
                if missing:  # not expected (jobs are written in order), but never store a zero vector
                    job.vectors[missing] = engine.embed([job.inputs[i] for i in missing]).result()
                    report.embedded += len(missing)
            inflight.subtract(job.hashes[i] for i in job.todo)
            for i in job.todo:
                if inflight[job.hashes[i]] <= 0:
                    del inflight[job.hashes[i]]
            job.done(job.vectors)

        def counted(source: str, n: int, is_new: bool) -> None:
            report.chunks += n
            if is_new:
                report.added += 1
            else:
                report.updated += 1
            emit("file", {"path": source, "chunks": n, "status": "added" if is_new else "updated"})

        finish = getattr(store, "finish_source", None)

        def start_large(work: Work) -> Callable[[list[Chunk], bool], None]:
            """A big file in parts, sent as it is split: each part stored as soon as it is embedded, so a kill
            keeps them (without the file's hash: a re-run redoes the file but embeds only what no part stored).
            With a store's ``finish_source`` only the ids are kept until the end, not the vectors (bounded
            memory). Returns ``send(part, last)``."""
            records: list[Record] = []
            ids: list[str] = []
            sent = 0

            def send(part: list[Chunk], last: bool) -> None:
                nonlocal sent
                start, sent = sent, sent + len(part)

                def done(vectors: np.ndarray) -> None:
                    recs = _records(work.source, part, vectors, start)
                    store.upsert(recs)
                    ids.extend(r.id for r in recs)
                    if finish is None:
                        records.extend(recs)
                    emit("part", {"path": work.source, "chunks": len(ids), "of": sent if last else None})
                    if last:
                        if finish is None:
                            store.replace_source(work.source, records, work.digest)
                        else:
                            finish(work.source, ids, work.digest)
                        counted(work.source, len(ids), work.is_new)

                submit(part, done)

            return send

        pending: list[tuple[Work, list[Chunk]]] = []
        pending_chunks = 0

        def flush() -> None:
            """The files gathered so far, embedded as one batch; each file then replaces its old chunks,
            with its hash, in one step."""
            nonlocal pending, pending_chunks
            if not pending:
                return
            batch = pending

            def done(vectors: np.ndarray) -> None:
                offset = 0
                for work, chunks in batch:
                    store.replace_source(work.source, _records(work.source, chunks, vectors[offset:offset + len(chunks)]),
                                         work.digest)
                    counted(work.source, len(chunks), work.is_new)
                    offset += len(chunks)

            submit([c for _, chunks in batch for c in chunks], done)
            pending, pending_chunks = [], 0

        seen: set[str] = set()

        def works() -> Iterator[Work]:
            """The files to (re)ingest; too big, unreadable and unchanged ones are reported here."""
            for path in walk.files:
                source = str(path.resolve())
                seen.add(source)
                try:  # before hashing: a file too big to ingest is not read at all
                    size = path.stat().st_size
                except OSError:
                    size = 0
                if size > settings.max_file_bytes:
                    reason = (f"{size / 1e6:.1f} MB is over the max_file_bytes setting ({settings.max_file_bytes / 1e6:.0f} MB); "
                              "raise it (GENSTACK_MAX_FILE_BYTES) or split the file")
                    report.failed.append((str(path), reason))
                    emit("file", {"path": source, "status": "failed", "reason": reason})
                    continue
                try:
                    digest = sha256_file(path)
                except OSError as exc:
                    report.failed.append((str(path), exc.strerror or str(exc)))
                    emit("file", {"path": source, "status": "failed"})
                    continue
                if known.get(source) == digest:
                    report.unchanged += 1
                    emit("file", {"path": source, "chunks": 0, "status": "unchanged"})
                    continue
                yield Work(str(path), source, digest, source not in known)

        for work, pieces in engine.prepare(works()):
            chunks: list[Chunk] = []
            send = None
            error = None
            for prep in pieces:
                if prep.error is not None:
                    error = prep.error
                    break
                for kind in sorted({k for _, k, _ in prep.flags}):
                    report.flagged[kind] = report.flagged.get(kind, 0) + len({i for i, k, _ in prep.flags if k == kind})
                report.flags += [(work.source, i, kind, evidence) for i, kind, evidence in prep.flags]
                chunks += prep.chunks
                if send is None and len(chunks) > PART_CHUNKS:
                    flush()  # a big file goes alone, in parts, embedding while the rest of it is split
                    send = start_large(work)
                while send is not None and len(chunks) > PART_CHUNKS:  # the last part is never empty
                    send(chunks[:PART_CHUNKS], False)
                    chunks = chunks[PART_CHUNKS:]
            if error is not None:
                report.failed.append((work.path, error))
                emit("file", {"path": work.source, "status": "failed", "reason": error})
                continue
            if send is not None:
                send(chunks, True)
                continue
            pending.append((work, chunks))
            pending_chunks += len(chunks)
            if pending_chunks >= EMBED_BATCH:
                flush()
        flush()
        while jobs:
            complete(jobs.popleft())

        if prune:
            roots = [str(Path(p).resolve()) for p in paths if Path(p).is_dir()]
            for source in list(store.source_hashes()):
                if source not in seen and any(source.startswith(r.rstrip("/") + "/") for r in roots):
                    store.delete_source(source)
                    report.removed += 1
                    emit("file", {"path": source, "status": "removed"})
        kept = existed or bool(store.sources())
        update = getattr(store, "update_keyword_index", None)
        if update is not None and kept:
            emit("keyword-index", {"status": "start"})
            try:
                report.keyword_index = update()
            except OSError as exc:  # a derived index: FTS5 answers without it, nothing stored is lost
                report.keyword_index = "fts5"
                emit("keyword-index", {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
            else:
                emit("keyword-index", {"status": "done", "engine": report.keyword_index})
    finally:
        engine.close()
        store.close()
        if not existed and not kept:  # every file failed: leave no empty collection behind
            delete_collection(collection, settings)
        report.seconds = time.perf_counter() - t0
    return report
