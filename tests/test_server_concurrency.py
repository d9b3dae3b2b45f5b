"""8 concurrent rag: requests through a real `genstack serve`, with and without --batch 8: no request
ever sees another's history or decoding parameters (read from the server's own request log).

8 requests rather than 16: each is a condense step and a grounded answer on the real model, and 16 took
over two minutes per case while 8 already keep every batch slot busy with different histories."""

import json
import sqlite3
import threading

import httpx
import pytest

from ._server import serve_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N = 8


def marker(i: int) -> str:
    return f"zq{i:02d}x"


def body(i: int) -> dict:
    return {
        "model": "rag:docs",
        "messages": [
            {"role": "user", "content": f"Tell me about the Saltmere Maritime Museum. My code word is {marker(i)}."},
            {"role": "assistant", "content": f"The museum is in Saltmere, noted {marker(i)} [1]."},
            {"role": "user", "content": "How much is an adult ticket to the Saltmere Maritime Museum?"},
        ],
        "temperature": round(0.05 + i / 50, 2),
        "max_tokens": 16 + i,
        "seed": 1000 + i,
        "stream": i % 2 == 0,
    }


@pytest.mark.parametrize("batch", [[], ["--batch", str(N)]], ids=["one-at-a-time", "batched"])
def test_no_request_sees_another_requests_history_or_parameters(tmp_path, batch):
    args = ["--rate-limit", "0", "--queue", "64", "--timeout", "600", *batch]
    with serve_process(tmp_path, *args) as url:
        errors, statuses = [], {}

        def one(i):
            try:
                with httpx.Client(timeout=600) as c:
                    r = c.post(url + "/v1/chat/completions", json=body(i))
                    statuses[i] = r.status_code
                    assert r.status_code == 200, r.text[:300]
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(f"{i}: {exc}")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert statuses == {i: 200 for i in range(N)}
    db = sqlite3.connect(tmp_path / "server.db")
    rows = db.execute("SELECT request, prompt, params FROM requests WHERE route = '/v1/chat/completions'").fetchall()
    assert len(rows) == N
    seen = set()
    for request, prompt, params in rows:
        req, params = json.loads(request), json.loads(params)
        i = next(i for i in range(N) if marker(i) in req["messages"][0]["content"])
        seen.add(i)
        assert prompt and marker(i) in prompt, "the request's own history is in its prompt"
        others = [marker(j) for j in range(N) if j != i and marker(j) in prompt]
        assert not others, f"request {i} saw the history of {others}"
        assert params["temperature"] == pytest.approx(body(i)["temperature"])
        assert params["max_tokens"] == body(i)["max_tokens"] and params["seed"] == body(i)["seed"]
        assert not params["greedy"]
    assert seen == set(range(N))
