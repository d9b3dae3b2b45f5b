import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from genstack import GenstackError, InvalidParameter, load_settings
from genstack.embeddings.fake import FakeEmbedder
from genstack.ingestion import ingest
from genstack.retrieval import Retriever
from genstack.stores import open_collection

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "cats.md").write_text("# Cats\n\nCats are small carnivorous mammals that purr.")
    (d / "dogs.txt").write_text("Dogs are loyal companions and love long walks.")
    (d / "sub").mkdir()
    (d / "sub" / "fish.md").write_text("# Fish\n\nFish live in water and breathe with gills.")
    return d


def run(corpus, settings, emb=None, **kw):
    return ingest([corpus], "c", settings=settings, embedder=emb or FakeEmbedder(), **kw)


def test_first_ingest_adds_every_file(corpus, settings):
    r = run(corpus, settings)
    assert (r.added, r.updated, r.unchanged, r.failed) == (3, 0, 0, [])
    assert r.chunks == 3
    store = open_collection("c", settings)
    assert store.count() == 3 and len(store.source_hashes()) == 3


def test_rerun_does_no_work_for_unchanged_files(corpus, settings):
    run(corpus, settings)
    emb = FakeEmbedder()
    r = run(corpus, settings, emb)
    assert (r.added, r.updated, r.unchanged, r.chunks) == (0, 0, 3, 0)
    assert emb.calls == 0


def test_changed_file_replaces_its_chunks(corpus, settings):
    run(corpus, settings)
    (corpus / "dogs.txt").write_text("Dogs bark.\n\nThey also fetch sticks.")
    r = run(corpus, settings)
    assert (r.added, r.updated, r.unchanged) == (0, 1, 2)
    ret = Retriever("c", settings, embedder=FakeEmbedder())
    hits = ret.search("dogs", k=10, mode="bm25")
    assert [h.text for h in hits] == ["Dogs bark.\n\nThey also fetch sticks."]


def test_unchanged_chunks_of_a_changed_file_are_not_embedded_again(tmp_path, settings):
    d = tmp_path / "big"
    d.mkdir()
    paras = [f"Paragraph {i} " + "word " * 40 for i in range(10)]
    (d / "long.md").write_text("\n\n".join(paras))
    emb = FakeEmbedder()
    ingest([d], "c", settings=settings, embedder=emb, chunk_size=60, overlap=0)
    first = emb.calls
    (d / "long.md").write_text("\n\n".join(paras + ["A new last paragraph."]))
    emb2 = FakeEmbedder()
    r = ingest([d], "c", settings=settings, embedder=emb2, chunk_size=60, overlap=0)
    assert r.updated == 1 and first >= 10
    assert emb2.calls < first  # only the chunks whose text changed were embedded


def test_prune_removes_deleted_files_only_when_asked(corpus, settings):
    run(corpus, settings)
    (corpus / "sub" / "fish.md").unlink()
    assert run(corpus, settings).removed == 0
    assert open_collection("c", settings).count() == 3
    r = run(corpus, settings, prune=True)
    assert r.removed == 1
    assert open_collection("c", settings).count() == 2


def test_failures_are_reported_and_the_rest_completes(corpus, settings):
    (corpus / "broken.json").write_text('{"text": ')
    (corpus / "empty.md").write_text("")
    r = run(corpus, settings)
    assert r.added == 3 and not r.ok
    reasons = dict(r.failed)
    assert "invalid JSON" in reasons[str(corpus / "broken.json")]
    assert reasons[str(corpus / "empty.md")] == "the file is empty"


def test_a_file_that_breaks_keeps_what_was_stored(corpus, settings):
    run(corpus, settings)
    (corpus / "dogs.txt").write_bytes(b"\x00\x00binary now")
    r = run(corpus, settings)
    assert len(r.failed) == 1
    assert open_collection("c", settings).count() == 3  # the old dogs chunk is still there


def test_nothing_to_ingest_is_an_error_and_creates_nothing(tmp_path, settings):
    with pytest.raises(GenstackError, match="nothing to ingest"):
        ingest([tmp_path / "missing"], "c", settings=settings, embedder=FakeEmbedder())
    assert not (settings.data_dir / "collections" / "c").exists()


