"""The OpenAI-compatible remote backend on recorded responses (the real servers are in test_remote_integration)."""

import json

import httpx
import pytest

from genstack import SamplingParams, get_model
from genstack.errors import InvalidParameter
from genstack.models.remote import OpenAIModel, RemoteError

pytestmark = pytest.mark.unit


def sse(*events) -> bytes:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"


CHAT = sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]},
           {"choices": [{"delta": {"content": "Paris"}}]},
           {"choices": [{"delta": {"content": " it is."}, "finish_reason": "length"}]},
           {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}})


def model(handler, **kw):
    seen = []

    def record(request):
        seen.append(request)
        return handler(request, len(seen))

    m = OpenAIModel("qwen@http://gpu-box:8000/v1", transport=httpx.MockTransport(record), **kw)
    return m, seen


def test_streams_text_usage_and_finish_reason():
    m, seen = model(lambda r, n: httpx.Response(200, content=CHAT))
    stream = m.stream(messages=[{"role": "user", "content": "Capital of France?"}], greedy=True, max_tokens=3)
    assert list(stream) == ["Paris", " it is."]
    c = stream.completion
    assert c.text == "Paris it is." and c.finish_reason == "length" and (c.usage.prompt_tokens, c.usage.completion_tokens) == (12, 3)
    body = json.loads(seen[0].content)
    assert seen[0].url == "http://gpu-box:8000/v1/chat/completions"
    assert body["model"] == "qwen" and body["temperature"] == 0.0 and body["max_tokens"] == 3 and body["stream"]
    assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (40, 0.05, 1.0)  # no server defaults sneak in


def test_a_server_that_refuses_the_extras_gets_the_standard_fields_only():
    def answer(request, n):
        body = json.loads(request.content)
        if "top_k" in body:
            return httpx.Response(400, json={"error": {"message": "Unrecognized request argument supplied: top_k"}})
        return httpx.Response(200, content=CHAT)

    m, seen = model(answer)
    assert m.generate(messages=[{"role": "user", "content": "x"}]).text == "Paris it is."
    assert m.generate(messages=[{"role": "user", "content": "y"}]).text == "Paris it is."
    assert ["top_k" in json.loads(r.content) for r in seen] == [True, False, False]  # asked once, then remembered


def test_parameters_schema_and_raw_prompts_on_the_wire():
    m, seen = model(lambda r, n: httpx.Response(200, content=sse({"choices": [{"text": "{}", "finish_reason": "stop"}]})))
    p = SamplingParams(temperature=0.6, top_p=0.8, top_k=5, seed=7, stop=("\n",), max_tokens=9)
    assert m.generate("Once upon", params=p, json_schema={"type": "object"}).text == "{}"
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/completions" and body["prompt"] == "Once upon"
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"], body["stop"]) == (0.6, 0.8, 5, 7, ["\n"])
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}


