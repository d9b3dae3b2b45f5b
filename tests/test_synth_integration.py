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