def test_chunk_metadata_and_provenance(corpus, settings):
    run(corpus, settings)
    ret = Retriever("c", settings, embedder=FakeEmbedder())
    hit = ret.search("gills", k=1, mode="bm25")[0]
    m = hit.metadata
    assert m["source"] == str((corpus / "sub" / "fish.md").resolve())
    assert m["title"] == "Fish" and m["heading_path"] == "Fish"
    assert len(m["content_hash"]) == 64 and len(m["file_hash"]) == 64
    assert (m["start"], m["end"]) == (0, len("# Fish\n\nFish live in water and breathe with gills."))


def test_retrieval_modes_and_filters(corpus, settings):
    run(corpus, settings)
    ret = Retriever("c", settings, embedder=FakeEmbedder())
    for mode in ("dense", "bm25", "hybrid"):
        hits = ret.search("cats purr", k=3, mode=mode)
        assert hits[0].metadata["title"] == "Cats", mode
        only_fish = ret.search("cats purr", k=3, mode=mode, filters={"title": "Fish"})
        assert {h.metadata["title"] for h in only_fish} <= {"Fish"}, mode


def test_embedder_mismatch_is_refused(corpus, settings):
    run(corpus, settings)
    from genstack import InvalidParameter

    with pytest.raises(InvalidParameter, match="built with embedder fake"):
        ingest([corpus], "c", settings=settings, embedder=FakeEmbedder(dim=32))


