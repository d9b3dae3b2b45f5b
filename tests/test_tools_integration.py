"""Tool calling on the real bundled model: the live `genstack serve` process through the official OpenAI
client and LangChain's bind_tools, and `genstack agent` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jsonschema import validate

pytestmark = pytest.mark.integration

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the current time in a time zone",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}}}
ASK = [{"role": "user", "content": "What is the weather like in Lisbon today?"}]


@pytest.fixture(scope="module")
def client(live_server):
    from openai import OpenAI

    return OpenAI(base_url=live_server + "/v1", api_key="none", timeout=120)


def _valid(call, tools):
    schema = next(t["function"]["parameters"] for t in tools if t["function"]["name"] == call.function.name)
    validate(json.loads(call.function.arguments), schema)


def test_required_calls_parse_and_validate_with_the_official_client(client):
    for tools in ([WEATHER], [WEATHER, TIME]):
        r = client.chat.completions.create(model="smollm2-135m-instruct", messages=ASK, tools=tools,
                                           tool_choice="required", temperature=0, max_tokens=128)
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
        for call in choice.message.tool_calls:
            _valid(call, tools)


def test_a_named_choice_and_a_streamed_auto_turn(client):
    r = client.chat.completions.create(model="smollm2-135m-instruct", messages=ASK, tools=[WEATHER, TIME],
                                       tool_choice={"type": "function", "function": {"name": "get_time"}},
                                       temperature=0, max_tokens=128)
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_time"]
    stream = client.chat.completions.create(model="smollm2-135m-instruct", messages=ASK, tools=[WEATHER],
                                            temperature=0, max_tokens=128, stream=True)
    text, calls, finish = "", {}, None
    for ev in stream:
        if not ev.choices:
            continue
        d = ev.choices[0].delta
        text += d.content or ""
        for tc in d.tool_calls or []:
            slot = calls.setdefault(tc.index, {"name": "", "arguments": ""})
            slot["name"] += (tc.function.name or "") if tc.function else ""
            slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
        finish = ev.choices[0].finish_reason or finish
    # the model decides: either an answer or calls, never both, and any call is valid
    assert finish in ("tool_calls", "stop", "length")
    if finish == "tool_calls":
        assert calls and not text
        for c in calls.values():
            assert c["name"] == "get_weather"
            validate(json.loads(c["arguments"]), WEATHER["function"]["parameters"])
    else:
        assert text and not calls


def test_the_tool_result_is_read_on_the_next_turn(client):
    msgs = ASK + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "23 degrees celsius and sunny"}]
    r = client.chat.completions.create(model="smollm2-135m-instruct", messages=msgs, tools=[WEATHER],
                                       tool_choice="none", temperature=0, max_tokens=64)
    assert r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.content


def test_langchain_bind_tools(live_server):
    lc = pytest.importorskip("langchain_openai")
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "sunny"

    llm = lc.ChatOpenAI(base_url=live_server + "/v1", api_key="none", model="smollm2-135m-instruct",
                        temperature=0, max_tokens=128)
    msg = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Lisbon?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather"
    assert isinstance(msg.tool_calls[0]["args"].get("city"), str)


def test_genstack_agent_on_the_bundled_model_records_valid_steps(tmp_path):
    env = {**os.environ, "GENSTACK_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-m", "genstack", "agent", "What is 17 times 23?", "--tools", "calculator",
                        "--max-steps", "3", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 2), r.stderr
    run = json.loads(r.stdout)
    assert run["stopped"] in ("answer", "max_steps") and run["steps"]
    for step in run["steps"]:
        for res in step["results"]:  # the grammar: only the calculator, with a string expression
            assert res["name"] == "calculator" and isinstance(res["arguments"]["expression"], str)
            assert res["status"] in ("ok", "error")
    logs = subprocess.run([sys.executable, "-m", "genstack", "logs", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    rows = json.loads(logs.stdout)
    assert len([x for x in rows if x["route"] == "agent"]) == len(run["steps"])
