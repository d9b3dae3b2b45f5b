"""`genstack ingest --ray`: the same end state as a local ingest, on a real Ray local cluster.

The unit tests need no cluster (Ray missing, an address nothing listens at). The integration
tests start one Ray cluster for the module (2 CPUs) and compare Ray ingests with local ones on
the bundled embedder: the sample corpus through the CLI as a second Ray driver, a few hundred
SciFact abstracts through the Python API, and the same with a worker killed mid-run."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import genstack.ingestion as ingestion
import genstack.ingestion.engines
from genstack import GenstackError, load_settings
from genstack.cli import run
from genstack.ingestion import ingest
from genstack.stores import open_collection
from genstack.stores.collections import collection_exists

SAMPLE = Path(ingestion.__file__).resolve().parents[1] / "data" / "sample"
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval" / "scifact" / "corpus.jsonl"
N_SCIFACT = 300


# -- unit: no cluster needed ------------------------------------------------------------------

@pytest.mark.unit
def test_without_ray_installed_the_error_names_the_extra_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    settings = load_settings(data_dir=tmp_path / "data")
    with pytest.raises(GenstackError, match=r"pip install 'genstack\[ray\]'"):
        ingest([SAMPLE], "c", settings=settings, embedder="fake", ray=True)
    assert not collection_exists("c", settings)


@pytest.mark.unit
def test_cli_unreachable_address_is_one_line_and_keeps_the_collection(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    assert run(["ingest", str(SAMPLE), "-c", "kb", "--embedder", "fake"]) == 0
    capsys.readouterr()
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.md").write_text("# X\n\nMore text.")
    assert run(["ingest", str(tmp_path / "more"), "-c", "kb", "--ray-address", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused"
    assert run(["ingest", str(tmp_path / "more"), "-c", "kb", "--ray-address", "nonsense"]) == 1
    assert "HOST:PORT" in capsys.readouterr().err
    store = open_collection("kb", load_settings())
    try:
        assert len(store.sources()) == len(list(SAMPLE.iterdir()))  # nothing lost, nothing added
    finally:
        store.close()


# -- integration: a real Ray local cluster ----------------------------------------------------

def snapshot(collection, settings):
    """Everything a collection holds, comparable across ingests: chunks in order, hashes, vectors."""
    store = open_collection(collection, settings)
    try:
        chunks = [(h.id, h.source, h.text, h.metadata) for h in store.chunks()]
        hashes = store.source_hashes()
        location = store.location
    finally:
        store.close()
    db = sqlite3.connect(location)
    rows = db.execute("SELECT id, content_hash, vector FROM chunks ORDER BY id").fetchall()
    db.close()
    ids = [r[0] for r in rows]
    content = [r[1] for r in rows]
    vectors = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
    return {"chunks": chunks, "hashes": hashes, "ids": ids, "content": content, "vectors": vectors}


def assert_same(a, b):
    assert a["chunks"] == b["chunks"]
    assert a["hashes"] == b["hashes"]
    assert a["ids"] == b["ids"] and a["content"] == b["content"]
    assert a["vectors"].shape == b["vectors"].shape
    np.testing.assert_allclose(a["vectors"], b["vectors"], atol=1e-5)


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def scifact(tmp_path_factory):
    if not SCIFACT.exists():
        pytest.skip(f"SciFact corpus not found at {SCIFACT} (see ../shared/data/README)")
    d = tmp_path_factory.mktemp("scifact")
    with SCIFACT.open() as f:
        for _, line in zip(range(N_SCIFACT), f):
            doc = json.loads(line)
            (d / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")
    return d


@pytest.fixture(scope="module")
def scifact_fake(scifact, tmp_path_factory):
    """The local ingest with the fake embedder: the kill tests are about Ray and the writer, not the model."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("local-fake"))
    ingest([scifact], "sf", settings=settings, embedder="fake")
    return snapshot("sf", settings)


@pytest.fixture(scope="module")
def scifact_local(scifact, tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("local"))
    report = ingest([scifact], "sf", settings=settings)
    assert report.added == N_SCIFACT and not report.failed
    return report, snapshot("sf", settings)



