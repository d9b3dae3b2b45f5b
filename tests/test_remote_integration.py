"""The remote backend against a real OpenAI-compatible server started from the project's files:
a second `genstack serve` process on the bundled GGUF."""

import json
import os
import subprocess
import sys

import pytest

from genstack import SamplingParams

from ._server import serve_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Q = [{"role": "user", "content": "Name three colours of the rainbow."}]


def local_greedy(prompt: str, *, raw: bool = False, max_tokens: int = 24) -> dict:
    """The bundled model in a fresh process: the reference a remote server of the same GGUF must equal.
    (A model that served other prompts first may reuse part of its KV cache, and a 135M model's greedy
    choice can flip on that float rounding, so the in-process fixture is not the reference.)"""
    p = subprocess.run([sys.executable, "-m", "genstack", "generate", prompt, "--greedy", "--max-tokens", str(max_tokens),
                        "--n-ctx", "2048", "--json", *(["--raw"] if raw else ["--system", ""])],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    home = tmp_path_factory.mktemp("remote-home")
    # no guard in the way: the remote text must be the model's own
    with serve_process(home, "--rate-limit", "0", "--guard", "off", "--no-canary", "--redact", "off") as url:
        yield url, home


def test_greedy_remote_text_equals_local_on_the_same_gguf(remote):
    from genstack import get_model

    url, _ = remote
    m = get_model(f"openai:smollm2-135m-instruct@{url}/v1")
    got = m.chat(Q, greedy=True, max_tokens=24)
    want = local_greedy(Q[0]["content"])
    assert got.text == want["text"] and got.text
    assert got.finish_reason == want["finish_reason"]
    assert got.usage.completion_tokens == want["usage"]["completion_tokens"]
    pieces = list(m.stream(messages=Q, greedy=True, max_tokens=24))
    assert len(pieces) > 1 and "".join(pieces) == want["text"]  # streamed, not one lump


def test_ask_over_a_local_collection_with_a_remote_model(remote, tmp_path):
    from ._server import SAMPLE

    url, _ = remote
    env = {**os.environ, "GENSTACK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "genstack", "ingest", str(SAMPLE), "-c", "docs"], env=env, check=True,
                   capture_output=True)
    p = subprocess.run([sys.executable, "-m", "genstack", "ask", "What is the capacity of the Brewmaster K7 kettle?",
                        "-c", "docs", "--model", f"openai:smollm2-135m-instruct@{url}/v1", "--json"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert not out["abstained"] and "1.7" in out["answer"] and out["cited"]


def test_scores_through_genstack_serve_equal_the_local_models(remote, smol, tmp_path):
    """echo + logprobs on /v1/completions and /apply-template: label scores, multiple-choice
    benchmarks and label tasks give the local model's figures through a server of the same GGUF."""
    from genstack import get_model
    from genstack.evaluation.bench.common import DATA_DIR
    from genstack.generation import Message

    url, _ = remote
    spec = f"openai:smollm2-135m-instruct@{url}/v1"
    m = get_model(spec)
    prompt = "Question: What do bees make?\nAnswer:"
    conts = [" honey", " a lot of very sweet golden honey", " bricks"]
    far, near = m.loglikelihood(prompt, conts), smol.loglikelihood(prompt, conts)
    assert [lp for lp, _ in far] == pytest.approx([lp for lp, _ in near], abs=1e-3)
    assert [g for _, g in far] == [g for _, g in near]
    msgs = [Message("system", "Be brief."), Message("user", "Hi")]
    assert m.render_chat(msgs) == smol.render_chat(msgs)  # the server's own chat template

    env = {**os.environ, "GENSTACK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "genstack", *args], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    task = ("task", "classify", "The GPU renders frames faster", "--labels", "sports,technology,cooking", "--method", "llm")
    assert cli(*task, "--model", spec) == cli(*task)  # label and probability
    if not (DATA_DIR / "arc_easy.jsonl").is_file():
        pytest.skip(f"shared evaluation data not found at {DATA_DIR}")
    bench = ("eval", "bench", "arc_easy", "--limit", "10", "--json")
    far, near = json.loads(cli(*bench, "--model", spec))[0], json.loads(cli(*bench))[0]
    assert far["examples"] == near["examples"] == 10 and far["metrics"] == near["metrics"]


def test_synth_writes_with_a_remote_model(remote, tmp_path):
    """genstack synth qa and synth task with --model openai:…: the remote model writes (and, for
    extraction, extracts), the local checks decide, and each row names the remote model."""
    from ._server import SAMPLE

    url, _ = remote
    spec = f"openai:smollm2-135m-instruct@{url}/v1"
    env = {**os.environ, "GENSTACK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "genstack", *args], env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    subprocess.run([sys.executable, "-m", "genstack", "ingest", str(SAMPLE), "-c", "docs"], env=env, check=True,
                   capture_output=True)
    qa = cli("synth", "qa", "-c", "docs", "--n", "2", "--kinds", "factoid", "--model", spec, "-o", str(tmp_path / "qa.jsonl"),
             "--json")
    rows = [json.loads(x) for x in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert qa["model"] == spec and sum(qa["generated"].values()) >= 2 and qa["items"] == len(rows) >= 1
    assert all(r["model"] == spec and r["question"].endswith("?") for r in rows)

    seeds, schema = tmp_path / "seeds.jsonl", tmp_path / "schema.json"
    seeds.write_text("".join(json.dumps({"text": t}) + "\n" for t in (
        "Maria Lopez ordered 3 desk lamps for her new office.", "Please send 12 boxes of paper to Tom Becker.",
        "Akira Sato wants 2 standing desks delivered next week.")))
    schema.write_text(json.dumps({"type": "object", "properties": {"customer": {"type": "string"}, "quantity": {"type": "integer"}},
                                  "required": ["customer", "quantity"]}))
    ex = cli("synth", "task", "extract", "--schema", str(schema), "--seeds", str(seeds), "--n", "1", "--model", spec,
             "-o", str(tmp_path / "ex.jsonl"), "--json")
    assert ex["model"] == spec and ex["generated"]["extract"] >= 1
    from genstack.synth.extract import complete, grounded

    for r in map(json.loads, (tmp_path / "ex.jsonl").read_text().splitlines()):
        assert r["model"] == spec and grounded(r["fields"], r["text"]) and complete(r["fields"], r["text"], r["schema"])


def test_tools_go_natively_to_a_remote_genstack_serve(remote, tmp_path):
    """A remote model passes tools to the server's own function calling (genstack serve's, under its
    grammar), and genstack agent runs a tool loop on it."""
    from genstack import get_model
    from genstack.agents.calling import Function, respond

    url, _ = remote
    spec = f"openai:smollm2-135m-instruct@{url}/v1"
    fn = Function("get_weather", "The weather in a city", {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]})
    m = get_model(spec)
    *_, turn = respond(m, [{"role": "user", "content": "What is the weather in Oslo?"}], [fn], tool_choice="required",
                       params=SamplingParams(greedy=True, max_tokens=64))
    assert [c.name for c in turn.calls] == ["get_weather"] and isinstance(turn.calls[0].arguments["city"], str)
    assert turn.calls[0].id.startswith("call_") and '"tools"' in turn.prompt
    env = {**os.environ, "GENSTACK_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "genstack", "agent", "What is 17 times 23?", "--tools", "calculator",
                        "--final-answer", "--max-steps", "1", "--model", spec, "--json"], env=env, capture_output=True,
                       text=True, timeout=300)
    out = json.loads(p.stdout)
    step = out["steps"][0]
    # final-answer mode: the first turn is a call, of the calculator (run here) or of final_answer (the answer)
    assert [c["function"]["name"] for c in step["calls"]] == ["calculator"] or (out["stopped"] == "answer" and out["answer"])
    assert all(r["status"] in ("ok", "error") for r in step["results"]), p.stderr


def test_an_unreachable_server_is_one_line_and_exit_1(tmp_path):
    from ._server import free_port

    env = {**os.environ, "GENSTACK_HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "genstack", "generate", "hi", "--model",
                        f"openai:m@http://127.0.0.1:{free_port()}/v1"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 1 and p.stderr.startswith("error: ") and p.stderr.count("\n") == 1
    assert "no answer after 3 attempts" in p.stderr


def test_remote_embeddings_equal_the_local_embedder_and_collections_remember_them(remote, tmp_path):
    import numpy as np

    from genstack import load_settings
    from genstack.embeddings import get_embedder
    from genstack.errors import InvalidParameter
    from genstack.ingestion import ingest
    from genstack.retrieval import Retriever

    from ._server import SAMPLE

    url, _ = remote
    spec = f"openai:minilm-l6-v2@{url}/v1"
    texts = ["The kettle holds 1.7 litres.", "Bees make honey in hives.", "A ferry leaves at dawn."]
    far = get_embedder(spec).embed(texts)
    near = get_embedder("minilm-l6-v2").embed(texts)
    assert far.shape == near.shape and float(np.min(np.sum(far * near, axis=1))) > 0.9999
    settings = load_settings(data_dir=tmp_path)
    report = ingest([SAMPLE], "remote-kb", settings=settings, embedder=spec)
    assert report.ok and report.chunks > 10
    hits = Retriever("remote-kb", settings).search("How much water does the kettle hold?", k=3, mode="dense")
    assert "brewmaster" in hits[0].source
    with pytest.raises(InvalidParameter, match="was built with embedder"):
        Retriever("remote-kb", settings, embedder=get_embedder("minilm-l6-v2"))


def test_genstack_serve_proxies_a_remote_model_for_plain_and_rag_chat(remote, tmp_path):
    """A second server in front: --model openai:…@back; chat goes through to the back server,
    concurrently (a remote model needs no lock), and rag:docs answers with it as the generator."""
    import threading

    import httpx

    url, _ = remote
    spec = f"openai:smollm2-135m-instruct@{url}/v1"
    with serve_process(tmp_path, "--rate-limit", "0", "--model", spec, "--concurrency", "4") as front:
        statuses = []

        def one():
            r = httpx.post(front + "/v1/chat/completions", timeout=300,
                           json={"model": spec, "messages": Q, "temperature": 0, "max_tokens": 12})
            statuses.append((r.status_code, r.json()["choices"][0]["message"]["content"]))

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [s for s, _ in statuses] == [200] * 4 and all(text for _, text in statuses)
        r = httpx.post(front + "/v1/chat/completions", timeout=300, json={
            "model": "rag:docs", "generator": spec, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capacity of the Brewmaster K7 kettle?"}]})
        body = r.json()
        assert r.status_code == 200 and "1.7" in body["choices"][0]["message"]["content"], body


@pytest.fixture(scope="module")
def llama_server(smol, tmp_path_factory):
    """llama-cpp-python's own OpenAI server (the [llamacpp-server] extra) on the exact file the local model loads."""
    pytest.importorskip("llama_cpp.server.app", reason="the llamacpp-server extra is not installed")
    import time
    import urllib.request

    from ._server import free_port

    port = free_port()
    log = open(tmp_path_factory.mktemp("llama-server") / "log", "w")
    used = smol.settings_used
    threads, batch_threads = used["n_threads"], used["n_threads_batch"]
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smol.path), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--flash_attn", "true",
                             "--n_threads", str(threads), "--n_threads_batch", str(batch_threads),
                             "--model_alias", "smol"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("llama_cpp.server did not start")
            time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_llama_cpp_server_greedy_text_equals_local(llama_server):
    from genstack import get_model

    m = get_model(f"openai:smol@{llama_server}/v1")
    for q in (Q[0]["content"], "What is the capital of France?"):
        got = m.chat([{"role": "user", "content": q}], greedy=True, max_tokens=24)
        want = local_greedy(q)
        assert got.text == want["text"] and got.text, (got.text, want["text"])
    raw = m.generate("Once upon a time", greedy=True, max_tokens=12)  # /v1/completions
    assert raw.text == local_greedy("Once upon a time", raw=True, max_tokens=12)["text"]


def test_llama_cpp_servers_shifted_logprobs_are_refused_not_believed(llama_server):
    """llama-cpp-python 0.3.36's server returns echoed token_logprobs one token out of step with its own
    top_logprobs; scores from it would be wrong (ARC-Easy acc 0.2 where the model gets 0.8), so the
    remote model refuses them with one line."""
    from genstack import get_model
    from genstack.models.remote import RemoteError

    m = get_model(f"openai:smol@{llama_server}/v1")
    with pytest.raises(RemoteError, match="one token out of step") as e:
        m.loglikelihood("Question: What is the capital of France?\nAnswer:", [" Paris"])
    assert "\n" not in str(e.value)
