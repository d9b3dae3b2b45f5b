"""The LanceDB store passes the whole conformance suite, and works as a collection backend."""

import pytest

pytest.importorskip("lancedb", reason="the lancedb extra is not installed")

from genstack import load_settings  # noqa: E402
from genstack.stores import list_collections, open_collection  # noqa: E402
from genstack.stores.lancedb import LanceDBStore  # noqa: E402
from genstack.testing import VectorStoreConformance, rec, unit  # noqa: E402

pytestmark = pytest.mark.unit


class TestLanceDBStore(VectorStoreConformance):
    def make_store(self, path, dim):
        return LanceDBStore(path / "lance", dim=dim, embedder="fake")


def test_lancedb_collection_is_chosen_by_name_and_remembered(tmp_path):
    s = load_settings(data_dir=tmp_path)
    c = open_collection("lan", s, create=True, embedder="fake", dim=8, store="lancedb")
    assert isinstance(c, LanceDBStore)
    c.replace_source("x.md", [rec("x1", "x.md", unit(1), "lance text")], "h")
    c.close()
    again = open_collection("lan", s)  # no store named: the collection's own
    assert isinstance(again, LanceDBStore) and again.count() == 1
    again.close()
    assert [(d["name"], d["store"], d["chunks"]) for d in list_collections(s)] == [("lan", "lancedb", 1)]


def test_a_collection_cannot_change_store(tmp_path):
    from genstack.errors import InvalidParameter

    s = load_settings(data_dir=tmp_path)
    open_collection("one", s, create=True, embedder="fake", dim=8, store="sqlite").close()
    with pytest.raises(InvalidParameter, match="stored in sqlite"):
        open_collection("one", s, store="lancedb")


def test_lancedb_uri_keeps_data_outside_the_collection_folder(tmp_path):
    shared = tmp_path / "shared-storage"
    s = load_settings(data_dir=tmp_path / "home", lancedb_uri=str(shared), store="lancedb")
    c = open_collection("kb", s, create=True, embedder="fake", dim=8)
    c.replace_source("x.md", [rec("x1", "x.md", unit(1), "shared text")], "h")
    c.close()
    assert (shared / "kb").is_dir() and not (tmp_path / "home" / "collections" / "kb" / "lance").exists()
    assert open_collection("kb", s).search_text("shared", k=1)[0].id == "x1"


def test_approximate_index_is_used_and_finds_the_nearest(tmp_path):
    import numpy as np

    st = LanceDBStore(tmp_path / "lance", dim=8, embedder="fake")
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((600, 8)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    st.replace_source("r.md", [rec(f"r{i}", "r.md", v, f"row {i}") for i, v in enumerate(vecs)], "h")
    exact = [h.id for h in st.query(vecs[7], k=5)]
    st.create_vector_index(partitions=4, sub_vectors=2)
    assert st.has_vector_index()
    approx = [h.id for h in st.query(vecs[7], k=5)]
    assert approx[0] == exact[0] == "r7"  # refine_factor re-ranks with exact distances
    st.close()
