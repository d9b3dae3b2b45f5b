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
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ._files import sha256_file
from .config import Settings, load_settings
from .documents import LoaderOptions, LoadError, load_file, walk_paths
from .documents.splitter import Chunk, Splitter
from .embeddings import Embedder, get_embedder
from .errors import GenstackError
from .stores import open_collection
from .stores.collections import collection_exists, delete_collection
from .stores.base import Record

__all__ = ["IngestReport", "ingest", "DEFAULT_CHUNK_SIZE", "DEFAULT_OVERLAP"]

DEFAULT_CHUNK_SIZE = 200
DEFAULT_OVERLAP = 32
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

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {
            "collection": self.collection, "added": self.added, "updated": self.updated,
            "unchanged": self.unchanged, "removed": self.removed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks": self.chunks, "embedded": self.embedded, "seconds": round(self.seconds, 3),
            "flagged": dict(self.flagged),
            "flags": [{"path": p, "chunk": i, "kind": k, "evidence": e} for p, i, k, e in self.flags],
        }


def flag_chunk(chunk: Chunk) -> list[tuple[str, str]]:
    """Mark a chunk that gives orders to the model or comes from hidden HTML; returns ``(kind, evidence)``."""
    from .guard.injection import instruction_sentences

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
) -> IngestReport:
    """Ingest files and folders into ``collection`` (created if missing, in the ``store`` backend,
    default ``settings.store``)."""
    settings = settings or load_settings()
    t0 = time.perf_counter()
    if embedder is None and collection_exists(collection, settings):
        existing = open_collection(collection, settings)
        try:
            embedder = existing.embedder  # more files: the collection's own embedder and arithmetic, not today's default
        finally:
            existing.close()
    if not isinstance(embedder, Embedder):
        embedder = get_embedder(embedder, settings=settings)
    splitter = Splitter(
        embedder,  # splits with the embedder's own tokenizer (its offsets() method)
        chunk_size=DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,
        overlap=DEFAULT_OVERLAP if overlap is None else overlap,
    )
    walk = walk_paths(paths, include, exclude)
    if not walk.files and walk.missing and not prune:
        raise GenstackError("nothing to ingest: " + "; ".join(f"{p}: {r}" for p, r in walk.missing))
    existed = collection_exists(collection, settings)
    store = open_collection(collection, settings, create=True, embedder=embedder.name, dim=embedder.dim, store=store)
    report = IngestReport(collection)
    kept = True
    emit = progress or (lambda event, data: None)
    try:
        report.failed.extend(walk.missing)
        known = store.source_hashes()
        emit("start", {"files": len(walk.files)})
        pending: list[tuple[str, str, list[Chunk], bool]] = []
        pending_chunks = 0

        def embed(chunks: Sequence[Chunk]) -> np.ndarray:
            """Vectors of ``chunks``: the store's own for content it already holds, the rest embedded."""
            inputs = [embed_input(c) for c in chunks]
            hashes = [hashlib.sha256(t.encode()).hexdigest() for t in inputs]
            reuse = store.vectors_by_hash(hashes)
            todo = [i for i, h in enumerate(hashes) if h not in reuse]
            vectors = np.zeros((len(inputs), embedder.dim), dtype=np.float32)
            for i, h in enumerate(hashes):
                if h in reuse:
                    vectors[i] = reuse[h]
            for start in range(0, len(todo), EMBED_BATCH):
                idx = todo[start:start + EMBED_BATCH]
                vectors[idx] = embedder.embed_passages([inputs[i] for i in idx])
                emit("embedded", {"chunks": len(idx)})
            report.embedded += len(todo)
            return vectors

        finish = getattr(store, "finish_source", None)

        def write_large(source: str, chunks: list[Chunk], digest: str, is_new: bool) -> None:
            """A big file in parts: each part embedded and stored before the next, so a kill keeps them.
            With a store's ``finish_source`` only the ids are kept, not the vectors (bounded memory)."""
            records: list[Record] = []
            ids: list[str] = []
            for start in range(0, len(chunks), PART_CHUNKS):
                part = chunks[start:start + PART_CHUNKS]
                recs = _records(source, part, embed(part), start)
                store.upsert(recs)
                ids += [r.id for r in recs]
                if finish is None:
                    records += recs
                emit("part", {"path": source, "chunks": len(ids), "of": len(chunks)})
            if finish is None:
                store.replace_source(source, records, digest)
            else:
                finish(source, ids, digest)
            counted(source, len(ids), is_new)

        def stored(source: str, records: list[Record], digest: str, is_new: bool) -> None:
            """One file's chunks replace its old ones, with its hash, in one step."""
            store.replace_source(source, records, digest)
            counted(source, len(records), is_new)

        def counted(source: str, n: int, is_new: bool) -> None:
            report.chunks += n
            if is_new:
                report.added += 1
            else:
                report.updated += 1
            emit("file", {"path": source, "chunks": n, "status": "added" if is_new else "updated"})

        def flush() -> None:
            nonlocal pending, pending_chunks
            if not pending:
                return
            if len(pending) == 1 and len(pending[0][2]) > PART_CHUNKS:
                source, digest, chunks, is_new = pending[0]
                write_large(source, chunks, digest, is_new)
            else:
                vectors = embed([c for _, _, chunks, _ in pending for c in chunks])
                offset = 0
                for source, digest, chunks, is_new in pending:
                    stored(source, _records(source, chunks, vectors[offset:offset + len(chunks)]), digest, is_new)
                    offset += len(chunks)
            pending, pending_chunks = [], 0

        seen: set[str] = set()
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
            try:
                docs = load_file(path, loader_options)
            except LoadError as exc:
                report.failed.append((str(path), exc.reason))
                emit("file", {"path": source, "status": "failed", "reason": exc.reason})
                continue
            for d in docs:
                d.metadata["source"] = source
                d.metadata["file_hash"] = digest
            chunks = splitter.split_all(docs)
            if len(chunks) > PART_CHUNKS:
                flush()  # a big file goes alone, in parts
            for i, c in enumerate(chunks):
                c.metadata["chunk_index"] = i
                found = flag_chunk(c)
                for kind in {k for k, _ in found}:
                    report.flagged[kind] = report.flagged.get(kind, 0) + 1
                report.flags += [(source, i, kind, evidence) for kind, evidence in found]
            pending.append((source, digest, chunks, source not in known))
            pending_chunks += len(chunks)
            if pending_chunks >= EMBED_BATCH:
                flush()
        flush()

        if prune:
            roots = [str(Path(p).resolve()) for p in paths if Path(p).is_dir()]
            for source in list(store.source_hashes()):
                if source not in seen and any(source.startswith(r.rstrip("/") + "/") for r in roots):
                    store.delete_source(source)
                    report.removed += 1
                    emit("file", {"path": source, "status": "removed"})
        kept = existed or bool(store.sources())
    finally:
        store.close()
        if not existed and not kept:  # every file failed: leave no empty collection behind
            delete_collection(collection, settings)
        report.seconds = time.perf_counter() - t0
    return report
