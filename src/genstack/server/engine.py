"""The server's engine: models loaded once and lazily, generation in worker
threads, and the bridge from a blocking token stream to an async one.

llama.cpp runs one sequence at a time per loaded model, so each model has a
lock; the :class:`~genstack.server.limits.Gate` bounds how many requests run
and wait. A request that is cancelled (client gone, timeout) sets an event
the worker checks between tokens: the generator is closed, the model's lock
and the gate's slot are freed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Iterator

from ..config import Settings
from ..embeddings.base import Embedder
from ..models.base import Model
from .config import ServerConfig
from .errors import APIError
from .limits import Gate

__all__ = ["Engine", "Cancelled"]

log = logging.getLogger("genstack.server")

_DONE = object()


class _NoLock:
    def acquire(self, *a, **k):
        return True

    def release(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_LOCK = _NoLock()


class Cancelled(Exception):
    """The request was cancelled before its stream finished."""


class Engine:
    def __init__(self, settings: Settings, config: ServerConfig, *, models: dict[str, Model] | None = None,
                 embedders: dict[str, Embedder] | None = None):
        self.settings, self.config = settings, config
        self._models: dict[str, Model] = dict(models or {})
        self._embedders: dict[str, Embedder] = dict(embedders or {})
        self._injected = set(self._models) | set(self._embedders)
        self._load_lock = threading.Lock()
        self._pipeline_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        #: one stateless pipeline per (collection, model), shared by concurrent requests
        self._pipelines: dict[tuple[str, str], Any] = {}
        self.executor = ThreadPoolExecutor(max_workers=config.max_concurrency + 1, thread_name_prefix="genstack-gen")
        self._gate: Gate | None = None
        self.cancelled = 0
        #: called whenever a generation is stopped early
        self.on_cancel: Callable[[], None] | None = None

    # -- registry ----------------------------------------------------------------------
    @property
    def gate(self) -> Gate:
        if self._gate is None:  # created on the running loop
            self._gate = Gate(self.config.max_concurrency, self.config.max_queue)
        return self._gate

    def generator_names(self) -> list[str]:
        names = [self.settings.default_model] + list(self.config.models) + list(self.config.arena_models)
        names += list(self._models)
        if not self.config.models:
            from ..models.registry import REGISTRY, is_installed

            names += [n for n, s in REGISTRY.items() if s.kind in ("chat", "completion") and is_installed(s)]
        return list(dict.fromkeys(names))

    def embedder_names(self) -> list[str]:
        from ..models.registry import REGISTRY, is_installed

        from ..embeddings import default_embedder_spec, with_precision

        names = [self.settings.default_embedder, default_embedder_spec(self.settings)] + list(self._embedders)
        for n, s in REGISTRY.items():
            if s.kind == "embedding" and is_installed(s):
                names += [n] + ([with_precision(n, "bf16")] if s.backend == "sentence-transformers" else [])
        return list(dict.fromkeys(names))

    def check_generator(self, name: str) -> None:
        """404 unless ``name`` is a generator this server serves (nothing is loaded)."""
        if name not in self._models and name not in self.generator_names():
            raise APIError(404, f"the model {name!r} does not exist or is not served here; "
                                "GET /v1/models lists the models", code="model_not_found", param="model")

    def model(self, name: str) -> Model:
        """The loaded generator ``name`` (loaded once; 404 when not served)."""
        if name not in self._models:
            self.check_generator(name)
            with self._load_lock:
                if name not in self._models:
                    from ..models.registry import get_model

                    model = get_model(name, settings=self.settings)
                    if self.config.batch_slots > 1 and not model.supports_concurrency:
                        if model.supports_batching:
                            model.enable_batching(self.config.batch_slots, kv=self.config.batch_kv)
                        else:  # said, not silent: this model serves one request at a time
                            log.warning("model %r (%s) does not support batching; --batch does not apply to it",
                                        name, type(model).__name__)
                    self._models[name] = model
        return self._models[name]

    def embedder(self, name: str | None = None, *, check: bool = True) -> Embedder:
        """The loaded embedder ``name`` (404 when not served, unless ``check`` is off)."""
        if not name:
            from ..embeddings import default_embedder_spec

            name = default_embedder_spec(self.settings)
        if name not in self._embedders:
            if check and name not in self.embedder_names():
                raise APIError(404, f"the embedding model {name!r} does not exist or is not served here",
                               code="model_not_found", param="model")
            with self._load_lock:
                if name not in self._embedders:
                    from ..embeddings import get_embedder

                    self._embedders[name] = get_embedder(name, settings=self.settings)
        return self._embedders[name]

    def collection_embedder(self, collection: str, *, missing_ok: bool = False) -> Embedder:
        """The loaded embedder ``collection`` was built with (the default one for a
        collection that does not exist yet, when ``missing_ok``)."""
        from ..stores.collections import collection_exists, open_collection

        if missing_ok and not collection_exists(collection, self.settings):
            return self.embedder(None, check=False)
        store = open_collection(collection, self.settings)  # CollectionNotFound when missing
        try:
            name = store.embedder
        finally:
            store.close()
        return self.embedder(name, check=False)

    def retriever(self, collection: str):
        """A Retriever on ``collection`` that shares the engine's loaded embedder."""
        from ..retrieval import Retriever

        return Retriever(collection, self.settings, embedder=self.collection_embedder(collection))

    def rag_config(self):
        """The server's pipeline configuration: the defaults, with the guard's source mode."""
        from ..rag.config import RagConfig

        return RagConfig(injection=self.config.guard_sources)

    def pipeline(self, collection: str, model_name: str):
        """The pipeline of (collection, model), built once; it holds no per-request state."""
        from ..rag.pipeline import Pipeline

        key = (collection, model_name)
        with self._pipeline_lock:
            if key not in self._pipelines:
                self._pipelines[key] = Pipeline(self.retriever(collection), self.model(model_name),
                                                self.rag_config(), settings=self.settings, collection=collection)
            return self._pipelines[key]

    def document_pipeline(self, documents, model_name: str):
        """A pipeline over texts sent with the request (the ``documents`` field)."""
        from ..rag.pipeline import Pipeline

        return Pipeline.over_documents(documents, self.embedder(check=False), model=self.model(model_name),
                                       config=self.rag_config(), settings=self.settings)

    def forget_collection(self, collection: str) -> None:
        with self._pipeline_lock:
            keys = [k for k in self._pipelines if k[0] == collection]
            dropped = [self._pipelines.pop(k) for k in keys]
        for pipe in dropped:
            try:
                pipe.close()
            except Exception:
                pass

    def batchers(self) -> dict[str, Any]:
        """The continuous-batching scheduler of each loaded model that has one."""
        return {n: m.batcher for n, m in list(self._models.items()) if m.supports_batching and m.batcher is not None}

    def lock_for(self, name: str):
        """One request at a time per model, except for a model that batches requests itself."""
        m = self._models.get(name)
        if m is not None and (m.supports_concurrency or (m.supports_batching and m.batching)):
            return _NO_LOCK
        return self._locks[name]

    # -- running work ----------------------------------------------------------------
    async def run(self, fn: Callable[[], Any], *, lock: str | None = None, deadline: float | None = None) -> Any:
        """Run a blocking call in a worker thread behind the gate."""
        deadline = deadline or (time.monotonic() + self.config.request_timeout)
        await self.gate.acquire(max(0.001, deadline - time.monotonic()))
        loop = asyncio.get_running_loop()

        def call():
            if lock is None:
                return fn()
            with self.lock_for(lock):
                return fn()

        fut = loop.run_in_executor(self.executor, call)
        fut.add_done_callback(lambda _f: self.gate.release())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(0.001, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise APIError(504, f"the request took longer than {self.config.request_timeout:g} s",
                           code="timeout") from None

    async def stream(self, make: Callable[[], Iterator[Any]], *, lock: str | None = None,
                     deadline: float | None = None) -> AsyncIterator[Any]:
        """Run ``make()`` (a blocking iterator) in a worker thread; yield its items.

        Closing this async iterator early (client disconnect) or passing the
        deadline stops the worker at its next item; the slot is released when
        the worker has actually stopped, so the next request never shares a model.
        """
        deadline = deadline or (time.monotonic() + self.config.request_timeout)
        await self.gate.acquire(max(0.001, deadline - time.monotonic()))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def put(item):
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work():
            it = None
            try:
                held = self.lock_for(lock) if lock else None
                if held:
                    held.acquire()
                try:
                    if cancel.is_set():
                        return
                    it = make()
                    for item in it:
                        if cancel.is_set():
                            break
                        put(item)
                finally:
                    close = getattr(it, "close", None)
                    if close is not None:
                        try:
                            close()
                        except Exception:
                            pass
                    if held:
                        held.release()
            except BaseException as exc:  # delivered to the consumer
                put(exc)
            finally:
                put(_DONE)

        fut = loop.run_in_executor(self.executor, work)
        fut.add_done_callback(lambda _f: self.gate.release())
        finished = False
        held: list[Any] = []  # an item read while coalescing text, delivered next
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise APIError(504, f"the request took longer than {self.config.request_timeout:g} s",
                                   code="timeout")
                if held:
                    item = held.pop()
                else:
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except asyncio.TimeoutError:
                        raise APIError(504, f"the request took longer than {self.config.request_timeout:g} s",
                                       code="timeout") from None
                if isinstance(item, str):
                    # text that queued up while the consumer was busy goes out as one piece:
                    # under load, one SSE event carries several tokens instead of one each
                    parts = [item]
                    while not queue.empty():
                        nxt = queue.get_nowait()
                        if not isinstance(nxt, str):
                            held.append(nxt)
                            break
                        parts.append(nxt)
                    item = "".join(parts)
                if item is _DONE:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:
                cancel.set()
                self.cancelled += 1
                if self.on_cancel:
                    self.on_cancel()

    def close(self) -> None:
        for pipe in self._pipelines.values():
            try:
                pipe.close()
            except Exception:
                pass
        self._pipelines.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
