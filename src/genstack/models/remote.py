"""A model behind any OpenAI-compatible server: vLLM, Ollama, llama.cpp's server, LM Studio, another
``genstack serve``, or a cloud endpoint. The wire format is written once, here.

Name it as ``openai:MODEL@BASE_URL`` (``--model openai:qwen2.5:7b@http://127.0.0.1:11434/v1``); the
API key comes from the environment variable named by ``api_key_env`` (default ``OPENAI_API_KEY``)
and never appears in a log line or an error.

- Chat requests go to ``/chat/completions``, raw prompts to ``/completions``, both streamed
  (``stream_options.include_usage`` for token counts).
- Decoding: ``temperature`` (0 when greedy), ``top_p``, ``max_tokens``, ``stop``, ``seed``, and the
  llama.cpp-family extras ``top_k``, ``min_p``, ``repeat_penalty`` (llama.cpp's server, vLLM and
  genstack read them; leaving them out lets a server apply its own, e.g. llama.cpp's repeat
  penalty 1.1). A server that refuses them (a 400 naming one, as OpenAI's does) gets the request
  again without them, and this model stops sending them.
- ``json_schema`` is sent as ``response_format: json_schema``; the server may or may not constrain
  decoding, so genstack validates the result as always.
- Timeouts, connection errors, 429 and 5xx are retried (3 attempts, backoff 0.5 s, 1 s) before any
  text has arrived; then one error line.
- Log-likelihoods (label tasks, ``genstack eval bench``) come from ``/completions`` with ``echo`` and
  ``logprobs`` (the legacy OpenAI API; vLLM and ``genstack serve`` answer it): the text is sent with
  ``max_tokens: 1`` (llama.cpp's server reads 0 as "no limit") and the tokens after the prompt are
  summed. A server that refuses, or sends no log-probabilities, is one error naming the capability;
  one whose log-probabilities disagree with its own ``top_logprobs`` (llama-cpp-python's server
  0.3.x shifts them by one token) is refused rather than believed.
- Tools (``genstack agent``, ``tools`` in ``genstack serve``'s API) go to the server's own function
  calling: ``tools``, ``tool_choice`` and ``parallel_tool_calls`` on a non-streamed
  ``/chat/completions``, with tool calls and ``role: "tool"`` results in the history as the OpenAI
  API has them. The server's model and parser decide; genstack validates every call against its
  function's schema. A server that refuses ``tools`` is one error naming the capability.
- Token counts for fitting prompts are estimates (4 characters a token): the server's tokenizer is
  not known here. The window is ``context_length`` (default 8192).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

from ..errors import InvalidParameter
from ..generation import Chunk, Completion, GenerationRequest, Message, TokenLogprob, Usage
from ..openai_client import OpenAIClient, RemoteError, parse_spec
from .base import Model

__all__ = ["OpenAIModel", "RemoteError"]

#: sampling fields llama.cpp-family servers read and OpenAI's own API refuses
EXTRAS = ("top_k", "min_p", "repeat_penalty")


class OpenAIModel(Model):
    can_stream = True
    supports_schema = True  # sent as response_format; the result is validated
    supports_concurrency = True  # the server schedules concurrent requests; no lock here
    supports_loglikelihood = True  # through echo + logprobs; a server without them is a clear error
    supports_prompt_logprobs = True
    supports_native_tools = True  # tools go to the server's own function calling; genstack validates the calls
    #: checks a spec without connecting (genstack serve --model validates names at start)
    check_spec = staticmethod(parse_spec)

    def __init__(self, spec: str | None = None, *, model: str | None = None, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0, context_length: int = 8192,
                 retries: int = 3, transport=None, settings=None, n_ctx: int | None = None, **_options: Any):
        if spec:
            model, base_url = parse_spec(spec)
        if not model or not base_url:
            raise InvalidParameter("a remote model needs a model name and a base URL (openai:MODEL@URL)")
        self.remote_model, self.base_url = model, base_url.rstrip("/")
        self.name = f"openai:{model}@{self.base_url}"
        self._n_ctx = int(n_ctx or context_length)
        # transport: an httpx transport (tests record one)
        self.client = OpenAIClient(self.base_url, api_key_env=api_key_env, timeout=timeout, retries=retries,
                                   transport=transport)
        self._extras = True  # send top_k / min_p / repeat_penalty until a server refuses them

    @property
    def context_length(self) -> int:
        return self._n_ctx

    def close(self) -> None:
        self.client.close()

    # -- the wire format -------------------------------------------------------------
    def _sampling(self, p) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.remote_model, "max_tokens": p.max_tokens,
                                "temperature": 0.0 if p.is_greedy else p.temperature, "top_p": p.top_p}
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        if self._extras:
            body.update(top_k=p.top_k, min_p=p.min_p, repeat_penalty=p.repeat_penalty)
        return body

    def _post(self, path: str, make_body, **kw):
        """POST ``make_body()``; a server that refuses the llama.cpp extras gets it again without them."""
        try:
            return self.client.post(path, make_body(), **kw)
        except RemoteError as exc:
            refused = self._extras and exc.status in (400, 422) and any(f in exc.detail for f in EXTRAS)
            if not refused:
                raise
            self._extras = False  # this server does not take the llama.cpp extras: send the standard fields only
            return self.client.post(path, make_body(), **kw)

    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        body = {**self._sampling(request.params), "stream": True, "stream_options": {"include_usage": True}}
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True}}
        if request.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
            return "/chat/completions", body
        body["prompt"] = request.prompt
        return "/completions", body

    def execute(self, request: GenerationRequest) -> Iterator[Chunk]:
        path = self._body(request)[0]
        resp = self._post(path, lambda: self._body(request)[1], stream=True)
        return self._read(resp, chat=request.messages is not None)

    def _read(self, resp, chat: bool) -> Iterator[Chunk]:
        import httpx

        finish, usage = "stop", None
        try:
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    ev = json.loads(data)
                except ValueError:
                    raise RemoteError(f"{self.base_url}: the server sent a stream event that is not JSON") from None
                if ev.get("error"):
                    raise RemoteError(f"{self.base_url}: {(ev['error'] or {}).get('message', 'error')}")
                if ev.get("usage"):
                    u = ev["usage"]
                    usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
                for choice in ev.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                    if text:
                        yield Chunk(text)
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.base_url}: the stream broke off ({type(exc).__name__})") from None
        finally:
            resp.close()
        yield Chunk("", finish_reason=finish, usage=usage or Usage(0, 0))  # type: ignore[arg-type]

    def chat_tools(self, messages: Sequence[dict], tools: Sequence[dict], *, tool_choice: Any = "auto",
                   parallel: bool = True, params=None) -> tuple[str, list[dict], Completion]:
        from ..generation import SamplingParams
        from .capabilities import UnsupportedCapability

        p = params or SamplingParams()

        def body():
            return {**self._sampling(p), "stream": False, "messages": list(messages), "tools": list(tools),
                    "tool_choice": tool_choice, "parallel_tool_calls": bool(parallel)}
        try:
            resp = self._post("/chat/completions", body)
        except RemoteError as exc:
            if exc.status in (400, 422, 501) and "tool" in exc.detail.lower():
                raise UnsupportedCapability(f"{self.name} does not take tools on /chat/completions "
                                            f"(native_tools): {exc}") from None
            raise
        try:
            data = resp.json()
            choice = data["choices"][0]
            msg = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError):
            raise RemoteError(f"{self.base_url}: the chat completion is not in the OpenAI format") from None
        u = data.get("usage") or {}
        calls = msg.get("tool_calls") or []
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        comp = Completion(msg.get("content") or "", finish,
                          Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)),
                          model=self.name, seed=p.seed)
        return comp.text, list(calls), comp

    def shown_prompt(self, messages: Sequence[Message]) -> str:
        """What is sent, readably, without a round trip (the server applies its own chat template):
        the generic rendering every backend starts with."""
        return Model.render_chat(self, messages)

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        return self.count_tokens(self.shown_prompt(messages))  # an estimate either way: no round trip

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The exact prompt the server makes of ``messages``, from its ``POST /apply-template``
        (llama.cpp's server and genstack serve have it): what scoring a continuation of a chat prompt
        needs. A server without it is one error: scores against a guessed template would be wrong."""
        from .capabilities import UnsupportedCapability

        root = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        body = {"model": self.remote_model, "messages": [{"role": m.role, "content": m.content} for m in messages]}
        try:
            resp = self.client.post(root + "/apply-template", body)
        except RemoteError as exc:
            if exc.status in (404, 405, 501) and "model" not in exc.detail:
                raise UnsupportedCapability(
                    f"{root} does not render chat prompts (POST /apply-template): needed to score continuations of a "
                    "chat prompt (label tasks with --method llm, tool-call decisions); use llama.cpp's server, "
                    "genstack serve or a local model, or a raw prompt") from None
            raise
        try:
            prompt = resp.json().get("prompt")
        except ValueError:
            prompt = None
        finally:
            resp.close()
        if not isinstance(prompt, str):
            raise RemoteError(f"{root}/apply-template: the answer holds no prompt")
        return prompt

    # -- scoring through echo + logprobs ---------------------------------------------------
    def prompt_logprobs(self, text: str, top: int = 0, *, continuation: str = "") -> list[TokenLogprob]:
        """The server's log-probabilities of every token of ``text`` (``/completions``, ``echo``);
        a ``continuation`` is sent joined to it (the server tokenizes the whole)."""
        from .capabilities import UnsupportedCapability

        text = text + continuation
        if not text:
            raise InvalidParameter("the text is empty")
        body = {"model": self.remote_model, "prompt": text, "max_tokens": 1, "echo": True,
                "logprobs": max(1, int(top)), "temperature": 0.0, "stream": False}
        missing = (f"{self.base_url} does not return prompt log-probabilities (echo + logprobs on /completions): "
                   "needed for scoring continuations (label tasks, multiple-choice benchmarks); "
                   "use a server that does (vLLM, genstack serve) or a local model")
        try:
            resp = self.client.post("/completions", body)
        except RemoteError as exc:
            refused = exc.status in (405, 501) or (exc.status == 404 and "model" not in exc.detail.lower()) or (
                exc.status in (400, 422) and ("echo" in exc.detail or "logprob" in exc.detail))
            if refused:
                raise UnsupportedCapability(f"{missing} ({str(exc).split(': ', 1)[-1][:200]})") from None
            raise
        try:
            lp = (resp.json().get("choices") or [{}])[0].get("logprobs") or {}
        except ValueError:
            raise RemoteError(f"{self.base_url}/completions: the answer is not JSON") from None
        finally:
            resp.close()
        tokens, values = lp.get("tokens"), lp.get("token_logprobs")
        if not tokens or not isinstance(values, list) or len(values) != len(tokens):
            raise UnsupportedCapability(missing)
        tops = lp.get("top_logprobs") or [None] * len(tokens)
        offsets = lp.get("text_offset")
        if not isinstance(offsets, list) or len(offsets) != len(tokens):
            offsets, at = [], 0
            for t in tokens:
                offsets.append(at)
                at += len(t)
        _check_alignment(self.base_url, tokens, tops)
        out = []
        for i, (tok, v, alts, off) in enumerate(zip(tokens, values, tops, offsets)):
            if off >= len(text):
                break  # the one generated token
            if off + len(str(tok)) > len(text):
                raise RemoteError(f"{self.base_url}: the server joined the end of the text and the generated token into "
                                  f"one token ({tok!r}), so the text's own tokens were not scored")
            alts = {str(k): float(x) for k, x in (alts or {}).items()}
            if v is not None and alts:
                best = max(alts.values())
                if float(v) > best + 1e-3 or (tok in alts and abs(alts[tok] - float(v)) > 1e-3):
                    raise RemoteError(
                        f"{self.base_url}: the server's log-probability of token {i} ({tok!r}: {float(v):.3f}) "
                        f"disagrees with its own top_logprobs ({best:.3f} for the best), so scores from it would be "
                        "wrong (llama-cpp-python's server 0.3.x shifts echoed log-probabilities by one token); "
                        "use vLLM, genstack serve or a local model for scoring")
            out.append(TokenLogprob(str(tok), int(off), None if v is None else float(v),
                                    dict(sorted(alts.items(), key=lambda kv: -kv[1]))))
        return out

    def loglikelihood(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, bool | None]]:
        """(summed log-probability, whether greedy decoding gives it) of each continuation: the
        tokens of ``prompt + continuation`` that reach past the prompt, one request each."""
        return [(lp, greedy) for lp, greedy, _ in self._continuations(prompt, continuations)]

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        return [lp for lp, _, _ in self._continuations(prompt, continuations)]

    def score_tokens(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        """The server's own token counts (this side cannot tokenize)."""
        return [(lp, max(1, n)) for lp, _, n in self._continuations(prompt, continuations)]

    def _continuations(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, bool, int]]:
        if not prompt:
            raise InvalidParameter("the prompt is empty")
        out: list[tuple[float, bool, int]] = []
        for cont in continuations:
            if not cont:
                out.append((0.0, True, 0))
                continue
            toks = [t for t in self.prompt_logprobs(prompt + cont, top=1) if t.offset + len(t.text) > len(prompt)]
            if not toks or any(t.logprob is None for t in toks):
                raise RemoteError(f"{self.base_url}: no log-probabilities came back for the continuation {cont[:40]!r}")
            greedy = all(bool(t.top) and next(iter(t.top)) == t.text for t in toks)
            out.append((sum(t.logprob for t in toks), greedy, len(toks)))  # type: ignore[misc]
        return out


def _check_alignment(base_url: str, tokens: list, tops: list) -> None:
    """Refuse echoed log-probabilities that are one token out of step: llama-cpp-python's server
    (0.3.x) gives, at token i, the distribution over token i+1. Then the best alternative at i is
    token i+1 far more often than token i, which a correct server shows only on repetitive text."""
    best = [max(t, key=t.get) if isinstance(t, dict) and t else None for t in tops]
    aligned = sum(1 for b, tok in zip(best, tokens) if b is not None and b == tok)
    shifted = sum(1 for b, nxt in zip(best, tokens[1:]) if b is not None and b == nxt)
    if shifted >= 2 and shifted > aligned:
        raise RemoteError(
            f"{base_url}: the server's echoed log-probabilities are one token out of step (its best guess at a "
            f"token is the next token {shifted} times, the token itself {aligned} times), so scores from it would "
            "be wrong (llama-cpp-python's server 0.3.x does this); use vLLM, genstack serve or a local model for scoring")
