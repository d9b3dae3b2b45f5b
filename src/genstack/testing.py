"""Test helpers that plugins reuse: the VectorStore conformance suite, one mixin per capability.

A store backend proves itself by subclassing the mixins in its own tests and
providing ``make_store``; :class:`VectorStoreConformance` is all of them::

    class TestMyStore(VectorStoreConformance):
        def make_store(self, path, dim):
            return MyStore(path / "db", dim=dim)

A store under way can adopt them one at a time (``class TestMyStore(WriteConformance,
DenseSearchConformance): ...``). ``make_store`` is called again on the same path
to check persistence, so the store must keep its data under ``path``.

=========================  ===================================================
mixin                      what it proves
=========================  ===================================================
``ProtocolConformance``    the object is a ``VectorStore``; empty-store answers
``WriteConformance``       replace_source, upsert, counts, hashes, dimension checks
``DeleteConformance``      delete_source
``FilterConformance``      metadata and column filters, on dense and BM25 search
``DenseSearchConformance`` top-k by cosine, vectors_by_hash
``BM25Conformance``        keyword search with stemming and stopwords
``PersistenceConformance`` another process reads what one wrote
``ConcurrencyConformance`` readers during writes never see a half-written source
=========================  ===================================================
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .stores.base import Record

__all__ = ["VectorStoreConformance", "ProtocolConformance", "WriteConformance", "DeleteConformance",
           "FilterConformance", "DenseSearchConformance", "BM25Conformance", "PersistenceConformance",
           "ConcurrencyConformance", "unit", "rec"]

DIM = 8


def unit(*xs: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(xs)] = xs
    return v / np.linalg.norm(v)


def rec(i: str, source: str, vec: np.ndarray, text: str | None = None, **meta) -> Record:
    return Record(id=i, source=source, text=text or f"text of {i}", vector=vec, metadata=meta, content_hash=f"h-{i}")


class _StoreFixtures:
    """``store`` (empty) and ``filled`` (three chunks in two sources) from ``make_store(path, dim)``."""

    def make_store(self, path: Path, dim: int):  # pragma: no cover - abstract
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path):
        s = self.make_store(tmp_path, DIM)
        yield s
        s.close()

    @pytest.fixture
    def filled(self, store):
        store.replace_source("a.md", [rec("a1", "a.md", unit(1, 0), "apples and pears", lang="en", page=1),
                                      rec("a2", "a.md", unit(0.9, 0.1), "apples again", lang="en", page=2)], "hash-a")
        store.replace_source("b.md", [rec("b1", "b.md", unit(0, 1), "bananas are yellow", lang="de", page=1)], "hash-b")
        return store


class ProtocolConformance(_StoreFixtures):
    def test_is_a_vector_store(self, store):
        from .stores.base import VectorStore

        assert isinstance(store, VectorStore)
        assert isinstance(store.location, str) and store.location

    def test_empty_store(self, store):
        assert store.count() == 0
        assert store.query(unit(1), k=3) == []
        assert store.search_text("anything", k=3) == []
        assert store.source_hashes() == {}
        assert store.sources() == []
        assert store.texts_in_order() == []
        assert store.chunks() == []


class WriteConformance(_StoreFixtures):
    def test_add_and_count(self, filled):
        assert filled.count() == 3
        assert filled.source_hashes() == {"a.md": "hash-a", "b.md": "hash-b"}
        info = {d["source"]: d for d in filled.sources()}
        assert [d["source"] for d in filled.sources()] == ["a.md", "b.md"]
        assert info["a.md"]["chunks"] == 2 and info["a.md"]["hash"] == "hash-a" and info["b.md"]["chunks"] == 1

    def test_upsert_replaces_by_id(self, filled):
        filled.upsert([rec("a1", "a.md", unit(0, 0, 1), "changed text")])
        assert filled.count() == 3
        hit = filled.query(unit(0, 0, 1), k=1)[0]
        assert hit.id == "a1" and hit.text == "changed text"

    def test_upsert_counts_new_sources(self, filled):
        filled.upsert([rec("c1", "c.md", unit(0, 0, 1), "cucumbers")])
        info = {d["source"]: d["chunks"] for d in filled.sources()}
        assert info == {"a.md": 2, "b.md": 1, "c.md": 1}
        assert "c.md" not in filled.source_hashes()  # upsert records no content hash

    def test_replace_source_swaps_all_chunks(self, filled):
        filled.replace_source("a.md", [rec("a3", "a.md", unit(1, 1), "cherries")], "hash-a2")
        assert filled.count() == 2
        assert filled.count({"source": "a.md"}) == 1
        assert filled.source_hashes()["a.md"] == "hash-a2"
        assert filled.search_text("apples", k=3) == []

    def test_replace_source_with_no_chunks_keeps_the_hash(self, filled):
        filled.replace_source("empty.md", [], "hash-e")
        assert filled.source_hashes()["empty.md"] == "hash-e" and filled.count() == 3

    def test_texts_in_order(self, filled):
        assert filled.texts_in_order() == ["apples and pears\n\napples again", "bananas are yellow"]

    def test_chunks_in_document_order(self, filled):
        got = [(h.id, h.source, h.text) for h in filled.chunks()]
        assert got == [("a1", "a.md", "apples and pears"), ("a2", "a.md", "apples again"),
                       ("b1", "b.md", "bananas are yellow")]

    def test_wrong_dimension_is_refused_and_nothing_is_written(self, filled):
        from genstack.errors import InvalidParameter

        with pytest.raises(InvalidParameter):
            filled.replace_source("c.md", [rec("c1", "c.md", np.ones(DIM + 1, dtype=np.float32))], "h")
        assert filled.count() == 3 and "c.md" not in filled.source_hashes()

    def test_records_of_another_source_are_refused(self, filled):
        from genstack.errors import InvalidParameter

        with pytest.raises(InvalidParameter):
            filled.replace_source("a.md", [rec("x1", "b.md", unit(1))], "h")
        assert filled.count() == 3


class DeleteConformance(_StoreFixtures):
    def test_delete_by_source(self, filled):
        assert filled.delete_source("a.md") == 2
        assert filled.count() == 1
        assert "a.md" not in filled.source_hashes()
        assert [d["source"] for d in filled.sources()] == ["b.md"]
        assert [h.id for h in filled.query(unit(1, 0), k=3)] == ["b1"]
        assert filled.delete_source("nope.md") == 0


class FilterConformance(_StoreFixtures):
    def test_count_with_filters(self, filled):
        assert filled.count({"lang": "en"}) == 2
        assert filled.count({"source": "b.md"}) == 1

    def test_filters_apply_to_dense_and_text_search(self, filled):
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"lang": "de"})] == ["b1"]
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"page": 2})] == ["a2"]
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"page": "2"})] == ["a2"]
        assert {h.id for h in filled.query(unit(1, 0), k=3, filters={"lang": ["en", "de"]})} == {"a1", "a2", "b1"}
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"source": "b.md"})] == ["b1"]
        assert filled.query(unit(1, 0), k=3, filters={"lang": "fr"}) == []
        assert [h.id for h in filled.search_text("apples", k=5, filters={"page": 1})] == ["a1"]
        assert [h.id for h in filled.search_text("apples", k=5, filters={"source": "a.md", "page": 2})] == ["a2"]

    def test_invalid_filter_key_is_refused(self, filled):
        from genstack.errors import InvalidParameter

        with pytest.raises(InvalidParameter):
            filled.query(unit(1), k=1, filters={"x') OR 1=1 --": 1})


class DenseSearchConformance(_StoreFixtures):
    def test_top_k_by_cosine(self, filled):
        hits = filled.query(unit(1, 0), k=2)
        assert [h.id for h in hits] == ["a1", "a2"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].score >= hits[1].score
        assert hits[0].text == "apples and pears" and hits[0].source == "a.md"
        assert hits[0].metadata["lang"] == "en"
        assert [h.id for h in filled.query(unit(0, 1), k=1)] == ["b1"]
        assert len(filled.query(unit(1), k=100)) == 3

    def test_vectors_by_hash(self, filled):
        found = filled.vectors_by_hash(["h-a1", "h-zz"])
        assert list(found) == ["h-a1"]
        assert np.allclose(found["h-a1"], unit(1, 0))


class BM25Conformance(_StoreFixtures):
    def test_bm25_text_search(self, filled):
        hits = filled.search_text("yellow bananas", k=3)
        assert hits and hits[0].id == "b1" and hits[0].score > 0
        assert [h.id for h in filled.search_text("apple", k=3)] != []  # stemming: apple ~ apples
        assert filled.search_text("the of and", k=3) == []  # only stopwords

    def test_bm25_follows_writes(self, filled):
        filled.upsert([rec("a1", "a.md", unit(0, 0, 1), "changed text")])
        assert [h.id for h in filled.search_text("changed", k=3)] == ["a1"]
        assert filled.search_text("pears", k=3) == []


class PersistenceConformance(_StoreFixtures):
    def test_persistence_across_processes(self, tmp_path):
        s = self.make_store(tmp_path, DIM)
        s.replace_source("a.md", [rec("a1", "a.md", unit(1, 0), "persisted text", lang="en")], "hash-a")
        s.close()
        # a different process sees it
        code = textwrap.dedent(f"""
            import sys
            sys.path[:0] = {sys.path!r}
            from {type(self).__module__} import {type(self).__name__} as T
            s = T().make_store(__import__('pathlib').Path({str(tmp_path)!r}), {DIM})
            print(s.count(), s.search_text('persisted', k=1)[0].id, s.source_hashes()['a.md'])
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["1", "a1", "hash-a"]


