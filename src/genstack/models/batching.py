"""Continuous batching for llama.cpp: many requests decode together in one context.

A llama.cpp context can hold several sequences. :class:`BatchScheduler` owns
one such context (``slots`` sequences, each with ``n_ctx`` tokens of KV
cache) beside the model's ordinary one, and runs one thread that, at every
step, builds a single ``llama_batch`` holding

- the next token of every sequence that is decoding, and
- a chunk of the prompt of every sequence still reading its prompt,

calls ``llama_decode`` once, and samples each sequence's next token from its
own logits.

A slot keeps its KV cache when its request ends. A new request takes the free
slot whose cached tokens share the longest prefix with its prompt and reads
only the rest: requests that share a system prompt (and chat template) skip
it, as llama.cpp's own server does with ``cache_prompt``. A request joins at the next step and leaves when it ends, so a
short answer never waits for a long one. On a CPU a decode step costs little
more for 16 tokens than for one (the weights are read once per step), which
is where the aggregate throughput comes from.

Each sequence samples with llama.cpp's own sampler chain, built as the unbatched
path builds it (:func:`sampler_chain`) and seeded with the request's seed, so with
``kv="split"`` greedy and seeded output is identical to the unbatched path (the
default, ``"unified"``, is faster and identical only up to float rounding; see
``KV_MODES``). Requests with a JSON schema (a grammar) use the model's ordinary
path.
"""

from __future__ import annotations

import codecs
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import GenstackError
from ..generation import Chunk, SamplingParams, StopMatcher, Usage

__all__ = ["BatchScheduler", "KV_MODES"]

#: how the slots share the KV cache:
#: "unified": one buffer for every sequence, attention masked across it. The fast mode: on the
#: serve_load workload (16 streams, a shared system prompt, slots reused) 417 tokens/s in-process
#: against 245 for "split", whose decode steps slowed ~3x once slots were reused (RESULTS.md).
#: A sequence's logits then depend, at the level of float rounding, on what else is cached, so a
#: greedy answer can differ from the unbatched one.
#: "split": a buffer per sequence. Greedy and seeded output is identical to the unbatched path
#: whatever runs beside it.
KV_MODES = ("unified", "split")

_END = object()


@dataclass
class _Seq:
    tokens: list[int]
    params: SamplingParams
    max_tokens: int
    out: "queue.Queue" = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    slot: int = -1
    fed: int = 0  # prompt tokens already in the KV cache
    n_out: int = 0
    history: list[int] = field(default_factory=list)
    row: int = -1  # batch row whose logits belong to this sequence
    kv: list[int] = field(default_factory=list)  # tokens decoded into the slot's KV cache, in order

    def __post_init__(self):
        self.sampler = None  # llama.cpp's sampler chain (sampler_chain), made at the sequence's first token
        self.matcher = StopMatcher(self.params.stop)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")