def test_retries_what_is_worth_retrying_then_one_line(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    m, seen = model(lambda r, n: httpx.Response(503, json={"error": {"message": "busy"}}) if n < 3
                    else httpx.Response(200, content=CHAT))
    assert m.generate(messages=[{"role": "user", "content": "x"}]).text == "Paris it is." and len(seen) == 3
    m, seen = model(lambda r, n: httpx.Response(429, json={"error": {"message": "slow down"}}))
    with pytest.raises(RemoteError, match="no answer after 3 attempts .*429.*slow down") as exc:
        m.generate(messages=[{"role": "user", "content": "x"}])
    assert "\n" not in str(exc.value) and len(seen) == 3
    m, seen = model(lambda r, n: httpx.Response(400, json={"error": {"message": "bad model"}}))
    with pytest.raises(RemoteError, match="HTTP 400: bad model") as refused:
        m.generate(messages=[{"role": "user", "content": "x"}])
    assert len(seen) == 1  # a client error is not retried
    assert (refused.value.status, refused.value.detail) == (400, "bad model")  # what callers decide on

    def down(request, n):
        raise httpx.ConnectError("refused")

    m, seen = model(down)
    with pytest.raises(RemoteError, match="ConnectError"):
        m.generate("x")


def test_retry_after_is_honoured_and_capped(monkeypatch):
    """genstack serve's own 429s say when to come back; the client waits that long, not its fixed backoff."""
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from genstack.openai_client import MAX_RETRY_AFTER, retry_after

    waits = []
    monkeypatch.setattr("time.sleep", waits.append)
    m, seen = model(lambda r, n: httpx.Response(429, headers={"Retry-After": "3"}, json={"error": {"message": "later"}})
                    if n < 2 else httpx.Response(200, content=CHAT))
    assert m.generate(messages=[{"role": "user", "content": "x"}]).text == "Paris it is." and waits == [3.0]
    assert retry_after("7200") == MAX_RETRY_AFTER and retry_after("-5") == 0.0 and retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    assert 15 < retry_after(later) <= 20
    waits.clear()
    m, seen = model(lambda r, n: httpx.Response(503) if n < 3 else httpx.Response(200, content=CHAT))
    m.generate(messages=[{"role": "user", "content": "x"}])
    assert len(waits) == 2 and 0.37 <= waits[0] <= 0.63 and 0.75 <= waits[1] <= 1.25  # backoff with jitter


def test_the_api_key_is_sent_and_never_shown(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123456")
    m, seen = model(lambda r, n: httpx.Response(401, json={"error": {"message": "invalid key"}}), api_key_env="MY_KEY")
    with pytest.raises(RemoteError) as exc:
        m.generate("x")
    assert seen[0].headers["authorization"] == "Bearer sk-secret-123456"
    assert "sk-secret" not in str(exc.value) and "sk-secret" not in repr(m) and "sk-secret" not in m.name


def test_named_from_the_cli_spec_and_bad_specs_are_one_line():
    m = get_model("openai:llama3.2:3b@http://127.0.0.1:11434/v1", n_ctx=4096)
    assert isinstance(m, OpenAIModel) and m.remote_model == "llama3.2:3b" and m.context_length == 4096
    for bad in ("openai:no-url", "openai:m@ftp://x", "openai:@http://x"):
        with pytest.raises(InvalidParameter, match="openai:MODEL@"):
            get_model(bad)


def test_a_stream_error_event_is_an_error():
    m, _ = model(lambda r, n: httpx.Response(200, content=sse({"choices": [{"delta": {"content": "a"}}]},
                                                             {"error": {"message": "out of memory"}})))
    with pytest.raises(RemoteError, match="out of memory"):
        m.generate(messages=[{"role": "user", "content": "x"}])


def test_remote_embedder_batches_normalises_and_learns_its_dimension():
    import numpy as np

    from genstack.embeddings import get_embedder
    from genstack.embeddings.remote import OpenAIEmbedder

    seen = []

    def answer(request):
        body = json.loads(request.content)
        seen.append(body)
        return httpx.Response(200, json={"data": [{"index": i, "embedding": [3.0, 4.0, float(i)]}
                                                  for i in reversed(range(len(body["input"])))]})

    e = OpenAIEmbedder("bge@http://emb:8080/v1", batch=2, transport=httpx.MockTransport(answer))
    v = e.embed(["a", "b", "c"])
    assert [len(b["input"]) for b in seen] == [2, 1] and seen[0]["model"] == "bge"
    assert v.shape == (3, 3) and np.allclose(np.linalg.norm(v, axis=1), 1) and e.dim == 3
    assert np.allclose(v[1], np.array([3, 4, 1]) / np.linalg.norm([3, 4, 1]))  # answers put back in input order
    assert get_embedder("openai:bge@http://emb:8080/v1").name == "openai:bge@http://emb:8080/v1"


def test_remote_models_named_in_the_config_file(tmp_path, monkeypatch):
    from genstack import load_settings
    from genstack.embeddings import get_embedder
    from genstack.embeddings.remote import OpenAIEmbedder
    from genstack.errors import ConfigError

    cfg = tmp_path / "config.toml"
    cfg.write_text('[models.big]\nbase_url = "http://gpu-box:8000/v1"\nmodel = "llama-3.1-8b"\n'
                   'api_key_env = "GPU_KEY"\ncontext_length = 32768\n\n'
                   '[models.vectors]\nbase_url = "http://gpu-box:8080/v1"\nmodel = "bge-m3"\nkind = "embedding"\n')
    s = load_settings(cfg)
    m = get_model("big", settings=s)
    assert isinstance(m, OpenAIModel) and m.remote_model == "llama-3.1-8b" and m.context_length == 32768
    e = get_embedder("vectors", settings=s)
    assert isinstance(e, OpenAIEmbedder) and e.name == "openai:bge-m3@http://gpu-box:8080/v1"
    with pytest.raises(InvalidParameter, match="embedding model"):
        get_model("vectors", settings=s)
    for bad, fragment in (('[models.x]\nmodel = "m"\n', "needs base_url"),
                          ('[models.x]\nbase_url = "ftp://h"\nmodel = "m"\n', "http://"),
                          ('[models.x]\nbase_url = "http://h"\nmodel = "m"\ntemperature = 1\n', "unknown key"),
                          ('[models.x]\nbase_url = "http://h"\nmodel = "m"\nkind = "vision"\n', "kind must be")):
        cfg.write_text(bad)
        with pytest.raises(ConfigError, match=fragment):
            load_settings(cfg)


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


def tool_answer(calls=None, content=None, status=200):
    def answer(request, n):
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "tools are not supported by this model"}})
        msg = {"role": "assistant", "content": content}
        if calls is not None:
            msg["tool_calls"] = calls
        return httpx.Response(200, json={"choices": [{"message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
                                         "usage": {"prompt_tokens": 50, "completion_tokens": 9}})
    return answer


def test_tools_go_to_the_servers_own_function_calling_and_the_calls_are_validated():
    from genstack.agents.calling import Function, ToolCallError, respond

    fn = [Function.from_openai(WEATHER)]
    good = [{"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    m, seen = model(tool_answer(good))
    history = [{"role": "user", "content": "Weather in Oslo?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    *_, turn = respond(m, history, fn, tool_choice="required", params=SamplingParams(greedy=True, max_tokens=64))
    assert [(c.name, c.arguments, c.id) for c in turn.calls] == [("get_weather", {"city": "Oslo"}, "call_abc")]
    body = json.loads(seen[0].content)
    assert seen[0].url == "http://gpu-box:8000/v1/chat/completions" and body["stream"] is False
    assert body["tools"] == [WEATHER] and body["tool_choice"] == "required" and body["parallel_tool_calls"] is True
    # the history goes as the OpenAI API has it: structured calls (arguments as a JSON string) and tool results
    assert body["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}
    assert body["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
    assert '"tools"' in turn.prompt and turn.usage.prompt_tokens == 50  # --show-prompt shows the request

    for bad, why in (([{"function": {"name": "rm_rf", "arguments": "{}"}}], "not a valid call"),
                     ([{"function": {"name": "get_weather", "arguments": '{"town": 1}'}}], "not a valid call"),
                     ([{"function": {"name": "get_weather", "arguments": "{city"}}], "not JSON")):
        m, _ = model(tool_answer(bad))
        with pytest.raises(ToolCallError, match=why):
            list(respond(m, [{"role": "user", "content": "x"}], fn))

    m, _ = model(tool_answer(None, "It is sunny."))
    items = list(respond(m, [{"role": "user", "content": "x"}], fn))
    assert items[0] == "It is sunny." and items[-1].calls == [] and items[-1].content == "It is sunny."
    m, _ = model(tool_answer(None, "No."))
    with pytest.raises(ToolCallError, match="without a call"):
        list(respond(m, [{"role": "user", "content": "x"}], fn, tool_choice="required"))


def test_a_server_without_tools_is_one_line_naming_the_capability():
    from genstack.agents.calling import Function, respond
    from genstack.models.capabilities import UnsupportedCapability

    m, _ = model(tool_answer(status=400))
    with pytest.raises(UnsupportedCapability, match="native_tools"):
        list(respond(m, [{"role": "user", "content": "x"}], [Function.from_openai(WEATHER)]))
