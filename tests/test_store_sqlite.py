import numpy as np
import pytest

from genstack import load_settings
from genstack.errors import InvalidParameter
from genstack.stores import CollectionNotFound, SQLiteStore, delete_collection, list_collections, open_collection
from genstack.testing import VectorStoreConformance, rec, unit

pytestmark = pytest.mark.unit


class TestSQLiteStore(VectorStoreConformance):
    def make_store(self, path, dim):
        return SQLiteStore(path / "store.sqlite", dim=dim, embedder="fake")


def test_collections_are_isolated(tmp_path):
    s = load_settings(data_dir=tmp_path)
    a = open_collection("alpha", s, create=True, embedder="fake", dim=8)
    b = open_collection("beta", s, create=True, embedder="fake", dim=8)
    a.replace_source("x.md", [rec("x1", "x.md", unit(1), "secret alpha text")], "h")
    assert b.count() == 0
    assert b.query(unit(1), k=5) == [] and b.search_text("secret", k=5) == []
    assert [c["name"] for c in list_collections(s)] == ["alpha", "beta"]
    assert list_collections(s)[0]["chunks"] == 1


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a..b", "nul\x00"])
def test_collection_names_cannot_escape(tmp_path, name):
    with pytest.raises(InvalidParameter):
        open_collection(name, load_settings(data_dir=tmp_path), create=True)


def test_unknown_collection_and_delete(tmp_path):
    s = load_settings(data_dir=tmp_path)
    with pytest.raises(CollectionNotFound, match="no collection named 'nope'"):
        open_collection("nope", s)
    open_collection("gone", s, create=True).close()
    delete_collection("gone", s)
    assert list_collections(s) == []
    with pytest.raises(CollectionNotFound):
        delete_collection("gone", s)


def test_embedder_mismatch_is_refused(tmp_path):
    s = load_settings(data_dir=tmp_path)
    open_collection("c", s, create=True, embedder="fake", dim=8).close()
    with pytest.raises(InvalidParameter, match="built with embedder fake"):
        open_collection("c", s, embedder="minilm-l6-v2", dim=384)


def test_matrix_cache_sees_new_writes(tmp_path):
    st = SQLiteStore(tmp_path / "s.sqlite", dim=8)
    st.replace_source("a", [rec("a1", "a", unit(1))], "h")
    assert [h.id for h in st.query(unit(1), k=5)] == ["a1"]
    st.replace_source("b", [rec("b1", "b", unit(0, 1))], "h")
    assert {h.id for h in st.query(unit(1), k=5)} == {"a1", "b1"}
    other = SQLiteStore(tmp_path / "s.sqlite", dim=8)  # a second connection writes
    other.delete_source("a")
    assert [h.id for h in st.query(unit(1), k=5)] == ["b1"]
    assert np.isfinite(st.query(unit(1), k=1)[0].score)
