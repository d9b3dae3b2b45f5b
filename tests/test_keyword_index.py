"""The sparse BM25 index beside a SQLite store's FTS5 index (genstack.stores.sparse): the same
scores and ranking as FTS5, used only while current, rebuilt by ingest, safe against crashes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from genstack import load_settings
from genstack.errors import ConfigError
from genstack.stores import SQLiteStore, open_collection
from genstack.stores.sparse import query_terms, sweep
from genstack.testing import VectorStoreConformance, rec, unit

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "genstack" / "data" / "sample"
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval" / "scifact"


def sample_store(path: Path, **kw) -> SQLiteStore:
    """The sample corpus, a chunk per paragraph, titled by its file: a store of a few hundred chunks."""
    st = SQLiteStore(path / "s.sqlite", dim=8, embedder="fake", **kw)
    for doc in sorted(SAMPLE.glob("*.md")):
        paras = [p for p in doc.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        st.replace_source(doc.name, [rec(f"{doc.stem}-{i}", doc.name, unit(1, i % 3), p, title=doc.stem, part=i % 2)
                                     for i, p in enumerate(paras)], doc.name)
    return st


def questions() -> list[str]:
    rows = (SAMPLE.parent / "rag_eval.jsonl").read_text(encoding="utf-8").splitlines()
    qs = [json.loads(r)["question"] for r in rows if r.strip()]
    # stems shared by two words, a word given twice, digits, accents, a stopword-only query
    return qs + ["cells cell celled", "kettle kettle boil", "1962 2024", "Café résumé naïve", "the of and"]


def both(st: SQLiteStore, q: str, **kw):
    st.keyword_index = "fts5"
    want = st.search_text(q, **kw)
    st.keyword_index = "sparse"
    got = st.search_text(q, **kw)
    return want, got


def assert_same(want, got):
    assert [h.id for h in got] == [h.id for h in want]
    assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5)


def test_the_same_ranking_and_scores_as_fts5(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    assert st.keyword_engine() == "fts5"  # none built yet
    assert st.update_keyword_index() == "sparse" and st.keyword_engine() == "sparse"
    qs = questions()
    answered = []
    for q in qs:
        want, got = both(st, q, k=10)
        assert_same(want, got)
        answered.append(bool(got))
    assert all(answered[:-5]) and answered[-5:] == [True, True, False, True, False]


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason=f"BEIR SciFact is not at {SCIFACT}")
def test_the_same_ranking_as_fts5_on_scifact(tmp_path):
    st = SQLiteStore(tmp_path / "s.sqlite", dim=8, embedder="fake")
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:2000]]
    st.upsert([rec(d["_id"], "scifact", unit(1), d["text"], title=d["title"]) for d in docs])
    st.keyword_index = "sparse"
    assert st.update_keyword_index() == "sparse"
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines()[:200]]
    for q in queries:
        assert_same(*both(st, q, k=10))


def test_filters_match_fts5(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    st.update_keyword_index()
    for filters in ({"part": 1}, {"source": "sourdough-guide.md"}, {"source": "sourdough-guide.md", "part": 0},
                    {"source": "nowhere.md"}):
        want, got = both(st, "starter flour water temperature", k=5, filters=filters)
        assert_same(want, got)
    assert both(st, "starter flour", k=5, filters={"source": "nowhere.md"})[1] == []


def test_a_word_fts5_reads_as_a_phrase_is_answered_by_fts5():
    assert query_terms(["running", "cats"], "porter unicode61 remove_diacritics 2") == ["run", "cat"]
    assert query_terms(["foo_bar"], "porter unicode61 remove_diacritics 2") is None  # "foo bar", a phrase


def test_phrase_words_still_get_fts5_results(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    st.update_keyword_index()
    want, got = both(st, "sourdough_starter", k=5)
    assert got and [h.id for h in got] == [h.id for h in want]


def test_a_write_makes_it_stale_and_fts5_answers_until_rebuilt(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    st.update_keyword_index()
    st.replace_source("new.md", [rec("n1", "new.md", unit(1), "zymurgy is the study of fermentation")], "h")
    assert st.keyword_engine() == "fts5"
    assert [h.id for h in st.search_text("zymurgy", k=3)] == ["n1"]  # the new chunk is found at once
    other = SQLiteStore(tmp_path / "s.sqlite", dim=8, keyword_index="sparse")  # another connection
    assert other.update_keyword_index() == "sparse"
    assert st.keyword_engine() == "sparse"  # the first sees the rebuilt index
    assert [h.id for h in st.search_text("zymurgy", k=3)] == ["n1"]
    other.delete_source("new.md")
    assert st.keyword_engine() == "fts5" and st.search_text("zymurgy", k=3) == []


def test_rebuild_removes_the_old_version(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    st.update_keyword_index()
    st.delete_source("sourdough-guide.md")
    st.update_keyword_index()
    assert [p.name for p in tmp_path.glob("s.bm25-v*")] == [f"s.bm25-v{st.version()}"]


def test_fts5_setting_never_builds_and_removes_a_built_one(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    st.update_keyword_index()
    assert list(tmp_path.glob("s.bm25-v*"))
    st.keyword_index = "fts5"
    assert st.update_keyword_index() == "fts5" and st.keyword_engine() == "fts5"
    assert list(tmp_path.glob("s.bm25-v*")) == []


def test_auto_builds_from_the_threshold_up(tmp_path, monkeypatch):
    st = sample_store(tmp_path)  # "auto"
    assert st.update_keyword_index() == "fts5" and not list(tmp_path.glob("s.bm25-v*"))
    monkeypatch.setattr(SQLiteStore, "SPARSE_MIN_CHUNKS", st.count())
    assert st.update_keyword_index() == "sparse"


def test_a_dead_builders_partial_is_never_read_and_is_swept(tmp_path):
    st = sample_store(tmp_path, keyword_index="sparse")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    partial = tmp_path / f"s.bm25-v{st.version()}.{dead.pid}-abcd.partial"
    partial.mkdir()
    (partial / "meta.json").write_text("{")  # half written
    live = tmp_path / f"s.bm25-v{st.version()}.{os.getpid()}-beef.partial"
    live.mkdir()
    assert st.keyword_engine() == "fts5"
    assert st.update_keyword_index() == "sparse"
    assert not partial.exists() and live.exists()  # a live process's build is left alone
    sweep(tmp_path / "s.bm25", keep=None)
    assert not list(tmp_path.glob("s.bm25-v*[0-9]")) and live.exists()


def test_sigkill_mid_build_leaves_the_store_searchable_and_the_next_build_works(tmp_path):
    st = sample_store(tmp_path)
    want = [h.id for h in st.search_text("sourdough starter", k=5)]
    script = textwrap.dedent(f"""
        import time, numpy as np
        import genstack.stores.sparse as sp
        from genstack.stores import SQLiteStore
        real = np.save
        def slow_save(path, arr):
            real(path, arr)
            print("saving", path, flush=True)
            time.sleep(60)
        sp.np.save = slow_save
        SQLiteStore({str(tmp_path / "s.sqlite")!r}, dim=8, keyword_index="sparse").update_keyword_index()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    line = ""
    while not line.startswith("saving") and time.time() < deadline:
        line = proc.stdout.readline()
    assert line.startswith("saving")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob("s.bm25-v*.partial"))) == 1  # what the crash left
    st.keyword_index = "sparse"
    assert st.keyword_engine() == "fts5"
    assert [h.id for h in st.search_text("sourdough starter", k=5)] == want
    assert st.update_keyword_index() == "sparse"
    assert [h.id for h in st.search_text("sourdough starter", k=5)] == want
    assert not list(tmp_path.glob("s.bm25-v*.partial"))