class BatchScheduler:
    def __init__(self, model, slots: int = 8, n_ctx: int | None = None, n_batch: int = 512, kv: str = "unified"):
        if slots < 1:
            raise ValueError("slots must be at least 1")
        if kv not in KV_MODES:
            raise ValueError(f"kv must be one of {', '.join(KV_MODES)}, got {kv!r}")
        self.kv = kv
        self.model, self.slots = model, slots
        self.n_ctx = n_ctx or model.context_length
        self.n_batch = max(n_batch, slots)
        self._pending: "queue.Queue[_Seq]" = queue.Queue()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self._ready = threading.Event()
        #: prompt tokens read from a slot's cache instead of being decoded again
        self.reused_tokens = 0
        self.prompt_tokens = 0
        #: decode steps, tokens put through them, and seconds spent in llama_decode
        self.steps = self.step_tokens = 0
        self.decode_seconds = 0.0

    # -- the client side ----------------------------------------------------------------
    def submit(self, tokens: list[int], params: SamplingParams, max_tokens: int) -> Iterator[Chunk]:
        """Stream the chunks of one generation (the last one has finish_reason and usage)."""
        if len(tokens) + max_tokens > self.n_ctx:
            raise GenstackError(f"the prompt and answer need {len(tokens) + max_tokens} tokens; a batch slot has {self.n_ctx}")
        self._start()
        seq = _Seq(list(tokens), params, max_tokens)
        self._pending.put(seq)
        self._wake.set()

        def chunks() -> Iterator[Chunk]:
            try:
                while True:
                    item = seq.out.get()
                    if item is _END:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                seq.cancelled.set()  # a consumer that stops early frees the slot
                self._wake.set()

        return chunks()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the scheduler thread -----------------------------------------------------------
    def start(self) -> None:
        """Create the batch context and start the scheduler thread now (otherwise on first use)."""
        self._start()
        self._ready.wait(timeout=120)
        if self._error is not None:
            raise GenstackError(f"the batch scheduler could not start: {self._error}")

    def _start(self) -> None:
        with self._lock:
            if self._error is not None:
                raise GenstackError(f"the batch scheduler stopped: {self._error}")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="genstack-batch", daemon=True)
                self._thread.start()

    def _setup(self):
        import llama_cpp as L

        llm = self.model.llama
        p = L.llama_context_default_params()
        p.n_ctx = self.n_ctx * self.slots
        p.n_batch = self.n_batch
        p.n_ubatch = min(self.n_batch, 512)
        p.n_seq_max = self.slots
        threads = llm.context_params.n_threads
        p.n_threads = threads
        p.n_threads_batch = llm.context_params.n_threads_batch
        p.kv_unified = self.kv == "unified"
        ctx = L.llama_init_from_model(llm._model.model, p)
        if not ctx:
            raise GenstackError("llama.cpp could not create the batch context")
        batch = L.llama_batch_init(self.n_batch, 0, 1)
        return L, llm, ctx, batch

    def _run(self) -> None:
        try:
            L, llm, ctx, batch = self._setup()
        except BaseException as exc:  # noqa: BLE001 - reported to every waiting request
            self._error = exc
            self._ready.set()
            self._fail_all(exc)
            return
        self._ready.set()
        mem = L.llama_get_memory(ctx)
        vocab = llm._model.vocab
        n_vocab = llm.n_vocab()
        free = list(range(self.slots))
        cached: dict[int, list[int]] = {}  # free slot -> the tokens its KV cache still holds
        active: list[_Seq] = []
        try:
            while not self._closed:
                # admit waiting requests into free slots
                while free:
                    try:
                        seq = self._pending.get_nowait()
                    except queue.Empty:
                        break
                    if seq.cancelled.is_set():
                        seq.out.put(_END)
                        continue
                    self._admit(L, mem, seq, free, cached)
                    active.append(seq)
                for seq in [s for s in active if s.cancelled.is_set()]:
                    self._release(seq, active, free, cached)
                if not active:
                    self._wake.wait(timeout=0.5)
                    self._wake.clear()
                    continue
                # one batch: the next token of every decoding sequence, then prompt chunks
                batch.n_tokens = 0
                budget = self.n_batch
                decoding = [s for s in active if s.fed == len(s.tokens)]
                for s in decoding:
                    self._add(batch, s.history[-1], len(s.tokens) + s.n_out - 1, s.slot, True)
                    s.kv.append(s.history[-1])
                    s.row = batch.n_tokens - 1
                    budget -= 1
                for s in active:
                    if s.fed < len(s.tokens) and budget > 0:
                        take = min(budget, len(s.tokens) - s.fed)
                        for j in range(s.fed, s.fed + take):
                            self._add(batch, s.tokens[j], j, s.slot, j == len(s.tokens) - 1)
                        s.kv.extend(s.tokens[s.fed:s.fed + take])
                        s.fed += take
                        budget -= take
                        s.row = batch.n_tokens - 1 if s.fed == len(s.tokens) else -1
                t0 = time.perf_counter()
                rc = L.llama_decode(ctx, batch)
                self.decode_seconds += time.perf_counter() - t0
                self.steps += 1
                self.step_tokens += batch.n_tokens
                if rc != 0:
                    raise GenstackError(f"llama_decode failed ({rc})")
                for s in list(active):
                    if s.row < 0:
                        continue
                    if s.sampler is None:
                        s.sampler = sampler_chain(s.params, n_vocab, llm.last_n_tokens_size)
                    token = L.llama_sampler_sample(s.sampler, ctx, s.row)  # accepts the token too
                    s.row = -1
                    if L.llama_vocab_is_eog(vocab, token):
                        self._finish(s, "stop")
                        self._release(s, active, free, cached)
                        continue
                    s.n_out += 1
                    s.history.append(token)
                    text = s.matcher.feed(s.decoder.decode(llm.detokenize([token])))
                    if text:
                        s.out.put(Chunk(text))
                    if s.matcher.stopped or s.n_out >= s.max_tokens:
                        self._finish(s, "stop" if s.matcher.stopped else "length")
                        self._release(s, active, free, cached)
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            for s in active:
                s.out.put(GenstackError(f"generation failed: {exc}"))
            self._fail_all(exc)
        finally:
            for s in active:
                if s.sampler is not None:
                    L.llama_sampler_free(s.sampler)
            L.llama_batch_free(batch)
            L.llama_free(ctx)

    @staticmethod
    def _add(batch, token: int, pos: int, seq: int, logits: bool) -> None:
        i = batch.n_tokens
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits
        batch.n_tokens = i + 1

    @staticmethod
    def _finish(s: _Seq, reason: str) -> None:
        tail = "" if s.matcher.stopped else s.matcher.feed(s.decoder.decode(b"", final=True)) + s.matcher.flush()
        s.out.put(Chunk(tail, finish_reason=reason, usage=Usage(len(s.tokens), s.n_out)))  # type: ignore[arg-type]
        s.out.put(_END)

    def _admit(self, L, mem, seq: _Seq, free: list, cached: dict) -> None:
        """Give ``seq`` the free slot whose cache shares the longest prefix with its prompt."""
        def shared(slot: int) -> int:
            old, n = cached.get(slot, ()), 0
            for a, b in zip(old, seq.tokens):
                if a != b:
                    break
                n += 1
            return n

        slot = max(free, key=shared)
        free.remove(slot)
        keep = min(shared(slot), len(seq.tokens) - 1)  # the last prompt token is always decoded: its logits are needed
        if keep <= 0 or not L.llama_memory_seq_rm(mem, slot, keep, -1):
            keep = 0
            L.llama_memory_seq_rm(mem, slot, -1, -1)
        cached.pop(slot, None)
        seq.slot, seq.fed, seq.kv = slot, keep, list(seq.tokens[:keep])
        self.reused_tokens += keep
        self.prompt_tokens += len(seq.tokens)

    @staticmethod
    def _release(s: _Seq, active: list, free: list, cached: dict) -> None:
        if s.sampler is not None:
            import llama_cpp as L

            L.llama_sampler_free(s.sampler)
            s.sampler = None
        if s in active:
            active.remove(s)
            cached[s.slot] = s.kv  # kept for the next request that shares a prefix with it
            free.append(s.slot)
        if s.cancelled.is_set():
            s.out.put(_END)

    def _fail_all(self, exc: BaseException) -> None:
        while True:
            try:
                seq = self._pending.get_nowait()
            except queue.Empty:
                return
            seq.out.put(GenstackError(f"generation failed: {exc}"))


def sampler_chain(params: SamplingParams, n_vocab: int, last_n: int):
    """llama.cpp's sampler chain for one sequence, built as llama-cpp-python's ``Llama._init_sampler``
    builds it for ``Llama.generate`` (the unbatched path): repeat penalty over the last ``last_n``
    generated tokens, then greedy, or top-k, typical (off), top-p, min-p, temperature and a draw seeded
    with the request's seed. The same logits and seed therefore give the same token as one request at
    a time; free it with ``llama_sampler_free``."""
    import llama_cpp as L

    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_penalties(n_vocab, last_n, params.repeat_penalty, 0.0, 0.0))
    if params.is_greedy:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        return chain
    for sampler in (L.llama_sampler_init_top_k(params.top_k), L.llama_sampler_init_typical(1.0, 1),
                    L.llama_sampler_init_top_p(params.top_p, 1), L.llama_sampler_init_min_p(params.min_p, 1),
                    L.llama_sampler_init_temp(params.temperature),
                    L.llama_sampler_init_dist(int(params.seed if params.seed is not None else 0))):
        L.llama_sampler_chain_add(chain, sampler)
    return chain
