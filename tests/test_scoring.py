"""Log-likelihood over the wire: ``/v1/completions`` with ``echo`` + ``logprobs`` in genstack serve
(on the word-token fake) and the remote model's scoring through it (recorded responses, and
genstack's own app as the server). The real servers are in test_remote_integration."""

from __future__ import annotations

import json

import httpx
import pytest

from tests._server import make_app

pytestmark = pytest.mark.unit

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture
def server(tmp_path):
    app, model, settings = make_app(tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def post(server, **body):
    return server.post("/v1/completions", json={"model": "fake", **body})


# -- the server --------------------------------------------------------------------------
def test_echo_with_max_tokens_0_scores_the_prompt_alone(server):
    r = post(server, prompt="the cat the cat sat", echo=True, max_tokens=0, logprobs=2)
    body = r.json()
    assert r.status_code == 200, body
    choice = body["choices"][0]
    lp = choice["logprobs"]
    assert choice["text"] == "the cat the cat sat" and choice["finish_reason"] == "length"
    assert lp["tokens"] == ["the", " cat", " the", " cat", " sat"] and "".join(lp["tokens"]) == choice["text"]
    assert lp["token_logprobs"] == [None, -2.0, -2.0, -2.0, -2.0]
    assert lp["text_offset"] == [0, 3, 7, 11, 15]
    assert lp["top_logprobs"][0] is None and lp["top_logprobs"][1] == {"the": -0.5, " cat": -2.0}
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}


def test_logprobs_of_generated_text_only_without_echo(tmp_path):
    app, _, _ = make_app(tmp_path, replies=[" upon a time."])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        body = c.post("/v1/completions", json={"model": "fake", "prompt": "Once", "temperature": 0, "logprobs": 1}).json()
    choice = body["choices"][0]
    assert choice["text"] == " upon a time."
    lp = choice["logprobs"]
    assert lp["tokens"] == [" upon", " a", " time."] and lp["text_offset"] == [4, 9, 11]  # from the prompt's start
    assert lp["token_logprobs"] == [-2.0, -2.0, -2.0] and lp["top_logprobs"][0] == {"Once": -0.5}


def test_echo_without_logprobs_puts_the_prompt_first_plain_and_streamed(server):
    body = post(server, prompt="Once ", temperature=0, echo=True).json()
    assert body["choices"][0]["text"] == "Once Hello there friend." and body["choices"][0]["logprobs"] is None
    r = post(server, prompt="Once ", temperature=0, echo=True, stream=True)
    events = [json.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert events[0]["choices"][0]["text"] == "Once "
    assert "".join(e["choices"][0]["text"] for e in events if e["choices"]) == "Once Hello there friend."


@pytest.mark.parametrize("body, param, words", [
    ({"logprobs": 99}, "logprobs", "from 0 to 20"),
    ({"logprobs": True}, "logprobs", "from 0 to 20"),
    ({"echo": "yes"}, "echo", "true or false"),
    ({"max_tokens": 0}, "max_tokens", "positive integer"),  # 0 only scores the prompt: it needs echo
    ({"logprobs": 1, "stream": True}, "logprobs", "stream: false"),
    ({"prompt": "", "echo": True, "max_tokens": 0, "logprobs": 1}, "prompt", "empty"),
])
def test_bad_scoring_requests_are_400_naming_the_parameter(server, body, param, words):
    r = post(server, **{"prompt": "x y", **body})
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == param and words in err["message"], err


def test_a_model_without_prompt_logprobs_is_400_naming_the_capability(tmp_path):
    app, model, _ = make_app(tmp_path)
    model.supports_prompt_logprobs = False
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/v1/completions", json={"model": "fake", "prompt": "a b", "echo": True, "max_tokens": 0,
                                            "logprobs": 1})
        err = r.json()["error"]
        assert r.status_code == 400 and err["code"] == "logprobs_not_supported" and "prompt_logprobs" in err["message"]
        r = c.post("/v1/completions", json={"model": "fake", "prompt": "a b", "echo": True, "temperature": 0})
        assert r.status_code == 200  # echo alone needs no scores


