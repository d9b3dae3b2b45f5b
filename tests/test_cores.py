"""One process that embeds and generates: torch embeds on one thread while llama.cpp is loaded."""

import json
import os
import subprocess
import sys
import types

import pytest

from genstack import _cores


class StubTorch(types.ModuleType):
    def __init__(self, threads):
        super().__init__("torch")
        self.threads, self.calls = threads, []

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, n):
        self.calls.append(n)
        self.threads = n


@pytest.fixture
def stub_torch(monkeypatch):
    torch = StubTorch(threads=len(os.sched_getaffinity(0)))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr(_cores, "_generators", 0)
    return torch


@pytest.mark.unit
def test_torch_gets_one_thread_while_a_generator_is_loaded_and_every_core_after(stub_torch):
    cores = len(os.sched_getaffinity(0))
    assert _cores.embedding_threads(None) is None  # nothing generating: torch's default
    _cores.apply_torch_threads(None)
    assert stub_torch.calls == []  # already at every core: nothing to change
    _cores.generation_loaded()
    assert stub_torch.threads == 1 and _cores.embedding_threads(None) == 1
    _cores.generation_loaded()  # a second model
    _cores.generation_unloaded()
    _cores.apply_torch_threads(None)
    assert stub_torch.threads == 1  # one model is still loaded
    _cores.generation_unloaded()
    _cores.apply_torch_threads(None)
    assert stub_torch.threads == cores
    _cores.generation_unloaded()  # an extra unload never goes below zero
    assert _cores.embedding_threads(None) is None


@pytest.mark.unit
def test_an_explicit_thread_count_is_kept_beside_a_generator(stub_torch):
    _cores.generation_loaded()
    assert _cores.embedding_threads(3) == 3
    _cores.apply_torch_threads(3)
    assert stub_torch.threads == 3


@pytest.mark.unit
def test_without_torch_imported_nothing_is_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(_cores, "_generators", 1)
    _cores.apply_torch_threads(None)
    assert "torch" not in sys.modules


SCRIPT = """
import json, os, torch
from genstack import get_model
from genstack.embeddings import get_embedder
e = get_embedder("minilm-l6-v2")
seen = []
e.embed(["before any model"]); seen.append(torch.get_num_threads())
m = get_model("smollm2-135m-instruct", n_ctx=512)
m.warm_up()
e.embed(["beside a loaded model"]); seen.append(torch.get_num_threads())
m.close()
e.embed(["after the model is closed"]); seen.append(torch.get_num_threads())
print(json.dumps(seen))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_real_embedder_runs_on_one_thread_beside_llama_cpp(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs at least 2 cores to tell one thread from all")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "GENSTACK_DEBUG": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    cores = len(os.sched_getaffinity(0))
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [cores, 1, cores]


@pytest.mark.unit
def test_store_scans_run_blas_on_one_thread_and_give_the_threads_back(monkeypatch, tmp_path):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np

    import genstack.stores.sqlite as sqlite_mod
    from genstack.stores.base import Record

    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("numpy has no BLAS that threadpoolctl can see")
    inside = []

    class Spy:  # the real context, recording the BLAS threads inside it
        def __enter__(self):
            self.ctx = _cores.blas_one_thread()
            self.ctx.__enter__()
            inside.append([c.num_threads for c in blas.lib_controllers])

        def __exit__(self, *exc):
            return self.ctx.__exit__(*exc)

    monkeypatch.setattr(sqlite_mod, "blas_one_thread", Spy)
    with blas.limit(limits=2):
        store = sqlite_mod.SQLiteStore(tmp_path / "s.db", dim=4, embedder="fake:4")
        eye = np.eye(4, dtype=np.float32)
        store.upsert([Record(f"r{i}", "s", f"text {i}", eye[i % 4], {}, f"h{i}") for i in range(8)])
        hits = store.query(eye[1], 2)
        assert {h.id for h in hits} == {"r1", "r5"} and hits[0].score == pytest.approx(1.0)
        assert inside == [[1] * len(blas.lib_controllers)]  # the scan ran on one BLAS thread
        assert [c.num_threads for c in blas.lib_controllers] == [2] * len(blas.lib_controllers)  # and gave them back
        store.close()
