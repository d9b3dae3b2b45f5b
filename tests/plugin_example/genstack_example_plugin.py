"""An example third-party plugin: one model backend, one embedder and one store.

It is registered exactly as a package on PyPI would be, by entry points in its
distribution's metadata (see ``tests/test_plugins.py``, which installs it on a
``sys.path`` folder as ``genstack_example_plugin-0.1.dist-info``)::

    [project.entry-points."genstack.backends"]
    echo = "genstack_example_plugin:EchoModel"
    [project.entry-points."genstack.embedders"]
    hashed = "genstack_example_plugin:HashedEmbedder"
    [project.entry-points."genstack.stores"]
    jsonfile = "genstack_example_plugin:JsonFileStore"

docs/architecture.md walks through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from genstack.embeddings.base import Embedder, normalize
from genstack.errors import InvalidParameter
from genstack.generation import Chunk, GenerationRequest, Usage
from genstack.models.base import Model
from genstack.stores.base import Filters, Hit, Record


class EchoModel(Model):
    """Answers with the last user message, upper-cased. One method: ``execute``."""

    can_stream = True  # declared capabilities; everything else stays False (no json_schema, no scoring)

    def __init__(self, path: str | None = None, **_options: Any):
        self.name = "echo"

    def execute(self, request: GenerationRequest) -> Iterator[Chunk]:
        text = request.prompt if request.prompt is not None else request.messages[-1].content
        words = text.upper().split()[: request.params.max_tokens]
        for w in words:
            yield Chunk(w + " ")
        yield Chunk("", finish_reason="stop", usage=Usage(len(text.split()), len(words)))


class HashedEmbedder(Embedder):
    """Bag of hashed words: deterministic, no weights. One method: ``embed``."""

    def __init__(self, dim: str | int | None = None, **_options: Any):  # --embedder hashed:DIM
        self.name, self.dim = "hashed", int(dim or 64)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        return normalize(out)


class JsonFileStore:
    """Everything in one JSON file, rewritten atomically on each write (fine for a few thousand chunks).

    It adopts the conformance mixins it meets (tests/test_plugins.py): writes, deletes, filters,
    dense search, persistence. Its keyword search is plain word overlap, without stemming, so it
    does not claim ``BM25Conformance``.
    """

    name = "jsonfile"
    FILE = "store.json"

    @classmethod
    def open_collection(cls, folder: Path, *, dim=None, embedder=None, read_only=False, settings=None):
        return cls(Path(folder) / cls.FILE, dim=dim, embedder=embedder)

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (Path(folder) / cls.FILE).is_file()

    def __init__(self, path: Path, *, dim: int | None = None, embedder: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(self.path.read_text()) if self.path.is_file() else {"chunks": {}, "sources": {}, "meta": {}}
        self._data = data
        meta = data["meta"]
        for key, value in (("embedder", embedder), ("dim", dim)):
            if value is not None and key in meta and meta[key] != value:
                raise InvalidParameter(f"this collection was built with {key} {meta[key]}, not {value}")
            if value is not None:
                meta.setdefault(key, value)
        self.embedder, self.dim = meta.get("embedder"), meta.get("dim")
        self._save()

    @property
    def location(self) -> str:
        return str(self.path)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data))
        os.replace(tmp, self.path)  # atomic: a reader or a crash sees the old file or the new one

    def _check(self, records: Sequence[Record]) -> None:
        for r in records:
            if self.dim is not None and np.asarray(r.vector).shape != (self.dim,):
                raise InvalidParameter(f"record {r.id!r}: expected a vector of {self.dim} numbers")

    def _row(self, r: Record) -> dict[str, Any]:
        return {"source": r.source, "text": r.text, "metadata": r.metadata, "hash": r.content_hash,
                "vector": [float(x) for x in r.vector]}

    def replace_source(self, source: str, records: Sequence[Record], source_hash: str | None = None) -> None:
        self._check(records)
        if any(r.source != source for r in records):
            raise InvalidParameter("every record must belong to the source being replaced")
        chunks = {i: c for i, c in self._data["chunks"].items() if c["source"] != source}
        chunks.update({r.id: self._row(r) for r in records})
        self._data["chunks"] = chunks
        self._data["sources"][source] = {"hash": source_hash, "updated": time.time()}
        self._save()

    def upsert(self, records: Sequence[Record]) -> None:
        self._check(records)
        for r in records:
            self._data["chunks"][r.id] = self._row(r)
            self._data["sources"].setdefault(r.source, {"hash": None, "updated": time.time()})
        self._save()

    def delete_source(self, source: str) -> int:
        before = len(self._data["chunks"])
        self._data["chunks"] = {i: c for i, c in self._data["chunks"].items() if c["source"] != source}
        self._data["sources"].pop(source, None)
        self._save()
        return before - len(self._data["chunks"])

    def source_hashes(self) -> dict[str, str]:
        return {s: d["hash"] for s, d in self._data["sources"].items() if d["hash"] is not None}

    def sources(self) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for c in self._data["chunks"].values():
            counts[c["source"]] = counts.get(c["source"], 0) + 1
        return [{"source": s, "hash": d["hash"], "chunks": counts.get(s, 0), "updated": d["updated"]}
                for s, d in sorted(self._data["sources"].items())]

    def texts_in_order(self) -> list[str]:
        by: dict[str, list[str]] = {}
        for c in self._data["chunks"].values():
            by.setdefault(c["source"], []).append(c["text"])
        return ["\n\n".join(v) for _, v in sorted(by.items())]

    def chunks(self) -> list[Hit]:
        order = sorted(self._data["chunks"].items(), key=lambda kv: kv[1]["source"])  # stable: insertion order within
        return [Hit(id=i, source=c["source"], text=c["text"], score=0.0, metadata=dict(c.get("metadata", {})))
                for i, c in order]

    def _match(self, i: str, c: dict[str, Any], filters: Filters | None) -> bool:
        for key, want in (filters or {}).items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", str(key)):
                raise InvalidParameter(f"invalid filter key {key!r}")
            got = {"source": c["source"], "id": i, "content_hash": c["hash"]}.get(key, c["metadata"].get(key))
            wants = want if isinstance(want, (list, tuple, set)) else [want]
            if not any(got == w or str(got) == str(w) for w in wants):
                return False
        return True

    def _hit(self, i: str, c: dict[str, Any], score: float) -> Hit:
        return Hit(i, c["source"], c["text"], score, dict(c["metadata"]))

    def count(self, filters: Filters | None = None) -> int:
        return sum(self._match(i, c, filters) for i, c in self._data["chunks"].items())

    def query(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        q = np.asarray(vector, dtype=np.float32)
        scored = [(float(np.dot(q, c["vector"])), i, c) for i, c in self._data["chunks"].items()
                  if self._match(i, c, filters)]
        scored.sort(key=lambda t: -t[0])
        return [self._hit(i, c, s) for s, i, c in scored[:k]]

    def search_text(self, text: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        words = set(re.findall(r"\w+", text.lower()))
        scored = []
        for i, c in self._data["chunks"].items():
            n = len(words & set(re.findall(r"\w+", c["text"].lower())))
            if n and self._match(i, c, filters):
                scored.append((float(n), i, c))
        scored.sort(key=lambda t: -t[0])
        return [self._hit(i, c, s) for s, i, c in scored[:k]]

    def vectors_by_hash(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        want = set(hashes)
        return {c["hash"]: np.asarray(c["vector"], dtype=np.float32)
                for c in self._data["chunks"].values() if c["hash"] in want}

    def close(self) -> None:
        pass