class ConcurrencyConformance(_StoreFixtures):
    def test_readers_never_see_half_a_source(self, store):
        """While one thread replaces a 20-chunk source 15 times, readers always count 0 or 20 of it."""
        import threading

        def version(i):
            return [rec(f"s{i}-{j}", "s.md", unit(1, j / 20), f"chunk {j} of version {i}") for j in range(20)]

        store.replace_source("s.md", version(0), "h0")
        seen, errors = set(), []
        done = threading.Event()

        def read():
            try:
                while not done.is_set():
                    seen.add(store.count({"source": "s.md"}))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            for i in range(1, 16):
                store.replace_source("s.md", version(i), f"h{i}")
        finally:
            done.set()
            for t in readers:
                t.join()
        assert not errors, errors
        assert seen <= {20}
        assert store.count() == 20 and store.source_hashes() == {"s.md": "h15"}
        assert {h.id for h in store.query(unit(1), k=20)} == {f"s15-{j}" for j in range(20)}

    def test_writers_on_different_sources(self, store):
        import threading

        errors = []

        def write(name):
            try:
                for i in range(5):
                    store.replace_source(name, [rec(f"{name}-{i}-{j}", name, unit(1, j)) for j in range(3)], f"{name}{i}")
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(f"w{n}.md",)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert store.count() == 9
        assert store.source_hashes() == {f"w{n}.md": f"w{n}.md4" for n in range(3)}


class VectorStoreConformance(ProtocolConformance, WriteConformance, DeleteConformance, FilterConformance,
                             DenseSearchConformance, BM25Conformance, PersistenceConformance, ConcurrencyConformance):
    """Every capability: inherit in a test class and implement make_store(path, dim)."""
