"""The server on the shipped fakes: OpenAI wire format, errors, RAG, collections, feedback, metrics."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests._server import grounded_reply, ingest_sample, make_app

pytestmark = pytest.mark.unit

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


def chat_body(content="hi", **kw):
    return {"model": "fake", "messages": [{"role": "user", "content": content}], **kw}


@pytest.fixture
def server(tmp_path):
    app, model, settings = make_app(tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.model, client.settings = model, settings
        yield client


def sse_events(text: str) -> list:
    out = []
    for block in text.split("\n\n"):
        block = block.strip()
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -- OpenAI routes --------------------------------------------------------------------------
def test_models_lists_generators_embedders_and_rag_collections(tmp_path):
    app, _, settings = make_app(tmp_path)
    ingest_sample(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        data = c.get("/v1/models").json()["data"]
    kinds = {(m["id"], m["genstack_kind"]) for m in data}
    assert ("fake", "generator") in kinds and ("fake", "embedder") in kinds
    assert ("rag:docs", "rag") in kinds
    assert all(m["object"] == "model" for m in data)


def test_chat_completion_greedy_is_the_scripted_reply(server):
    r = server.post("/v1/chat/completions", json=chat_body(temperature=0))
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there friend.", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3


def test_streaming_chunks_add_up_and_end_with_usage_and_done(server):
    r = server.post("/v1/chat/completions", json=chat_body(temperature=0, stream=True,
                                                           stream_options={"include_usage": True}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello there friend."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert len({c["id"] for c in chunks}) == 1


def test_sampling_parameters_reach_the_model(server):
    r1 = server.post("/v1/chat/completions", json=chat_body(temperature=1.0, seed=7, top_p=0.5, top_k=5)).json()
    r2 = server.post("/v1/chat/completions", json=chat_body(temperature=1.0, seed=7, top_p=0.5, top_k=5)).json()
    assert r1["choices"][0]["message"]["content"] == r2["choices"][0]["message"]["content"]
    p = server.model.requests[-1].params
    assert (p.temperature, p.seed, p.top_p, p.top_k) == (1.0, 7, 0.5, 5)
    r = server.post("/v1/chat/completions", json=chat_body(temperature=0, stop=["there"])).json()
    assert r["choices"][0]["message"]["content"] == "Hello "
    r = server.post("/v1/chat/completions", json=chat_body(temperature=0, max_tokens=2)).json()
    assert r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 2


def test_response_format_json_schema_is_passed_and_checked(server):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert server.post("/v1/chat/completions", json=chat_body(response_format=rf)).status_code == 200
    assert server.model.requests[-1].json_schema == schema
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    r = server.post("/v1/chat/completions", json=chat_body(response_format=bad))
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format.json_schema"
    server.post("/v1/chat/completions", json=chat_body(response_format={"type": "json_object"}))
    assert server.model.requests[-1].json_schema == {"type": "object"}


@pytest.mark.parametrize("body, status, param", [
    (chat_body(model="nope"), 404, "model"),
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    (chat_body(n=2), 400, "n"),
    (chat_body(temperature=5), 400, "temperature"),
    (chat_body(max_tokens=5000), 400, "max_tokens"),
    (chat_body(max_tokens=0), 400, "max_tokens"),
    ({"model": "fake", "messages": []}, 400, "messages"),
    ({"model": "fake", "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    (chat_body(stop=[1]), 400, "stop"),
    (chat_body(tools=[{"type": "function"}]), 400, "tools[0]"),
    (chat_body(tool_choice="required"), 400, "tool_choice"),
    ({"model": "fake", "messages": [{"role": "tool", "content": "x"}], "functions": []}, 400, "functions"),
])
def test_bad_requests_get_openai_error_bodies(server, body, status, param):
    r = server.post("/v1/chat/completions", json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["param"] == param and err["message"] and err["type"]


def test_invalid_json_is_a_400(server):
    r = server.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_completions_plain_and_streaming(server):
    r = server.post("/v1/completions", json={"model": "fake", "prompt": "Once", "temperature": 0})
    body = r.json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"] == "Hello there friend."
    r = server.post("/v1/completions", json={"model": "fake", "prompt": "Once", "temperature": 0, "stream": True})
    events = sse_events(r.text)
    assert "".join(e["choices"][0]["text"] for e in events[:-1] if e["choices"]) == "Hello there friend."
    assert server.post("/v1/completions", json={"model": "fake", "prompt": [1, 2]}).status_code == 400


def test_embeddings_float_and_base64_agree(server):
    f = server.post("/v1/embeddings", json={"model": "fake", "input": ["red apple", "blue sky"]}).json()
    b = server.post("/v1/embeddings", json={"model": "fake", "input": ["red apple", "blue sky"],
                                             "encoding_format": "base64"}).json()
    assert [d["index"] for d in f["data"]] == [0, 1]
    v = np.array(f["data"][1]["embedding"], dtype=np.float32)
    w = np.frombuffer(base64.b64decode(b["data"][1]["embedding"]), dtype="<f4")
    assert np.allclose(v, w) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    assert f["usage"]["prompt_tokens"] == 4
    assert server.post("/v1/embeddings", json={"model": "nope", "input": "x"}).status_code == 404
    assert server.post("/v1/embeddings", json={"input": []}).status_code == 400
    for ids in ([[9906, 1917]], [9906, 1917]):  # what LangChain's OpenAIEmbeddings sends by default
        r = server.post("/v1/embeddings", json={"model": "fake", "input": ids})
        err = r.json()["error"]
        assert r.status_code == 400 and err["code"] == "token_ids_not_supported"
        assert "check_embedding_ctx_length=False" in err["message"]


# -- limits ---------------------------------------------------------------------------------
def test_body_over_the_limit_is_413(tmp_path):
    app, _, _ = make_app(tmp_path, max_body_bytes=2000)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/v1/chat/completions", json=chat_body("x" * 5000))
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert c.post("/v1/chat/completions", json=chat_body("short")).status_code == 200


def test_prompt_over_the_token_limit_is_400(tmp_path):
    app, _, _ = make_app(tmp_path, max_prompt_tokens=20)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/v1/chat/completions", json=chat_body("word " * 50))
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "context_length_exceeded" and "at most 20" in err["message"]
        r = c.post("/v1/chat/completions", json=chat_body("word " * 50, stream=True))
        assert r.status_code == 400  # refused before the stream starts


def test_max_tokens_cap_is_the_default_and_the_ceiling(tmp_path):
    app, model, _ = make_app(tmp_path, max_tokens_cap=64)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.post("/v1/chat/completions", json=chat_body())
        assert model.requests[-1].params.max_tokens == 64
        assert c.post("/v1/chat/completions", json=chat_body(max_tokens=65)).status_code == 400


def test_rate_limit_is_per_key_with_retry_after(tmp_path):
    app, _, _ = make_app(tmp_path, rate_limit=2, api_keys=("k1", "k2"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        h1, h2 = {"Authorization": "Bearer k1"}, {"Authorization": "Bearer k2"}
        assert c.post("/v1/chat/completions", json=chat_body()).status_code == 401
        assert c.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": "Bearer bad"}).status_code == 401
        assert [c.post("/v1/chat/completions", json=chat_body(), headers=h1).status_code for _ in range(3)] == [200, 200, 429]
        r = c.post("/v1/chat/completions", json=chat_body(), headers=h1)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert c.post("/v1/chat/completions", json=chat_body(), headers=h2).status_code == 200


def test_non_loopback_bind_needs_a_key():
    from genstack.errors import ConfigError
    from genstack.server import ServerConfig

    with pytest.raises(ConfigError, match="batch-kv must be one of unified, split"):
        ServerConfig(batch_slots=4, batch_kv="shared")
    assert ServerConfig(batch_slots=4).batch_kv == "unified"
    with pytest.raises(ConfigError, match="API key"):
        ServerConfig(host="0.0.0.0").check_bind()
    ServerConfig(host="0.0.0.0", api_keys=("k",)).check_bind()
    ServerConfig(host="::1").check_bind()


# -- RAG through the same API ---------------------------------------------------------------------
def test_rag_model_answers_with_citations(tmp_path):
    app, _, settings = make_app(tmp_path, responder=grounded_reply)
    ingest_sample(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        q = {"model": "rag:docs", "messages": [{"role": "user", "content": "What is the Brightwave kettle made of?"}]}
        body = c.post("/v1/chat/completions", json=q).json()
        text = body["choices"][0]["message"]["content"]
        assert "[1]" in text
        cited = [x for x in body["citations"] if x["cited"]]
        assert cited and cited[0]["n"] == 1 and cited[0]["text"] and "/" not in cited[0]["source"]
        assert body["genstack"]["abstained"] is False
        r = c.post("/v1/chat/completions", json={**q, "stream": True})
        events = sse_events(r.text)
        last = [e for e in events[:-1] if e["choices"]][-1]
        assert last["choices"][0]["finish_reason"] == "stop"
        assert any(x["cited"] for x in last["citations"]) and last["genstack"]["answer"] == text
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        assert "[1]" in streamed


def test_rag_stream_carries_the_quote_that_replaces_a_bare_citation(tmp_path):
    app, _, settings = make_app(tmp_path, replies=["[1]"])
    ingest_sample(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        q = {"model": "rag:docs", "messages": [{"role": "user", "content": "What is the Brightwave kettle made of?"}]}
        body = c.post("/v1/chat/completions", json=q).json()
        text = body["choices"][0]["message"]["content"]
        assert body["genstack"]["extractive"] is True and text.endswith("]") and len(text) > len("[1]")
        events = sse_events(c.post("/v1/chat/completions", json={**q, "stream": True}).text)
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        # a plain OpenAI client sees the quote, not only the model's bare "[1]"
        assert streamed == "[1]\n\n(From the sources:) " + text


def test_rag_retracts_an_unsupported_answer_and_404s_unknown_collections(tmp_path):
    app, _, settings = make_app(tmp_path, replies=["Purple elephants dance on Saturn at midnight [1]."])
    ingest_sample(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        q = {"model": "rag:docs", "messages": [{"role": "user", "content": "How much water does the kettle hold?"}]}
        body = c.post("/v1/chat/completions", json={**q, "temperature": 0}).json()
        assert body["genstack"]["abstained"] is True and body["genstack"]["reason"] == "unsupported"
        assert body["choices"][0]["message"]["content"] == "Not found in these documents."
        settled = body["genstack"]["checks"][-1]  # which check fired, and why
        assert settled["check"] == "support" and settled["settled"] and not settled["passed"]
        events = sse_events(c.post("/v1/chat/completions", json={**q, "stream": True}).text)
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        # the draft went out as it was generated; the retraction follows it in the same stream
        assert "Purple elephants" in streamed and streamed.endswith("Retracted: the sources do not support "
                                                                    "the answer above.) Not found in these documents.")
        r = c.post("/v1/chat/completions", json={"model": "rag:nope", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        r = c.post("/v1/chat/completions", json={"model": "rag:../etc", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 404


# -- collections API ---------------------------------------------------------------------------------
def _wait_job(c, job_id, timeout=30):
    import time

    t0, pause = time.time(), 0.05
    while time.time() - t0 < timeout:
        r = c.get(f"/api/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("done", "failed"):
            return job
        # back off: polls count against the server's rate limit (120 a minute), and a slow machine
        # running the ingest for many seconds must not reach it
        time.sleep(pause)
        pause = min(2 * pause, 1.0)
    raise AssertionError("ingest job did not finish")


def test_collections_create_upload_search_delete(server):
    c = server
    assert c.post("/api/collections", json={"name": "notes"}).status_code == 201
    assert c.post("/api/collections", json={"name": "notes"}).status_code == 409
    assert c.post("/api/collections", json={"name": "../x"}).status_code == 400
    files = [("files", ("../../escape.md", b"# Otters\n\nSea otters hold hands while sleeping.", "text/markdown")),
             ("files", ("two.txt", b"Basalt columns form as lava cools slowly.", "text/plain"))]
    r = c.post("/api/collections/notes/documents", files=files)
    assert r.status_code == 202, r.text
    assert r.json()["files"] == ["escape.md", "two.txt"]
    job = _wait_job(c, r.json()["job"])
    assert job["status"] == "done" and job["report"]["added"] == 2 and job["files_done"] == 2
    up = c.settings.data_dir / "uploads" / "notes"
    assert sorted(p.name for p in up.iterdir()) == ["escape.md", "two.txt"]
    assert not (c.settings.data_dir.parent / "escape.md").exists()
    hits = c.post("/api/collections/notes/search", json={"query": "otters sleeping", "k": 2}).json()["hits"]
    assert hits[0]["source"] == "escape.md" and "otters" in hits[0]["text"].lower()
    listed = {x["name"]: x for x in c.get("/api/collections").json()["collections"]}
    assert listed["notes"]["chunks"] >= 2
    assert c.delete("/api/collections/notes").status_code == 200
    assert c.post("/api/collections/notes/search", json={"query": "x"}).status_code == 404
    assert not up.exists()


def test_upload_rejects_bad_files_and_keeps_what_is_stored(tmp_path):
    app, _, settings = make_app(tmp_path, max_upload_bytes=4000)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        one = [("files", ("a.md", b"Kept text about herons.", "text/markdown"))]
        r = c.post("/api/collections/n/documents", files=one)  # no such collection: nothing is created
        assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found"
        assert c.get("/api/collections").json()["collections"] == []
        assert not (settings.data_dir / "uploads" / "n").exists()
        r = c.post("/api/collections/n/documents?create=true", files=one)
        assert _wait_job(c, r.json()["job"])["status"] == "done"
        r = c.post("/api/collections/n/documents", files=[("files", ("evil.exe", b"MZ...", "application/octet-stream"))])
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_file_type"
        r = c.post("/api/collections/n/documents", files=[("files", ("big.txt", b"x" * 10000, "text/plain"))])
        assert r.status_code == 413
        r = c.post("/api/collections/n/documents", files=[("files", ("empty.txt", b"", "text/plain"))])
        assert r.status_code == 400
        assert c.post("/api/collections/bad..name/documents", files=[("files", ("a.md", b"x", "text/markdown"))]).status_code == 400
        hits = c.post("/api/collections/n/search", json={"query": "herons"}).json()["hits"]
        assert hits and "herons" in hits[0]["text"]
        # a file that fails to ingest is reported and removed; the good one in the same upload is kept
        r = c.post("/api/collections/n/documents", files=[("files", ("broken.json", b"{nope", "application/json")),
                                                          ("files", ("b.md", b"Egrets nest in reeds.", "text/markdown"))])
        job = _wait_job(c, r.json()["job"])
        assert job["status"] == "failed" and "broken.json" in job["error"]
        assert sorted(p.name for p in (settings.data_dir / "uploads" / "n").iterdir()) == ["a.md", "b.md"]


def test_safe_filename():
    from genstack.server.errors import APIError
    from genstack.server.routes_api import safe_filename

    assert safe_filename("../../etc/passwd.md") == "passwd.md"
    assert safe_filename("C:\\Users\\me\\Report 2024.PDF") == "Report_2024.pdf"
    assert safe_filename(".hidden.txt") == "hidden.txt"
    for bad in ("noext", "script.sh", ".md"):
        with pytest.raises(APIError):
            safe_filename(bad)


# -- feedback, logs, metrics, health ---------------------------------------------------------------------
def test_feedback_is_stored_with_prompt_and_answer_and_exported(server, tmp_path, monkeypatch):
    body = server.post("/v1/chat/completions", json=chat_body("What is up?", temperature=0)).json()
    r = server.post("/api/feedback", json={"request_id": body["id"], "rating": 1})
    assert r.status_code == 201
    r = server.post("/api/feedback", json={"rating": -1, "messages": [{"role": "user", "content": "q2"}], "answer": "bad"})
    assert r.status_code == 201
    assert server.post("/api/feedback", json={"request_id": body["id"], "rating": 5}).status_code == 400
    from genstack.cli import run

    monkeypatch.setenv("GENSTACK_HOME", str(server.settings.data_dir))
    out = tmp_path / "fb.jsonl"
    assert run(["feedback", "export", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0] == {"messages": [{"role": "user", "content": "What is up?"},
                                    {"role": "assistant", "content": "Hello there friend."}], "rating": 1}
    assert rows[1]["rating"] == -1
    assert run(["feedback", "export", str(out), "--only", "up", "--format", "kto"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["label"] is True and rows[0]["completion"][0]["content"] == "Hello there friend."


def test_request_log_and_genstack_logs(server, monkeypatch, capsys):
    server.post("/v1/chat/completions", json=chat_body("log me", temperature=0))
    from genstack.cli import run

    monkeypatch.setenv("GENSTACK_HOME", str(server.settings.data_dir))
    assert run(["logs", "--json", "--limit", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["request"]["messages"][0]["content"] == "log me"
    assert rows[0]["response"] == "Hello there friend." and rows[0]["status"] == 200
    assert rows[0]["prompt"] and "log me" in rows[0]["prompt"] and rows[0]["params"]["temperature"] == 0
    assert run(["logs", "--limit", "0"]) == 2
    server.post("/v1/chat/completions", json=chat_body("a long question " * 30, temperature=0))
    monkeypatch.setenv("COLUMNS", "80")
    assert run(["logs"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 3 and all(len(ln) <= 80 for ln in lines)  # a header and one line per request
    assert "200" in lines[1] and "chat" in lines[1] and "Hello there" in lines[1]


def test_request_log_can_be_switched_off(tmp_path):
    app, _, settings = make_app(tmp_path, log_requests=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.post("/v1/chat/completions", json=chat_body())
    assert not (settings.data_dir / "server.db").exists()


def test_metrics_count_requests_ttft_and_queue(server):
    server.post("/v1/chat/completions", json=chat_body(temperature=0))
    server.post("/v1/chat/completions", json=chat_body(model="nope"))
    text = server.get("/metrics").text
    assert 'genstack_requests_total{method="POST",route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'genstack_requests_total{method="POST",route="/v1/chat/completions",status="404"} 1.0' in text
    assert 'genstack_time_to_first_token_seconds_count{model="fake"} 1.0' in text
    assert "genstack_queue_depth 0.0" in text
    assert 'genstack_tokens_total{kind="completion",model="fake"} 3.0' in text


def test_healthz_is_liveness_and_costs_no_generation(server):
    before = len(server.model.requests)
    for _ in range(50):
        r = server.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(server.model.requests) == before


def test_readyz_generates_one_token_at_most_once_per_ttl(server):
    before = len(server.model.requests)
    first = server.get("/readyz")
    assert first.status_code == 200 and first.json()["status"] == "ok" and first.json()["tokens"] == 1
    assert server.model.requests[-1].params.max_tokens == 1
    for _ in range(30):  # rapid calls reuse the last result
        assert server.get("/readyz").json()["cached_s"] >= 0
    assert len(server.model.requests) == before + 1


def test_readyz_fails_when_the_model_cannot_generate(tmp_path):
    from genstack.models.fake import FakeChatModel

    app, _, _ = make_app(tmp_path)
    app.state.gs.engine._models["fake"] = FakeChatModel(responder=lambda r: 1 / 0)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "error"
        assert c.get("/healthz").status_code == 200  # alive, not ready


def test_metrics_need_an_unrestricted_key_when_keys_are_set(tmp_path):
    app, _, _ = make_app(tmp_path, api_keys=("admin", "guest:kb"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer guest"}).status_code == 403
        r = c.get("/metrics", headers={"Authorization": "Bearer admin"})
        assert r.status_code == 200 and "genstack_requests_total" in r.text
    app, _, _ = make_app(tmp_path / "open")
    with TestClient(app, base_url="http://127.0.0.1") as c:  # no keys: loopback-only server, metrics open as before
        assert c.get("/metrics").status_code == 200


def test_access_log_is_one_json_line_per_request(server, caplog):
    server.app.state.gs  # noqa: B018
    from genstack.server.metrics import ObservabilityMiddleware  # noqa: F401

    caplog.set_level("INFO", logger="genstack.access")
    app, _, _ = make_app(server.settings.data_dir.parent / "other", access_log=True)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.get("/v1/models")
    lines = [json.loads(rec.message) for rec in caplog.records if rec.name == "genstack.access"]
    assert lines[-1]["route"] == "/v1/models" and lines[-1]["status"] == 200
    assert lines[-1]["request_id"] == r.headers["x-request-id"]


def test_ui_is_served_with_a_strict_content_security_policy(server):
    r = server.get("/ui/")
    assert r.status_code == 200 and 'id="messages"' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "img-src 'self' data:" in csp
    assert "<script>" not in r.text  # no inline script
    assert server.get("/ui/app.js").status_code == 200
    assert server.get("/").status_code == 200  # redirected to the UI


def test_batching_raises_concurrency_and_lifts_the_per_model_lock(tmp_path):
    from genstack.server import ServerConfig

    assert ServerConfig(batch_slots=8).max_concurrency == 8
    app, model, _ = make_app(tmp_path, batch_slots=4)
    engine = app.state.gs.engine
    assert engine.lock_for("fake") is engine.lock_for("fake") and hasattr(engine.lock_for("fake"), "acquire")
    plain = engine.lock_for("fake")
    model.supports_batching = model.batching = True  # a model that batches requests itself is not serialised
    assert engine.lock_for("fake") is not plain and engine.lock_for("fake").acquire() is True


def test_text_that_queues_up_is_sent_as_one_piece_and_nothing_is_lost(tmp_path):
    import asyncio
    import threading

    app, _, _ = make_app(tmp_path)
    engine = app.state.gs.engine
    produced = threading.Event()

    def make():
        for i in range(50):
            yield f"t{i} "
        produced.set()
        yield 42  # a final object is never merged into text

    async def consume():
        out = []
        agen = engine.stream(make)
        async for item in agen:
            if not out:  # a slow consumer: the producer finishes while the first piece is handled
                await asyncio.get_running_loop().run_in_executor(None, produced.wait, 10)
            out.append(item)
        return out

    out = asyncio.run(consume())
    assert out[-1] == 42
    texts = out[:-1]
    assert all(isinstance(t, str) for t in texts)
    assert "".join(texts) == "".join(f"t{i} " for i in range(50))
    assert len(texts) <= 3  # 50 pieces arrived as (at most) a handful of events


def test_metrics_show_the_batch_scheduler_counters(tmp_path):
    from types import SimpleNamespace

    app, model, _ = make_app(tmp_path)
    model.supports_batching = True
    model.batcher = SimpleNamespace(steps=7, decode_seconds=1.5, step_tokens=90, prompt_tokens=60, reused_tokens=40)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        text = c.get("/metrics").text
    assert 'genstack_batch_steps_total{model="fake"} 7.0' in text
    assert 'genstack_batch_decode_seconds_total{model="fake"} 1.5' in text
    assert 'genstack_batch_tokens_total{kind="reused",model="fake"} 40.0' in text
    assert 'genstack_batch_tokens_total{kind="prompt",model="fake"} 60.0' in text


def test_finished_ingest_jobs_are_bounded_and_running_ones_kept(tmp_path):
    app, _, _ = make_app(tmp_path)
    with TestClient(app, base_url="http://127.0.0.1"):
        gs = app.state.gs
        gs.MAX_FINISHED_JOBS = 3
        gs.add_job({"id": "running", "status": "running"})
        for i in range(6):
            gs.add_job({"id": f"done{i}", "status": "done" if i % 2 else "failed"})
        assert "running" in gs.jobs
        finished = [k for k, j in gs.jobs.items() if j["status"] != "running"]
        assert finished == ["done3", "done4", "done5"]  # the newest three
