"""Test helpers that plugins reuse: the VectorStore conformance suite.

A store backend proves itself by subclassing :class:`VectorStoreConformance`
in its own tests and providing ``make_store``::

    class TestMyStore(VectorStoreConformance):
        def make_store(self, path, dim):
            return MyStore(path / "db", dim=dim)

Every test here must pass. ``make_store`` is called again on the same path to
check persistence, so the store must keep its data on disk under ``path``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .stores.base import Record

__all__ = ["VectorStoreConformance", "unit"]

DIM = 8


def unit(*xs: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(xs)] = xs
    return v / np.linalg.norm(v)


def rec(i: str, source: str, vec: np.ndarray, text: str | None = None, **meta) -> Record:
    return Record(id=i, source=source, text=text or f"text of {i}", vector=vec, metadata=meta, content_hash=f"h-{i}")


class VectorStoreConformance:
    """Inherit in a test class and implement make_store(path, dim)."""

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

    def test_empty_store(self, store):
        assert store.count() == 0
        assert store.query(unit(1), k=3) == []
        assert store.search_text("anything", k=3) == []
        assert store.source_hashes() == {}

    def test_add_and_count(self, filled):
        assert filled.count() == 3
        assert filled.count({"lang": "en"}) == 2
        assert filled.source_hashes() == {"a.md": "hash-a", "b.md": "hash-b"}

    def test_top_k_by_cosine(self, filled):
        hits = filled.query(unit(1, 0), k=2)
        assert [h.id for h in hits] == ["a1", "a2"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].score >= hits[1].score
        assert hits[0].text == "apples and pears" and hits[0].source == "a.md"
        assert hits[0].metadata["lang"] == "en"
        assert [h.id for h in filled.query(unit(0, 1), k=1)] == ["b1"]
        assert len(filled.query(unit(1), k=100)) == 3

    def test_filters_apply_to_dense_and_text_search(self, filled):
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"lang": "de"})] == ["b1"]
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"page": 2})] == ["a2"]
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"page": "2"})] == ["a2"]
        assert {h.id for h in filled.query(unit(1, 0), k=3, filters={"lang": ["en", "de"]})} == {"a1", "a2", "b1"}
        assert [h.id for h in filled.query(unit(1, 0), k=3, filters={"source": "b.md"})] == ["b1"]
        assert filled.query(unit(1, 0), k=3, filters={"lang": "fr"}) == []
        assert [h.id for h in filled.search_text("apples", k=5, filters={"page": 1})] == ["a1"]

    def test_bm25_text_search(self, filled):
        hits = filled.search_text("yellow bananas", k=3)
        assert hits and hits[0].id == "b1" and hits[0].score > 0
        assert [h.id for h in filled.search_text("apple", k=3)] != []  # stemming: apple ~ apples
        assert filled.search_text("the of and", k=3) == []  # only stopwords

    def test_upsert_replaces_by_id(self, filled):
        filled.upsert([rec("a1", "a.md", unit(0, 0, 1), "changed text")])
        assert filled.count() == 3
        hit = filled.query(unit(0, 0, 1), k=1)[0]
        assert hit.id == "a1" and hit.text == "changed text"
        assert [h.id for h in filled.search_text("changed", k=3)] == ["a1"]
        assert filled.search_text("pears", k=3) == []

    def test_replace_source_swaps_all_chunks(self, filled):
        filled.replace_source("a.md", [rec("a3", "a.md", unit(1, 1), "cherries")], "hash-a2")
        assert filled.count() == 2
        assert filled.count({"source": "a.md"}) == 1
        assert filled.source_hashes()["a.md"] == "hash-a2"
        assert filled.search_text("apples", k=3) == []

    def test_delete_by_source(self, filled):
        assert filled.delete_source("a.md") == 2
        assert filled.count() == 1
        assert "a.md" not in filled.source_hashes()
        assert [h.id for h in filled.query(unit(1, 0), k=3)] == ["b1"]
        assert filled.delete_source("nope.md") == 0

    def test_vectors_by_hash(self, filled):
        found = filled.vectors_by_hash(["h-a1", "h-zz"])
        assert list(found) == ["h-a1"]
        assert np.allclose(found["h-a1"], unit(1, 0))

    def test_wrong_dimension_is_refused_and_nothing_is_written(self, filled):
        from genstack.errors import InvalidParameter

        with pytest.raises(InvalidParameter):
            filled.replace_source("c.md", [rec("c1", "c.md", np.ones(DIM + 1, dtype=np.float32))], "h")
        assert filled.count() == 3 and "c.md" not in filled.source_hashes()

    def test_invalid_filter_key_is_refused(self, filled):
        from genstack.errors import InvalidParameter

        with pytest.raises(InvalidParameter):
            filled.query(unit(1), k=1, filters={"x') OR 1=1 --": 1})

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
