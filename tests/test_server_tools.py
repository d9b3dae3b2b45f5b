"""/v1/chat/completions with tools, on the scripted fake (the real model and clients: test_tools_integration)."""

from __future__ import annotations

import json

import pytest

from tests._server import make_app
from tests._tools import script

pytestmark = pytest.mark.unit

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def client(tmp_path, *turns):
    app, model, settings = make_app(tmp_path, responder=script(*turns))
    c = TestClient(app, base_url="http://127.0.0.1")
    c.model = model
    return c


def body(**kw):
    return {"model": "fake", "messages": [{"role": "user", "content": "Weather in Lisbon?"}], "tools": [WEATHER],
            "temperature": 0, **kw}


def events(text):
    return [json.loads(b[6:]) for b in text.split("\n\n") if b.startswith("data: {")]


def test_a_call_comes_back_in_openai_format(tmp_path):
    with client(tmp_path, {"name": "get_weather", "arguments": {"city": "Lisbon"}}) as c:
        r = c.post("/v1/chat/completions", json=body())
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}


def test_a_streamed_call_is_sent_as_tool_calls_deltas(tmp_path):
    with client(tmp_path, [{"name": "get_weather", "arguments": {"city": "Lisbon"}},
                           {"name": "get_weather", "arguments": {"city": "Porto"}}]) as c:
        r = c.post("/v1/chat/completions", json=body(stream=True))
    ev = events(r.text)
    deltas = [d for e in ev for d in e["choices"][0]["delta"].get("tool_calls", [])]
    assert [d["index"] for d in deltas] == [0, 0, 1, 1]
    assert deltas[0]["function"]["name"] == "get_weather" and deltas[0]["function"]["arguments"] == ""
    assert json.loads(deltas[1]["function"]["arguments"]) == {"city": "Lisbon"}
    assert json.loads(deltas[3]["function"]["arguments"]) == {"city": "Porto"}
    assert ev[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any(e["choices"][0]["delta"].get("content") for e in ev)  # no piece of the call leaks as text


def test_the_tool_result_turn_is_answered(tmp_path):
    with client(tmp_path, "It is 21 C in Lisbon.") as c:
        msgs = [{"role": "user", "content": "Weather in Lisbon?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                      "arguments": '{"city": "Lisbon"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "21 C, sunny"}]
        r = c.post("/v1/chat/completions", json=body(messages=msgs))
        seen = c.model.requests[-1].messages
    assert r.json()["choices"][0]["message"]["content"] == "It is 21 C in Lisbon."
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert "<tool_response>" in seen[-1].content and "21 C, sunny" in seen[-1].content
    assert '"get_weather"' in seen[-2].content and seen[-2].role == "assistant"


def test_tool_choice_none_answers_and_bad_tools_are_400(tmp_path):
    with client(tmp_path, "Plain answer.") as c:
        r = c.post("/v1/chat/completions", json=body(tool_choice="none"))
        assert r.json()["choices"][0]["message"]["content"] == "Plain answer."
        for bad, param in ((body(tools=[{"type": "function", "function": {"name": "x y"}}]), "tools[0]"),
                           (body(tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice"),
                           (body(parallel_tool_calls="yes"), "parallel_tool_calls"),
                           (body(response_format={"type": "json_object"}), "response_format"),
                           (body(model="rag:docs"), "tools")):
            r = c.post("/v1/chat/completions", json=bad)
            assert r.status_code == 400 and r.json()["error"]["param"] == param, (param, r.text)