@pytest.mark.integration
@pytest.mark.slow
def test_cli_ray_ingest_of_the_sample_corpus_equals_the_local_one(cluster, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for p in SAMPLE.iterdir():
        (docs / p.name).write_bytes(p.read_bytes())
    (docs / "copy-of-sourdough.md").write_bytes((SAMPLE / "sourdough-guide.md").read_bytes())  # same content twice
    out = {}
    for name, extra in (("local", []), ("ray", ["--ray-address", cluster])):
        env = dict(os.environ, GENSTACK_HOME=str(tmp_path / name))
        proc = subprocess.run([sys.executable, "-m", "genstack", "ingest", str(docs), "-c", "kb", "--json", *extra],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out[name] = (json.loads(proc.stdout), snapshot("kb", load_settings(data_dir=tmp_path / name)))
    (local_report, local), (ray_report, ray_) = out["local"], out["ray"]
    assert ray_report["added"] == local_report["added"] == len(list(docs.iterdir()))
    assert ray_report["chunks"] == local_report["chunks"] > 0
    assert ray_report["embedded"] == local_report["embedded"] < local_report["chunks"]  # the copy is not re-embedded
    assert_same(ray_, local)


@pytest.mark.integration
@pytest.mark.slow
def test_ray_ingest_of_scifact_equals_the_local_one(cluster, scifact, scifact_local, tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    events = []
    report = ingest([scifact], "sf", settings=settings, ray=True, progress=lambda e, d: events.append((e, d)))
    engine = [d for e, d in events if e == "engine"]
    assert engine and engine[0]["workers"] == 2 and len(set(engine[0]["pids"])) == 2
    local_report, local = scifact_local
    assert (report.added, report.chunks, report.embedded) == (local_report.added, local_report.chunks, local_report.embedded)
    assert_same(snapshot("sf", settings), local)


def killing_worker_0(events):
    """A progress callback that SIGKILLs Ray worker 0 when the first batch has been written."""
    state = {"pids": None, "killed": False}

    def progress(event, data):
        events.append(event)
        if event == "engine":
            state["pids"] = data["pids"]
        if event == "embedded" and not state["killed"]:
            os.kill(state["pids"][0], signal.SIGKILL)
            state["killed"] = True

    return progress, state


@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_the_ingest_completes(cluster, scifact, scifact_fake, tmp_path, monkeypatch):
    monkeypatch.setattr(ingestion, "EMBED_BATCH", 32)  # many batches, so worker 0 still has work when it dies
    settings = load_settings(data_dir=tmp_path / "data")
    events = []
    progress, state = killing_worker_0(events)
    report = ingest([scifact], "sf", settings=settings, embedder="fake", ray=True, progress=progress)
    assert state["killed"] and events.index("embedded") < len(events) - 1
    assert report.added == N_SCIFACT and not report.failed
    assert_same(snapshot("sf", settings), scifact_fake)


@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_dying_for_good_stops_cleanly_and_a_rerun_loses_and_duplicates_nothing(
        cluster, scifact, scifact_fake, tmp_path, monkeypatch):
    monkeypatch.setattr(ingestion, "EMBED_BATCH", 32)
    monkeypatch.setattr(ingestion.engines.RayEngine, "RESTARTS", 0)  # no restart: the run must stop
    settings = load_settings(data_dir=tmp_path / "data")
    progress, state = killing_worker_0([])
    with pytest.raises(GenstackError, match="died"):
        ingest([scifact], "sf", settings=settings, embedder="fake", ray=True, progress=progress)
    assert state["killed"]
    store = open_collection("sf", settings)
    try:
        written = len(store.sources())
    finally:
        store.close()
    assert 0 < written < N_SCIFACT  # what was written before the death is kept
    monkeypatch.setattr(ingestion.engines.RayEngine, "RESTARTS", 3)
    report = ingest([scifact], "sf", settings=settings, ray=True)  # the collection's own embedder, fake
    assert (report.unchanged, report.added) == (written, N_SCIFACT - written)
    assert_same(snapshot("sf", settings), scifact_fake)
    again = ingest([scifact], "sf", settings=settings, ray=True)
    assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, N_SCIFACT, 0)


@pytest.mark.integration
@pytest.mark.slow
def test_more_workers_than_cpus_is_refused_before_anything_is_stored(cluster, tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    with pytest.raises(GenstackError, match="more than the cluster's 2 CPUs"):
        ingest([SAMPLE], "c", settings=settings, embedder="fake", ray=True, ray_workers=3)
    assert not collection_exists("c", settings)
