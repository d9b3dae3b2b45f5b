"""The binary first pass of the SQLite store's dense search (genstack.stores.binary): sign codes
ranked by Hamming distance, the nearest rescored exactly; exact scores, filters and freshness kept."""

import os
import subprocess
import sys

import numpy as np
import pytest

from genstack import load_settings
from genstack.errors import ConfigError
from genstack.stores import SQLiteStore
from genstack.stores.base import Record
from genstack.stores.binary import BinaryCodes, rescore_count
from genstack.testing import VectorStoreConformance

pytestmark = pytest.mark.unit


def clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters around a shared offset (embeddings are neither centred nor uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) + 2.0
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class TestBinaryDenseConformance(VectorStoreConformance):
    def make_store(self, path, dim):
        return SQLiteStore(path / "store.sqlite", dim=dim, embedder="fake", dense_index="binary")


def test_candidates_keep_every_tie_at_the_cut_and_only_allowed_rows():
    mat = np.array([[1, 1], [1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float32)
    codes = BinaryCodes(mat)
    q = np.array([1, 1], dtype=np.float32)
    d = codes.distances(q)
    assert d[0] == d[1] < d[3]  # the same code, the same distance; the opposite one is farthest
    assert set(codes.candidates(q, 1)) == {0, 1}  # asked for one, both tied rows come
    mask = np.array([False, True, True, True, True])
    assert 0 not in codes.candidates(q, 2, mask)
    assert set(codes.candidates(q, 10, mask)) == {1, 2, 3, 4}  # more than allowed: all allowed


def test_codes_of_wide_vectors_pad_to_whole_words():
    mat = clustered(300, dim=100)
    codes = BinaryCodes(mat)
    assert codes.codes.shape == (2, 300) and codes.distances(mat[7])[7] == 0


def test_rescoring_is_exact_and_recall_against_the_exact_scan_is_high(tmp_path, monkeypatch):
    mat = clustered(6000)
    exact = SQLiteStore(tmp_path / "e.sqlite", dim=64, embedder="fake", dense_index="exact")
    binary = SQLiteStore(tmp_path / "b.sqlite", dim=64, embedder="fake", dense_index="binary")
    records = [Record(f"c{i}", f"s{i % 7}", f"text {i}", mat[i], {"part": i % 2}) for i in range(len(mat))]
    for st in (exact, binary):
        st.upsert(records)
    # a small candidate set (5% of the rows), so the first pass really prunes
    monkeypatch.setattr("genstack.stores.sqlite.rescore_count", lambda k, n: 300)
    assert binary.dense_engine() == "binary" and exact.dense_engine() == "exact"
    # queries near stored chunks (a question close to its passage); recall on real embeddings, where
    # it matters, is measured by benchmarks/retrieval_latency.py
    rng = np.random.default_rng(1)
    near = rng.integers(0, len(mat), 40)
    queries = mat[near] + 0.05 * rng.standard_normal((40, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found = 0
    for q in queries:
        want = exact.query(q, 10)
        got = binary.query(q, 10)
        assert got[0].id == want[0].id  # the nearest chunk is never lost
        assert all(abs(h.score - float(mat[int(h.id[1:])] @ q)) < 1e-5 for h in got)  # exact cosines
        assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
        found += len({h.id for h in want} & {h.id for h in got})
    assert found / (10 * len(queries)) >= 0.95
    hits = binary.query(queries[0], 10, {"part": 1})
    assert len(hits) == 10 and all(h.metadata["part"] == 1 for h in hits)
    # a write changes the version: the codes are rebuilt and the new chunk is found
    new = np.roll(queries[3], 5)
    binary.upsert([Record("fresh", "s-new", "fresh", new, {})])
    assert binary.query(new, 1)[0].id == "fresh"
    for st in (exact, binary):
        st.close()


def test_auto_uses_codes_only_for_big_collections(tmp_path, monkeypatch):
    st = SQLiteStore(tmp_path / "a.sqlite", dim=64, embedder="fake")
    st.upsert([Record(f"c{i}", "s", "t", v, {}) for i, v in enumerate(clustered(50))])
    assert st.dense_engine() == "exact"
    monkeypatch.setattr(SQLiteStore, "BINARY_MIN_CHUNKS", 50)
    assert st.dense_engine() == "binary"
    st.close()
    assert rescore_count(10, 500) == 500 and rescore_count(10, 10**6) == 1000 and rescore_count(10, 10**7) == 10**4


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path):
    with pytest.raises(ConfigError, match="dense_index must be auto, exact or binary"):
        load_settings(data_dir=tmp_path, dense_index="hnsw")
    env = dict(os.environ, GENSTACK_HOME=str(tmp_path), GENSTACK_DENSE_INDEX="hnsw")
    p = subprocess.run([sys.executable, "-m", "genstack", "collections", "list"], capture_output=True, text=True,
                       env=env)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "dense_index" in p.stderr