def test_chat_completions_still_refuse_logprobs(server):
    r = server.post("/v1/chat/completions", json={"model": "fake", "logprobs": True,
                                                  "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "logprobs"


# -- the remote model, on recorded responses ------------------------------------------------
def recorded(logprobs, seen=None, status=200):
    def handler(request):
        if seen is not None:
            seen.append(json.loads(request.content))
        if status != 200:
            return httpx.Response(status, json={"error": {"message": logprobs}})
        return httpx.Response(200, json={"choices": [{"index": 0, "text": "x", "logprobs": logprobs,
                                                      "finish_reason": "length"}]})

    return httpx.MockTransport(handler)


def remote(transport, name="big"):
    from genstack.models.remote import OpenAIModel

    return OpenAIModel(f"{name}@http://gpu-box:8000/v1", transport=transport, retries=1)


# "Answer:" + " Paris" as a server tokenizes it, plus the one generated token (" .")
ECHO = {"tokens": ["Answer", ":", " Par", "is", " ."], "token_logprobs": [None, -0.5, -1.25, -0.25, -3.0],
        "top_logprobs": [None, {":": -0.5}, {" Lyon": -1.0}, {"is": -0.25}, {" .": -0.1}],
        "text_offset": [0, 6, 7, 11, 13]}


def test_loglikelihood_sums_the_tokens_past_the_prompt_and_tells_greedy():
    from genstack.models.capabilities import supports

    seen = []
    m = remote(recorded(ECHO, seen))
    assert supports(m, "loglikelihood") and supports(m, "prompt_logprobs")
    [(lp, greedy)] = m.loglikelihood("Answer:", [" Paris"])
    assert lp == pytest.approx(-1.5) and greedy is False  # " Lyon" was likelier than " Par"
    assert seen[0]["prompt"] == "Answer: Paris" and seen[0]["echo"] is True and seen[0]["logprobs"] >= 1
    assert seen[0]["max_tokens"] == 1 and seen[0]["stream"] is False  # 0 means "no limit" to llama.cpp's server
    assert m.score("Answer:", [" Paris"]) == [pytest.approx(-1.5)]


def test_a_token_across_the_prompt_boundary_belongs_to_the_continuation():
    echo = {"tokens": ["A", ": P", "aris"], "token_logprobs": [None, -2.0, -1.0],
            "top_logprobs": [None, {": P": -2.0}, {"aris": -1.0}], "text_offset": [0, 1, 4]}
    [(lp, greedy)] = remote(recorded(echo)).loglikelihood("A:", [" Paris"])
    assert lp == pytest.approx(-3.0) and greedy is True


def test_a_server_without_echo_logprobs_is_one_error_naming_the_capability():
    from genstack.models.capabilities import UnsupportedCapability

    for transport in (recorded(None), recorded("echo is not supported", status=400), recorded("Not Found", status=404)):
        with pytest.raises(UnsupportedCapability, match=r"echo \+ logprobs") as e:
            remote(transport).loglikelihood("Answer:", [" Paris"])
        assert "\n" not in str(e.value)
    from genstack.models.remote import RemoteError

    with pytest.raises(RemoteError, match="HTTP 400: the prompt is too long"):  # not every 400 is a capability
        remote(recorded("the prompt is too long", status=400)).loglikelihood("Answer:", [" Paris"])
    with pytest.raises(RemoteError, match="HTTP 404: the model 'big' does not exist"):  # nor every 404
        remote(recorded("the model 'big' does not exist", status=404)).loglikelihood("Answer:", [" Paris"])


def test_log_probabilities_that_disagree_with_their_own_top_logprobs_are_refused():
    """llama-cpp-python's server 0.3.x: token_logprobs shifted one token against top_logprobs."""
    from genstack.models.remote import RemoteError

    shifted = {**ECHO, "token_logprobs": [None, -11.7, -1.25, -0.25, -3.0]}
    with pytest.raises(RemoteError, match="disagrees with its own top_logprobs"):
        remote(recorded(shifted)).loglikelihood("Answer:", [" Paris"])


def test_the_remote_model_scores_through_genstack_serve_as_the_local_model_does(tmp_path):
    """The whole wire: OpenAIModel → genstack's app → the fake's prompt_logprobs."""
    from genstack.models.fake import FakeChatModel

    app, _, _ = make_app(tmp_path, allowed_hosts=("gpu-box",))  # reached by its LAN name
    with TestClient(app, base_url="http://127.0.0.1") as c:
        def forward(request):
            r = c.request(request.method, request.url.path, content=request.content, headers=dict(request.headers))
            return httpx.Response(r.status_code, content=r.content, headers={"content-type": r.headers["content-type"]})

        m = remote(httpx.MockTransport(forward), name="fake")
        got = m.loglikelihood("the cat", [" the", " cat sat"])
    local = FakeChatModel().prompt_logprobs
    want = [sum(t.logprob for t in local("the cat" + cont) if t.offset >= len("the cat")) for cont in (" the", " cat sat")]
    assert [lp for lp, _ in got] == pytest.approx(want) == [-2.0, -2.5]
    assert [g for _, g in got] == [False, False]


def test_apply_template_renders_with_the_models_own_template_and_the_remote_model_uses_it(tmp_path):
    from genstack.models.fake import FakeChatModel
    from genstack.generation import Message

    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    app, _, _ = make_app(tmp_path, allowed_hosts=("gpu-box",))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/apply-template", json={"messages": msgs})
        assert r.status_code == 200 and r.json()["prompt"] == "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"
        assert c.post("/apply-template", json={"messages": []}).json()["error"]["param"] == "messages"
        assert c.post("/apply-template", json={"model": "nope", "messages": msgs}).status_code == 404

        def forward(request):
            r = c.request(request.method, request.url.path, content=request.content, headers=dict(request.headers))
            return httpx.Response(r.status_code, content=r.content, headers={"content-type": r.headers["content-type"]})

        m = remote(httpx.MockTransport(forward), name="fake")
        as_msgs = [Message(x["role"], x["content"]) for x in msgs]
        assert m.render_chat(as_msgs) == FakeChatModel().render_chat(as_msgs)
        assert m.shown_prompt(as_msgs).startswith("<system>")  # the display needs no round trip


def test_a_server_that_cannot_render_chat_prompts_gets_label_tasks_decided_by_its_chat_reply():
    """Ollama, say: no /apply-template, so no exact prompt to score; the chat reply names the label."""
    from genstack.models.capabilities import UnsupportedCapability
    from genstack.rag.tasks import classify

    from .test_remote_model import sse

    def handler(request):
        if request.url.path.endswith("/apply-template"):
            return httpx.Response(404, text="404 page not found")
        return httpx.Response(200, content=sse({"choices": [{"delta": {"content": "Technology."}, "finish_reason": "stop"}]}))

    m = remote(httpx.MockTransport(handler))
    with pytest.raises(UnsupportedCapability, match=r"POST /apply-template"):
        m.render_chat([])
    got = classify("The GPU renders frames.", ["sports", "technology"], model=m, method="llm")
    assert got.label == "technology" and got.score is None


def test_log_probabilities_one_token_out_of_step_are_refused():
    """What llama-cpp-python 0.3.36's server sends (recorded, shortened): at each token the
    distribution over the next one, consistently in both token_logprobs and top_logprobs."""
    from genstack.models.remote import RemoteError

    shifted = {"tokens": ["Question", ":", " What", " is", " the", " capital", " of", "?"],
               "token_logprobs": [None, -10.98, -11.33, -8.05, -9.21, -8.89, -12.89, -3.0],
               "top_logprobs": [None, {"\n": -1.26, ":": -10.98}, {" is": -1.51, " What": -11.33},
                                {" the": -0.52, " is": -8.05}, {" capital": -2.7, " the": -9.21},
                                {" of": -0.19, " capital": -8.89}, {"?": -1.28, " of": -12.89}, {"?": -3.0}],
               "text_offset": [0, 8, 9, 14, 17, 21, 29, 32]}
    with pytest.raises(RemoteError, match="one token out of step"):
        remote(recorded(shifted)).loglikelihood("Question: What is the capital", [" of"])


def test_a_server_that_merges_the_text_with_the_generated_token_is_refused():
    from genstack.models.remote import RemoteError

    merged = {"tokens": ["Answer", ":", " honeybees"], "token_logprobs": [None, -0.5, -9.0],
              "top_logprobs": [None, {":": -0.5}, {" honey": -2.0}], "text_offset": [0, 6, 7]}
    with pytest.raises(RemoteError, match="joined the end of the text"):
        remote(recorded(merged)).loglikelihood("Answer:", [" honey"])
