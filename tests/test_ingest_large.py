"""Big files: written in parts as they are embedded, resumable after SIGKILL, bounded by a size setting."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genstack import load_settings
from genstack.embeddings.fake import FakeEmbedder
from genstack.stores import open_collection

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def big_file(path: Path, paragraphs: int = 400) -> Path:
    words = "ferry harbour dawn dusk fish stories tide lighthouse gulls nets rope sail".split()
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for i in range(paragraphs):
            f.write(f"Paragraph {i}. " + " ".join(rng.choice(words, 60)) + ".\n\n")
    return path


def snapshot(settings, name):
    s = open_collection(name, settings)
    try:
        hits = s.query(np.ones(64, dtype=np.float32) / 8, k=10_000)
        return s.source_hashes(), sorted((h.id, h.text, round(h.score, 5)) for h in hits)
    finally:
        s.close()


KILLED_RUN = """
import sys, time
sys.path[:0] = {path!r}
import genstack.ingestion as ing
from genstack.embeddings.fake import FakeEmbedder

class Slow(FakeEmbedder):
    def embed(self, texts):
        time.sleep(0.15)
        return super().embed(texts)

ing.PART_CHUNKS = 32
ing.EMBED_BATCH = 16
ing.ingest([{file!r}], "big", embedder=Slow())
"""


def test_a_killed_ingest_of_a_big_file_resumes_and_ends_as_an_uninterrupted_run(tmp_path, monkeypatch):
    import genstack.ingestion as ing

    f = big_file(tmp_path / "big.txt")
    home = tmp_path / "home"
    env = {**os.environ, "GENSTACK_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN.format(path=sys.path, file=str(f))], env=env)
    db = home / "collections" / "big" / "store.sqlite"
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline and proc.poll() is None:  # wait until some parts are stored, then kill
        if db.is_file():
            try:
                stored = sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            except sqlite3.Error:
                stored = 0
            if stored >= 64:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert stored >= 64
    settings = load_settings(data_dir=home)
    hashes, partial = snapshot(settings, "big")
    assert hashes == {} and partial  # parts survived the kill; the file is not marked done

    monkeypatch.setattr(ing, "PART_CHUNKS", 32)
    monkeypatch.setattr(ing, "EMBED_BATCH", 16)
    resumed = FakeEmbedder()
    report = ing.ingest([f], "big", settings=settings, embedder=resumed)
    total = report.chunks
    assert report.ok and report.added == 1 and report.embedded == total - len(partial) == resumed.calls

    clean_settings = load_settings(data_dir=tmp_path / "clean")
    ing.ingest([f], "big", settings=clean_settings, embedder=FakeEmbedder())
    assert snapshot(settings, "big") == snapshot(clean_settings, "big")  # nothing lost, nothing duplicated
    again = FakeEmbedder()
    assert ing.ingest([f], "big", settings=settings, embedder=again).unchanged == 1 and again.calls == 0


def test_files_over_the_size_setting_fail_with_the_setting_named(tmp_path, monkeypatch, capsys):
    from genstack.cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    big_file(docs / "big.txt", 50)
    (docs / "small.txt").write_text("A small file about gulls.")
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENSTACK_MAX_FILE_BYTES", "2000")
    assert run(["ingest", str(docs), "-c", "kb", "--embedder", "fake", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1 and len(report["failed"]) == 1
    assert report["failed"][0]["path"].endswith("big.txt") and "max_file_bytes" in report["failed"][0]["reason"]


def test_progress_lines_when_not_on_a_terminal(tmp_path):
    f = big_file(tmp_path / "big.txt", 1200)
    env = {**os.environ, "GENSTACK_HOME": str(tmp_path / "home")}
    code = ("import sys, time; sys.path[:0] = %r\n"
            "import genstack.ingestion as ing, genstack.embeddings.fake as fk\n"
            "orig = fk.FakeEmbedder.embed\n"
            "fk.FakeEmbedder.embed = lambda self, t: (time.sleep(0.4), orig(self, t))[1]\n"
            "ing.PART_CHUNKS = 64\n"
            "from genstack.cli import main\n"
            "sys.argv = ['genstack', 'ingest', %r, '-c', 'kb', '--embedder', 'fake']\n"
            "main()\n") % (sys.path, str(f))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("ingest: ")]
    assert lines and "chunks stored" in lines[0]


def test_a_big_file_ends_without_its_vectors_passing_through_again_and_a_shrunk_file_loses_its_tail(tmp_path, monkeypatch):
    """SQLite's finish_source ends a file written in parts: replace_source never sees its records
    (so they need not be held), and chunks a shorter new version no longer has are dropped."""
    import genstack.ingestion as ing
    from genstack.stores.sqlite import SQLiteStore

    monkeypatch.setattr(ing, "PART_CHUNKS", 32)
    monkeypatch.setattr(ing, "EMBED_BATCH", 16)
    calls = []
    real = SQLiteStore.replace_source
    monkeypatch.setattr(SQLiteStore, "replace_source",
                        lambda self, source, records, h=None: (calls.append(len(records)), real(self, source, records, h)))
    settings = load_settings(data_dir=tmp_path / "home")
    f = tmp_path / "big.txt"
    big_file(f, 300)
    first = ing.ingest([f], "big", settings=settings, embedder=FakeEmbedder())
    assert first.ok and first.chunks > 64 and calls == []
    hashes, rows = snapshot(settings, "big")
    assert len(hashes) == 1 and len(rows) == first.chunks
    big_file(f, 150)  # a shorter new version
    second = ing.ingest([f], "big", settings=settings, embedder=FakeEmbedder())
    clean = load_settings(data_dir=tmp_path / "clean")
    ing.ingest([f], "big", settings=clean, embedder=FakeEmbedder())
    assert second.updated == 1 and snapshot(settings, "big") == snapshot(clean, "big")
    assert len(snapshot(settings, "big")[1]) < first.chunks


def test_a_big_jsonl_starts_embedding_before_it_is_all_split_and_stores_the_same(tmp_path, monkeypatch):
    import genstack.ingestion as ing
    from genstack.documents import LoaderOptions
    from genstack.documents.splitter import Splitter

    f = tmp_path / "records.jsonl"
    with open(f, "w") as out:
        for i in range(200):
            out.write(json.dumps({"title": f"Record {i}", "text": f"Record {i} says the ferry leaves at {i % 24}:00."}) + "\n")
    split = Splitter.split
    state = {"split": 0, "at_first_part": None}

    def counting(self, doc):
        state["split"] += 1
        return split(self, doc)

    def progress(event, data):
        if event == "part" and state["at_first_part"] is None:
            state["at_first_part"] = state["split"]

    monkeypatch.setattr(Splitter, "split", counting)
    monkeypatch.setattr(ing, "PART_CHUNKS", 32)
    monkeypatch.setattr(ing, "EMBED_BATCH", 16)
    settings = load_settings(data_dir=tmp_path / "parts")
    report = ing.ingest([f], "jsonl", settings=settings, embedder=FakeEmbedder(), loader_options=LoaderOptions(),
                        progress=progress)
    assert report.ok and report.chunks == 200 and state["split"] == 200
    # the first part was embedded and stored while most records were still unsplit (it was all 200 before)
    assert state["at_first_part"] is not None and state["at_first_part"] <= 3 * 32
    monkeypatch.setattr(ing, "PART_CHUNKS", 10_000)  # the same file in one piece
    whole = load_settings(data_dir=tmp_path / "whole")
    ing.ingest([f], "jsonl", settings=whole, embedder=FakeEmbedder(), loader_options=LoaderOptions())
    assert snapshot(settings, "jsonl") == snapshot(whole, "jsonl")
    s = open_collection("jsonl", settings)
    try:
        hits = s.query(np.ones(64, dtype=np.float32) / 8, k=1000)
        assert sorted(h.metadata["chunk_index"] for h in hits) == list(range(200))  # indexes run on across pieces
    finally:
        s.close()
