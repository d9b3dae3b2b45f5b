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
- Token counts for fitting prompts are estimates (4 characters a token): the server's tokenizer is
  not known here. The window is ``context_length`` (default 8192).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

from ..errors import InvalidParameter
from ..generation import Chunk, GenerationRequest, Message, Usage
from ..openai_client import OpenAIClient, RemoteError, parse_spec
from .base import Model

__all__ = ["OpenAIModel", "RemoteError"]

#: sampling fields llama.cpp-family servers read and OpenAI's own API refuses
EXTRAS = ("top_k", "min_p", "repeat_penalty")


class OpenAIModel(Model):
    can_stream = True
    supports_schema = True  # sent as response_format; the result is validated
    supports_concurrency = True  # the server schedules concurrent requests; no lock here
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
    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        p = request.params
        body: dict[str, Any] = {"model": self.remote_model, "stream": True, "stream_options": {"include_usage": True},
                                "max_tokens": p.max_tokens, "temperature": 0.0 if p.is_greedy else p.temperature,
                                "top_p": p.top_p}
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        if self._extras:
            body.update(top_k=p.top_k, min_p=p.min_p, repeat_penalty=p.repeat_penalty)
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True}}
        if request.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
            return "/chat/completions", body
        body["prompt"] = request.prompt
        return "/completions", body

    def execute(self, request: GenerationRequest) -> Iterator[Chunk]:
        path, body = self._body(request)
        try:
            resp = self.client.post(path, body, stream=True)
        except RemoteError as exc:
            refused = self._extras and any(f in str(exc) for f in EXTRAS) and (" 400:" in str(exc) or " 422:" in str(exc))
            if not refused:
                raise
            self._extras = False  # this server does not take the llama.cpp extras: send the standard fields only
            path, body = self._body(request)
            resp = self.client.post(path, body, stream=True)
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

    def render_chat(self, messages: Sequence[Message]) -> str:
        """What is sent, readably (the server applies its own chat template, which genstack cannot see)."""
        return "".join(f"<{m.role}>\n{m.content}\n" for m in messages) + "<assistant>\n"