def test_ingest_builds_it_and_reports_the_engine(tmp_path):
    from genstack.embeddings.fake import FakeEmbedder
    from genstack.ingestion import ingest

    settings = load_settings(data_dir=tmp_path / "data", keyword_index="sparse")
    r = ingest([SAMPLE], "k", settings=settings, embedder=FakeEmbedder())
    assert r.keyword_index == "sparse" and r.to_dict()["keyword_index"] == "sparse"
    store = open_collection("k", settings)
    try:
        assert store.keyword_engine() == "sparse" and store.search_text("sourdough starter", k=3)
    finally:
        store.close()
    auto = load_settings(data_dir=tmp_path / "auto")
    assert ingest([SAMPLE], "k", settings=auto, embedder=FakeEmbedder()).keyword_index == "fts5"  # small


def test_a_bad_setting_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="keyword_index must be auto, sparse or fts5"):
        load_settings(data_dir=tmp_path, keyword_index="lucene")


def test_a_bad_setting_from_the_environment_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, GENSTACK_HOME=str(tmp_path), GENSTACK_KEYWORD_INDEX="lucene")
    p = subprocess.run([sys.executable, "-m", "genstack", "collections", "list"], capture_output=True, text=True,
                       env=env)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "keyword_index" in p.stderr


class AlwaysSparse(SQLiteStore):
    """A store that rebuilds its sparse index after every write, so every search is answered by it."""

    def _rebuilt(name):
        def write(self, *args, **kwargs):
            out = getattr(SQLiteStore, name)(self, *args, **kwargs)
            self.update_keyword_index()  # "fts5" only if another thread wrote meanwhile
            return out
        return write

    replace_source = _rebuilt("replace_source")
    upsert = _rebuilt("upsert")
    delete_source = _rebuilt("delete_source")
    finish_source = _rebuilt("finish_source")


class TestSparseIndexConformance(VectorStoreConformance):
    def make_store(self, path, dim):
        return AlwaysSparse(path / "store.sqlite", dim=dim, embedder="fake", keyword_index="sparse")

    def test_searches_are_answered_by_the_sparse_index(self, filled):
        assert filled.keyword_engine() == "sparse"
        assert [h.id for h in filled.search_text("apples", k=3)]
