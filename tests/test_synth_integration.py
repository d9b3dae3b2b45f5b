"""genstack synth qa on the bundled model, as a user runs it, and the file through genstack eval rag."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests._server import SAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_synth_qa_writes_checked_items_that_eval_rag_reads(tmp_path):
    env = {"GENSTACK_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}

    def genstack(*args):
        return subprocess.run([sys.executable, "-m", "genstack", *args], env=env, text=True, capture_output=True,
                              timeout=600)

    assert genstack("ingest", str(SAMPLE), "--collection", "docs").returncode == 0
    out = tmp_path / "syn.jsonl"
    r = genstack("synth", "qa", "--collection", "docs", "--output", str(out), "--n", "6", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    items = [json.loads(x) for x in out.read_text().splitlines()]
    assert report["items"] == len(items) >= 3
    for it in items:
        if it["source"]:
            assert it["answer"] in it["supporting_sentence"] and it["answer"] in it["context"]
            assert all(it["filters"].values()) and it["model"] == "smollm2-135m-instruct"
    r = genstack("eval", "rag", "--collection", "docs", "--dataset", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["questions"] == len(items)


def test_synth_task_sentiment_and_extract_on_the_bundled_model(tmp_path):
    """A small --n: the counts add up, every written row passed its checks, and tune sft reads it."""
    from genstack.synth.extract import complete, grounded
    from genstack.tune.data import load_sft_rows

    env = {"GENSTACK_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}

    def synth(*args):
        r = subprocess.run([sys.executable, "-m", "genstack", "synth", "task", *args, "--json"], env=env, text=True,
                           capture_output=True, timeout=600)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    out = tmp_path / "sent.jsonl"
    rep = synth("sentiment", "--n", "3", "-o", str(out))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum(rep["generated"].values()) == sum(rep["kept"].values()) + sum(rep["dropped"].values())
    assert rep["items"] == len(rows) == sum(rep["kept"].values())
    assert all(r["label"] in ("positive", "negative", "neutral") and r["messages"][-1]["content"] == r["label"] for r in rows)

    seeds, schema, out = tmp_path / "seeds.jsonl", tmp_path / "schema.json", tmp_path / "ex.jsonl"
    seeds.write_text("".join(json.dumps({"text": t}) + "\n" for t in (
        "Maria Lopez ordered 3 desk lamps for her new office.", "Please send 12 boxes of printer paper to Tom Becker.",
        "Akira Sato wants 2 standing desks delivered next week.", "Peter Olsen asked for 1 espresso machine.")))
    schema.write_text(json.dumps({"type": "object", "properties": {"customer": {"type": "string"}, "quantity": {"type": "integer"}},
                                  "required": ["customer", "quantity"]}))
    rep = synth("extract", "--schema", str(schema), "--seeds", str(seeds), "--n", "2", "-o", str(out))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rep["generated"]["extract"] == rep["kept"].get("extract", 0) + sum(rep["dropped"].values())
    assert rep["items"] == len(rows)
    for r in rows:
        assert grounded(r["fields"], r["text"]) and complete(r["fields"], r["text"], r["schema"])
        assert json.loads(r["messages"][-1]["content"]) == r["fields"] and r["model"] == "smollm2-135m-instruct"
    if rows:
        assert len(load_sft_rows(out).rows) == len(rows)
