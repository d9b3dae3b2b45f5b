"""Limits that need a real HTTP server: queue full, timeouts and client disconnects (fakes, uvicorn in a thread)."""

from __future__ import annotations

import threading
import time

import pytest

from tests._server import LiveServer, make_app

pytestmark = pytest.mark.unit
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

LONG = " ".join(f"w{i}" for i in range(200))


def body(**kw):
    return {"model": "fake", "messages": [{"role": "user", "content": "go"}], "temperature": 0, **kw}


def test_queue_full_is_503_with_retry_after(tmp_path):
    app, model, _ = make_app(tmp_path, replies=[LONG], delay=0.01, max_concurrency=1, max_queue=1, rate_limit=0)
    with LiveServer(app) as srv:
        results = []

        def call():
            results.append(httpx.post(srv.url + "/v1/chat/completions", json=body(max_tokens=40), timeout=30).status_code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.1)  # one runs, one waits in the queue
        r = httpx.post(srv.url + "/v1/chat/completions", json=body(max_tokens=5), timeout=30)
        for t in threads:
            t.join()
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "server_overloaded"
        assert sorted(results) == [200, 200]
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'genstack_requests_rejected_total{reason="queue_full"} 1.0' in metrics


def test_timeout_frees_the_slot(tmp_path):
    app, model, _ = make_app(tmp_path, replies=[LONG], delay=0.02, max_concurrency=1, request_timeout=0.5, rate_limit=0)
    with LiveServer(app) as srv:
        t0 = time.time()
        r = httpx.post(srv.url + "/v1/chat/completions", json=body(max_tokens=200), timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        assert time.time() - t0 < 2
        time.sleep(0.2)
        produced = model.produced
        assert produced < 60  # stopped near the deadline, not after all 200 tokens
        time.sleep(0.3)
        assert model.produced == produced  # and it stays stopped
        r = httpx.post(srv.url + "/v1/chat/completions", json=body(max_tokens=3), timeout=30)
        assert r.status_code == 200  # the slot is free again


def test_streaming_timeout_ends_the_stream_with_an_error_event(tmp_path):
    app, model, _ = make_app(tmp_path, replies=[LONG], delay=0.02, request_timeout=0.4, rate_limit=0)
    with LiveServer(app) as srv:
        r = httpx.post(srv.url + "/v1/chat/completions", json=body(max_tokens=200, stream=True), timeout=30)
        assert r.status_code == 200
        assert '"code":"timeout"' in r.text and r.text.rstrip().endswith("data: [DONE]")


def test_client_disconnect_stops_generation(tmp_path):
    app, model, _ = make_app(tmp_path, replies=[LONG], delay=0.02, rate_limit=0)
    with LiveServer(app) as srv:
        with httpx.Client(timeout=30) as client:
            with client.stream("POST", srv.url + "/v1/chat/completions", json=body(max_tokens=200, stream=True)) as r:
                lines = r.iter_lines()
                got = 0
                for line in lines:
                    if line.startswith("data: ") and '"content":"' in line:
                        got += 1
                    if got >= 3:
                        break
            # leaving the block closes the connection mid-stream
        deadline = time.time() + 3
        while time.time() < deadline and app.state.gs.engine.cancelled == 0:
            time.sleep(0.05)
        assert app.state.gs.engine.cancelled == 1
        time.sleep(0.2)
        produced = model.produced
        time.sleep(0.3)
        assert model.produced == produced < 100  # generation stopped, far short of 200 tokens
        metrics = httpx.get(srv.url + "/metrics").text
        assert "genstack_generations_cancelled_total 1.0" in metrics
        assert httpx.post(srv.url + "/v1/chat/completions", json=body(max_tokens=2), timeout=10).status_code == 200


def test_streamed_chunks_arrive_while_generating(tmp_path):
    app, model, _ = make_app(tmp_path, replies=[" ".join(["tok"] * 20)], delay=0.05, rate_limit=0)
    with LiveServer(app) as srv:
        stamps, toks = [], 0
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body(stream=True), timeout=30) as r:
            for line in r.iter_lines():
                if '"content":"tok' in line or '"content":" tok' in line:
                    stamps.append(time.perf_counter())
                    toks += line.count("tok")
        # every token arrives; the guard's held-back last word and the flush may share the final event
        assert toks == 20 and len(stamps) >= 19
        assert stamps[-1] - stamps[0] > 0.5  # spread over the generation, not one burst at the end