@pytest.mark.integration
def test_sigkill_mid_ingest_leaves_a_consistent_store_and_rerun_completes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    data = tmp_path / "data"
    settings = load_settings(data_dir=data, keyword_index="sparse")
    for i in range(40):
        (docs / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\n" + "\n\n".join(f"Paragraph {j} of document {i}." for j in range(6)))
        if i == 0:  # a first run, with the sparse keyword index built: the killed run makes it stale
            r = ingest([docs], "k", settings=settings, embedder=FakeEmbedder(), chunk_size=16, overlap=0)
            assert r.keyword_index == "sparse"
    script = textwrap.dedent(f"""
        import sys, time
        from genstack import load_settings
        from genstack.embeddings.fake import FakeEmbedder
        from genstack.ingestion import ingest

        class Slow(FakeEmbedder):
            def embed(self, texts):
                time.sleep(0.05)
                return super().embed(texts)

        def progress(event, data):
            if event == "file":
                print("stored", data["path"], flush=True)

        ingest([{str(docs)!r}], "k", settings=load_settings(data_dir={str(data)!r}, keyword_index="sparse"),
               embedder=Slow(),
               chunk_size=16, overlap=0, progress=progress)
    """)
    import genstack.ingestion as gi

    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    stored = 0
    deadline = time.time() + 60
    while stored < 5 and time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("stored"):
            stored += 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = open_collection("k", settings)
    # consistent: every recorded source has exactly its chunks, and no chunk lacks a source
    for s in store.sources():
        assert store.count({"source": s["source"]}) == s["chunks"] > 0
    assert store.count() == sum(s["chunks"] for s in store.sources())
    done_before = len(store.sources())
    assert 5 <= done_before < 40
    # the keyword index is never out of step with the vectors: the stale sparse index is not read,
    # FTS5 answers, and each stored source's chunks are all found by keyword
    assert store.keyword_engine() == "fts5"
    for s in store.sources():
        n = int(s["source"].rsplit("doc", 1)[1][:2])
        hits = store.search_text(f"document {n}", k=100, filters={"source": s["source"]})
        assert len(hits) == s["chunks"]
    store.close()
    # re-run completes: no duplicates, nothing lost
    r = ingest([docs], "k", settings=settings, embedder=FakeEmbedder(), chunk_size=16, overlap=0)
    assert r.unchanged == done_before and r.added == 40 - done_before
    assert r.keyword_index == "sparse"
    fresh = load_settings(data_dir=tmp_path / "fresh")
    ingest([docs], "k", settings=fresh, embedder=FakeEmbedder(), chunk_size=16, overlap=0)
    a, b = open_collection("k", settings), open_collection("k", fresh)
    assert a.count() == b.count()
    ids = [r[0] for r in a.db.execute("SELECT id FROM chunks")]
    assert len(ids) == len(set(ids))
    assert gi.DEFAULT_CHUNK_SIZE > 16  # the test used a small size on purpose


def test_the_same_content_twice_in_one_run_is_embedded_once(corpus, settings):
    (corpus / "cats-copy.md").write_text((corpus / "cats.md").read_text())
    emb = FakeEmbedder()
    r = run(corpus, settings, emb)
    assert (r.added, r.chunks, r.embedded) == (4, 4, 3)
    store = open_collection("c", settings)
    try:
        hits = store.query(emb.embed_queries(["Cats are small carnivorous mammals that purr."])[0], k=2)
    finally:
        store.close()
    assert sorted(h.source.rsplit("/", 1)[-1] for h in hits) == ["cats-copy.md", "cats.md"]
    assert hits[0].score == pytest.approx(hits[1].score)  # both stored with the real vector, not a zero one


def test_the_chunking_defaults_are_defined_once_and_every_entry_point_uses_them():
    import inspect

    from genstack.choices import CHUNK_OVERLAP, CHUNK_SIZE
    from genstack.cli.eval_cmd import retrieval as eval_retrieval
    from genstack.cli.ingest_cmd import ingest as ingest_cmd
    from genstack.documents.splitter import Splitter
    from genstack.ingestion import DEFAULT_CHUNK_SIZE, DEFAULT_OVERLAP
    from genstack.retrieval import TextRetriever

    assert (DEFAULT_CHUNK_SIZE, DEFAULT_OVERLAP) == (CHUNK_SIZE, CHUNK_OVERLAP)
    s = Splitter()
    assert (s.chunk_size, s.overlap) == (CHUNK_SIZE, CHUNK_OVERLAP)
    cli = inspect.signature(ingest_cmd).parameters  # None: the collection's own, else the defaults
    assert (cli["chunk_size"].default.default, cli["overlap"].default.default) == (None, None)
    assert f"[default: {CHUNK_SIZE};" in cli["chunk_size"].default.help
    assert inspect.signature(eval_retrieval).parameters["chunk_size"].default.default is None
    doc = inspect.signature(TextRetriever.__init__).parameters
    assert (doc["chunk_size"].default, doc["overlap"].default) == (CHUNK_SIZE, CHUNK_OVERLAP)


def test_a_collection_keeps_its_chunking_and_refuses_another_in_one_line(tmp_path, settings):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(" ".join(f"word{i}." for i in range(200)))
    r = ingest([docs], "c", settings=settings, embedder=FakeEmbedder(), chunk_size=20, overlap=4)
    assert r.added == 1
    (docs / "b.txt").write_text(" ".join(f"other{i}." for i in range(200)))
    r2 = ingest([docs], "c", settings=settings)  # no chunking given: the collection's own
    assert r2.added == 1 and r2.chunks == r.chunks
    before = open_collection("c", settings).count()
    with pytest.raises(InvalidParameter, match="split into chunks of 20 tokens with 4 of overlap.*collections delete c"):
        ingest([docs], "c", settings=settings, chunk_size=64)
    assert open_collection("c", settings).count() == before  # nothing stored was lost
    p = subprocess.run([sys.executable, "-m", "genstack", "ingest", str(docs), "--collection", "c", "--overlap", "0"],
                       env={**os.environ, "GENSTACK_DATA_DIR": str(settings.data_dir)},
                       capture_output=True, text=True)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "4 of overlap" in p.stderr


def test_the_chunking_is_a_field_of_the_collection_manifest_and_an_older_record_moves_in(tmp_path, settings):
    from genstack.stores.collections import collection_dir

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(" ".join(f"word{i}." for i in range(200)))
    ingest([docs], "m", settings=settings, embedder=FakeEmbedder(), chunk_size=20, overlap=4)
    folder = collection_dir("m", settings)
    manifest = json.loads((folder / "collection.json").read_text())
    assert manifest == {"store": "sqlite", "chunking": {"chunk_size": 20, "overlap": 4}}
    # a collection of 2026-12-07: its chunking in chunking.json beside a manifest without it
    (folder / "collection.json").write_text(json.dumps({"store": "sqlite"}))
    (folder / "chunking.json").write_text(json.dumps({"chunk_size": 20, "overlap": 4}))
    with pytest.raises(InvalidParameter, match="chunks of 20 tokens with 4 of overlap"):
        ingest([docs], "m", settings=settings, chunk_size=64)
    (docs / "b.txt").write_text("more words here.")
    assert ingest([docs], "m", settings=settings).added == 1
    assert json.loads((folder / "collection.json").read_text())["chunking"] == {"chunk_size": 20, "overlap": 4}
    assert not (folder / "chunking.json").exists()
    (folder / "collection.json").write_text(json.dumps({"store": "sqlite", "chunking": {"size": 1}}))
    with pytest.raises(GenstackError, match="collection.json is unreadable"):
        ingest([docs], "m", settings=settings)
