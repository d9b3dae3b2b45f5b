"""The default generator backend: llama.cpp through llama-cpp-python.

genstack owns the decode loop (on top of ``Llama.generate``) so that every
backend reports usage, finish reasons and stop sequences the same way, and so
the exact prompt is always known (``--show-prompt``). Chat prompts are
rendered with the model's own Jinja chat template from the GGUF metadata, in a
sandboxed Jinja environment.

Loading is lazy: the constructor only reads the GGUF header; the weights load
on the first request or on :meth:`warm_up`.

A soft prompt (``genstack tune sft --method prompt-tuning``) is a few learned input vectors put
before every prompt, as PEFT puts them in training: they are decoded once through
``llama_batch.embd`` at positions 0..n-1 and kept in the KV cache, and every prompt, score and
log-probability is computed after them.
"""

from __future__ import annotations

import atexit
import codecs
import dataclasses
import os
import threading
import weakref
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..config import Settings, load_settings
from ..errors import GenstackError, InvalidParameter
from ..generation import Chunk, GenerationRequest, Message, StopMatcher, Usage, check_context
from .base import Model
from .formats import GGUFInfo, read_gguf
from .llamacpp_scoring import Scoring
from .soft_prompt import SOFT_TOKEN, load_soft_prompt, prime

__all__ = ["LlamaCppModel"]

# Chat format for models that ship without a template (base models).
PLAIN_CHAT = (
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ m.content }}\n\n"
    "{% elif m.role == 'user' %}User: {{ m.content }}\n"
    "{% else %}Assistant: {{ m.content }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
#: llama.cpp models load one at a time: two ``Llama(...)`` in two threads at once (an arena battle's
#: first round, or first requests to two models in the server) ended the process silently with exit
#: code 0 in most runs seen; loaded one after the other, never (tests/test_arena_integration.py)
_LOAD_LOCK = threading.Lock()

#: where the model's turn ends in PLAIN_CHAT: chat requests to a template-less model stop there
PLAIN_TURN = "\nUser:"


#: tokens of KV cache per batching slot (prompt + answer); 16 slots of 2048 take ~0.2 GB for SmolLM2-135M
BATCH_SLOT_CTX = 2048

#: models whose weights are loaded; freed at exit, before llama.cpp's own module teardown
#: (otherwise llama_cpp's __del__ runs after its globals are gone and prints a traceback)
_LOADED: "weakref.WeakSet[LlamaCppModel]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for m in list(_LOADED):
        try:
            m.close()
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


