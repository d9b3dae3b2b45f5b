"""Where red-team requests go: in-process (:class:`LocalTarget`) or a running
``genstack serve`` (:class:`RemoteTarget`). Both run the same guard policy and
the same answer pipeline, so their figures are comparable."""

from __future__ import annotations

import time
from typing import Protocol, Sequence

from ...errors import GenstackError
from ...generation import Message, SamplingParams
from .common import Reply

__all__ = ["Target", "LocalTarget", "RemoteTarget", "REPLY_TOKENS"]

REPLY_TOKENS = 96


class Target(Protocol):
    name: str

    def chat(self, messages: Sequence[Message]) -> Reply: ...
    def ask(self, question: str, documents: Sequence[str]) -> Reply: ...
    def screen(self, text: str) -> bool: ...


class LocalTarget:
    """The genstack pipeline in this process, under a :class:`~genstack.guard.GuardPolicy`."""

    def __init__(self, policy=None, *, model=None, embedder=None, settings=None, max_tokens: int = REPLY_TOKENS):
        from ...config import load_settings
        from ...guard import GuardPolicy

        self.settings = settings or load_settings()
        self.policy = policy or GuardPolicy()
        self._model, self._embedder = model, embedder
        self.params = SamplingParams(greedy=True, max_tokens=max_tokens)
        self.name = "local"

    @property
    def model(self):
        if self._model is None or isinstance(self._model, str):
            from ...models.registry import get_model

            self._model = get_model(self._model, settings=self.settings)
        return self._model

    @property
    def embedder(self):
        if self._embedder is None or isinstance(self._embedder, str):
            from ...embeddings import get_embedder

            self._embedder = get_embedder(self._embedder, settings=self.settings)
        return self._embedder

    def _guard(self, messages: Sequence[Message], text: str):
        """The request's guard session, and a refusal when its input check blocks ``text``."""
        from ...guard import InputBlocked

        guard = self.policy.session(messages)
        try:
            guard.check_input(text)
        except InputBlocked:
            return guard, Reply("", blocked="input", flagged=True)
        return guard, None

    def screen(self, text: str) -> bool:
        d = self.policy.detect(text)
        return bool(d and d.flagged)

    def chat(self, messages: Sequence[Message]) -> Reply:
        """Exactly the server's plain chat completion (``genstack.rag.respond.plain``), unstreamed."""
        from ...rag.respond import plain

        t0 = time.perf_counter()
        user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        guard, refused = self._guard(messages, user)
        if refused:
            return refused
        out = list(plain(self.model, messages, self.params, guard, streaming=False))[-1]
        return Reply(out.text, blocked=out.blocked, flagged=bool(guard.input and guard.input.flagged),
                     seconds=time.perf_counter() - t0)

    def ask(self, question: str, documents: Sequence[str]) -> Reply:
        """Exactly the server's ``documents`` chat completion (``genstack.rag.respond.grounded``), unstreamed."""
        from ...rag.config import RagConfig
        from ...rag.pipeline import Pipeline, RagRequest
        from ...rag.respond import grounded

        t0 = time.perf_counter()
        messages = [Message("user", question)]
        guard, refused = self._guard(messages, question)
        if refused:
            return refused
        pipe = Pipeline.over_documents(documents, self.embedder, model=self.model, settings=self.settings,
                                       config=RagConfig(injection=self.policy.sources))
        out = list(grounded(pipe, RagRequest(question, params=self.params), guard, streaming=False))[-1]
        return Reply(out.text, blocked=out.blocked, flagged=bool(guard.input and guard.input.flagged),
                     abstained=bool(out.answer and out.answer.abstained), seconds=time.perf_counter() - t0,
                     source_flags=len(out.answer.flags) if out.answer else 0)


class RemoteTarget:
    """A running ``genstack serve``, through its OpenAI-compatible API (the server applies its own guard)."""

    def __init__(self, url: str, *, api_key: str | None = None, model: str | None = None,
                 max_tokens: int = REPLY_TOKENS, timeout: float = 300.0):
        import httpx

        self.base = url.rstrip("/")
        if not self.base.endswith("/v1"):
            self.base += "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(headers=headers, timeout=timeout)
        self.max_tokens, self.name, self.api_key = max_tokens, url, api_key
        try:
            models = self.http.get(self.base + "/models").raise_for_status().json()["data"]
        except Exception as exc:  # noqa: BLE001 - one line for any connection or protocol failure
            raise GenstackError(f"cannot reach a genstack server at {url}: {exc}") from None
        plain = [m["id"] for m in models if not m["id"].startswith("rag:") and m.get("genstack_kind", "generator") != "embedder"]
        self.model = model or (plain[0] if plain else None)
        if not self.model:
            raise GenstackError(f"the server at {url} lists no generator model")

    def _post(self, body: dict) -> Reply:
        t0 = time.perf_counter()
        r = self.http.post(self.base + "/chat/completions", json={"model": self.model, "temperature": 0, **body})
        data = r.json()
        if r.status_code == 400 and data.get("error", {}).get("code") == "input_blocked":
            return Reply("", blocked="input", flagged=True, seconds=time.perf_counter() - t0)
        if r.status_code != 200:
            raise GenstackError(f"{self.name}: HTTP {r.status_code}: {data.get('error', {}).get('message', r.text)[:200]}")
        g = data.get("genstack") or {}
        guard = g.get("guard") or {}
        return Reply(data["choices"][0]["message"]["content"] or "", blocked=guard.get("blocked"),
                     flagged=bool((guard.get("input") or {}).get("flagged")), abstained=bool(g.get("abstained")),
                     seconds=time.perf_counter() - t0, source_flags=len(g.get("flags") or []))

    def chat(self, messages: Sequence[Message]) -> Reply:
        return self._post({"messages": [{"role": m.role, "content": m.content} for m in messages],
                           "max_tokens": self.max_tokens})

    def ask(self, question: str, documents: Sequence[str]) -> Reply:
        return self._post({"messages": [{"role": "user", "content": question}], "documents": list(documents),
                           "max_tokens": self.max_tokens})

    def screen(self, text: str) -> bool:
        reply = self._post({"messages": [{"role": "user", "content": text}], "max_tokens": 1})
        return reply.flagged or reply.blocked == "input"