class LlamaCppModel(Scoring, Model):
    supports_schema = True  # a llama.cpp grammar built from the schema
    supports_tools = True  # calls generated under the grammar of the tools' schemas (genstack.agents.calling)
    supports_loglikelihood = True
    supports_logprobs = True
    supports_prompt_logprobs = True
    supports_batching = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        settings: Settings | None = None,
        chat: bool = True,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        n_batch: int | None = None,
        n_ubatch: int | None = None,
        flash_attn: bool | None = None,
        soft_prompt: str | os.PathLike[str] | None = None,
        **llama_kwargs: Any,
    ):
        s = settings or load_settings()
        self.path = Path(path)
        self.source_path = self.path
        self.name = name or self.path.name
        self.is_chat = chat
        self.info: GGUFInfo = read_gguf(self.path)
        from .requantize import choose_weights

        self.weights = choose_weights(s.weights, self.info.quantization)
        if self.weights != "original":
            from .registry import verify_sha256
            from .requantize import derived_weights

            digest = verify_sha256(self.path, None, s.cache_dir / "model-hashes.json")
            self.path = derived_weights(self.path, self.weights, digest, s.data_dir)
            self.info = read_gguf(self.path)
        trained = self.info.context_length or 2048
        self._n_ctx = n_ctx or s.n_ctx or min(trained, s.max_ctx)
        if self._n_ctx < 16:
            raise InvalidParameter(f"n_ctx must be at least 16, got {self._n_ctx}")
        #: the soft prompt's vectors, (virtual tokens, n_embd) float32, or None
        self.soft_prompt = None
        if soft_prompt is not None:
            self.soft_prompt = load_soft_prompt(soft_prompt, self.info.arch_value("embedding_length"))
            if len(self.soft_prompt) + 16 > self._n_ctx:
                raise InvalidParameter(f"a {len(self.soft_prompt)}-vector soft prompt leaves no room in n_ctx {self._n_ctx}")
            self.supports_batching = False  # each batching slot would need its own copy in the KV cache
        threads, batch_threads = s.threads()
        self._llama_kwargs = dict(
            n_ctx=self._n_ctx,
            n_threads=n_threads or threads,
            n_threads_batch=n_threads_batch or batch_threads,
            n_batch=n_batch or s.n_batch,
            n_ubatch=n_ubatch or s.n_ubatch,
            flash_attn=s.flash_attn if flash_attn is None else flash_attn,
            verbose=False,
            **llama_kwargs,
        )
        self._llm = None
        self._lock = threading.RLock()
        self._template = None
        self._batcher = None

    # -- loading -------------------------------------------------------------------
    @property
    def llama(self):
        """The underlying ``llama_cpp.Llama`` (loads the weights on first use)."""
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    try:
                        from llama_cpp import Llama
                    except ImportError:  # pragma: no cover - core dependency
                        raise GenstackError("llama-cpp-python is not installed: pip install llama-cpp-python") from None
                    import contextlib
                    import io

                    # llama.cpp's load-time warnings (e.g. Gemma's "using full-size SWA cache") reach
                    # Python's sys.stderr through llama-cpp-python's log callback even with verbose=False;
                    # they are kept and shown only when the load fails
                    log = io.StringIO()
                    try:
                        with _LOAD_LOCK, contextlib.redirect_stderr(log):  # one load at a time (see _LOAD_LOCK)
                            self._llm = Llama(model_path=str(self.path), **self._llama_kwargs)
                    except (ValueError, RuntimeError) as exc:
                        detail = log.getvalue().strip().splitlines()
                        hint = f" (llama.cpp said: {detail[-1]})" if detail else ""
                        raise GenstackError(f"llama.cpp could not load {self.path}: {exc}{hint}") from None
                    _LOADED.add(self)
                    from .._cores import generation_loaded

                    generation_loaded()  # torch embeds on one thread from now on (see genstack._cores)
        return self._llm

    def close(self) -> None:
        """Free the weights and contexts now (they load again on next use)."""
        with self._lock:
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None
            if self._llm is not None:
                from .._cores import generation_unloaded

                self._llm.close()
                self._llm = None
                generation_unloaded()
            _LOADED.discard(self)

    def warm_up(self) -> None:
        self.llama  # noqa: B018

    def enable_batching(self, slots: int, kv: str = "unified") -> None:
        """Decode up to ``slots`` requests together (see :mod:`genstack.models.batching`);
        requests with a JSON schema keep the ordinary path. ``kv="split"`` keeps greedy output
        identical to the unbatched path at lower throughput (``batching.KV_MODES``). A model with a
        soft prompt does not batch (``supports_batching`` is False)."""
        from .batching import BatchScheduler

        if self._batcher is None and slots > 1 and self.supports_batching:
            # each slot holds BATCH_SLOT_CTX tokens; longer requests take the ordinary path
            self._batcher = BatchScheduler(self, slots, n_ctx=min(self._n_ctx, BATCH_SLOT_CTX),
                                           n_batch=max(512, self._llama_kwargs["n_batch"] or 512), kv=kv)
            self._batcher.start()  # creates the batch context now, not on the first request

    @property
    def batching(self) -> bool:
        return self._batcher is not None

    @property
    def batcher(self):
        """The :class:`~genstack.models.batching.BatchScheduler`, once batching is enabled (its counters feed /metrics)."""
        return self._batcher

    @property
    def context_length(self) -> int:
        return self._n_ctx

    @property
    def settings_used(self) -> dict[str, Any]:
        return {k: v for k, v in self._llama_kwargs.items() if k != "verbose"}

    # -- tokens and templates ------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool | None = None) -> list[int]:
        if add_bos is None:
            add_bos = self._wants_bos(text)
        return self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _token_text(self, key: str) -> str:
        tid = self.info.metadata.get(f"tokenizer.ggml.{key}_token_id")
        if tid is None:
            return ""
        return self.llama.detokenize([tid], special=True).decode("utf-8", errors="replace")

    def _wants_bos(self, text: str) -> bool:
        if not self.info.metadata.get("tokenizer.ggml.add_bos_token", True):
            return False
        bos = self._token_text("bos")
        return not (bos and text.startswith(bos))

    @property
    def chat_template(self) -> str:
        return self.info.chat_template or PLAIN_CHAT

    def render_chat(self, messages: Sequence[Message]) -> str:
        if self._template is None:
            from jinja2 import TemplateError
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message: str):
                raise TemplateError(message)

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = raise_exception
            try:
                self._template = env.from_string(self.chat_template)
            except TemplateError as exc:
                raise GenstackError(f"{self.name}: its chat template does not parse: {exc}") from None
        from jinja2 import TemplateError

        try:
            return self._template.render(
                messages=[m.to_dict() for m in messages],
                add_generation_prompt=True,
                bos_token=self._token_text("bos"),
                eos_token=self._token_text("eos"),
            )
        except TemplateError as exc:
            raise InvalidParameter(f"{self.name}'s chat template rejected the messages: {exc}") from None

    # -- generation ----------------------------------------------------------------
    def execute(self, request: GenerationRequest) -> Iterator[Chunk]:
        if request.messages is not None:
            prompt = self.render_chat(request.messages)
            if not self.info.chat_template and PLAIN_TURN not in request.params.stop:
                # a base model chatting through PLAIN_CHAT would go on to write the user's next turn
                request = dataclasses.replace(
                    request, params=request.params.replace(stop=tuple(request.params.stop) + (PLAIN_TURN,)))
        else:
            prompt = request.prompt or ""
        tokens = self.tokenize(prompt)
        if not tokens:
            raise InvalidParameter("the prompt is empty")
        max_tokens = check_context(len(tokens), request.params.max_tokens, self._n_ctx - self._n_soft,
                                   request.on_overflow)
        if (self._batcher is not None and request.json_schema is None
                and len(tokens) + max_tokens <= self._batcher.n_ctx):
            return self._batcher.submit(tokens, request.params, max_tokens)
        return self._decode(tokens, request, max_tokens)

    def _decode(self, tokens: list[int], request: GenerationRequest, max_tokens: int) -> Iterator[Chunk]:
        import llama_cpp

        p = request.params
        llm = self.llama
        vocab = llm._model.vocab
        matcher = StopMatcher(p.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        n_out, finish = 0, "length"
        grammar = self._grammar(request.json_schema) if request.json_schema is not None else None
        with self._lock:
            llm.set_seed(int(p.seed if p.seed is not None else 0))
            # after the soft prompt, if any: llama-cpp-python's prefix match keeps it in the cache
            gen = llm.generate(
                [SOFT_TOKEN] * self._prime(llm) + list(tokens),
                grammar=grammar,
                temp=0.0 if p.is_greedy else p.temperature,
                top_k=p.top_k,
                top_p=p.top_p,
                min_p=p.min_p,
                repeat_penalty=p.repeat_penalty,
                reset=True,
            )
            try:
                for token in gen:
                    if llama_cpp.llama_vocab_is_eog(vocab, token):
                        finish = "stop"
                        break
                    n_out += 1
                    text = matcher.feed(decoder.decode(llm.detokenize([token])))
                    if text:
                        yield Chunk(text)
                    if matcher.stopped:
                        finish = "stop"
                        break
                    if n_out >= max_tokens:
                        break
            finally:
                gen.close()
        tail = "" if matcher.stopped else matcher.feed(decoder.decode(b"", final=True)) + matcher.flush()
        if matcher.stopped:
            finish = "stop"
        yield Chunk(tail, finish_reason=finish, usage=Usage(len(tokens), n_out))  # type: ignore[arg-type]

    def _grammar(self, schema: dict):
        """A llama.cpp grammar that only admits JSON valid for ``schema`` (cached per schema)."""
        import json

        from llama_cpp import LlamaGrammar

        from ..prompts.structured import bounded

        key = json.dumps(schema, sort_keys=True)
        cache = self.__dict__.setdefault("_grammars", {})
        if key not in cache:
            try:  # free strings and arrays get bounds, so the JSON always closes
                cache[key] = LlamaGrammar.from_json_schema(json.dumps(bounded(schema)), verbose=False)
            except Exception as exc:  # the converter raises bare exceptions on unsupported schemas
                raise InvalidParameter(f"this JSON schema cannot be turned into a grammar: {exc}") from None
        return cache[key]

    # -- the soft prompt (genstack.models.soft_prompt) ------------------------------
    @property
    def _n_soft(self) -> int:
        return 0 if self.soft_prompt is None else len(self.soft_prompt)

    def _prime(self, llm) -> int:
        """The soft prompt's length, once the KV cache starts with it (0 without one)."""
        return 0 if self.soft_prompt is None else prime(llm, self.soft_prompt)

    def _rewind(self, llm) -> int:
        """Back to the start of the context: just after the soft prompt, if any; its length."""
        if self.soft_prompt is None:
            llm.reset()
            return 0
        llm.n_tokens = prime(llm, self.soft_prompt)
        llm._requires_eval = True  # the logits are not those of the position the cache ends at
        return llm.n_tokens
