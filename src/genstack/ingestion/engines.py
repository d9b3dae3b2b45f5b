"""Where ingest's work runs: this process, or Ray actors.

An engine does two things for :func:`genstack.ingestion.ingest`, which stays
the only writer:

* ``prepare(works)``: load, split and screen each file, yielding ``(work, pieces)``
  in the order the works came, ``pieces`` an iterable of :class:`Prepared` (the local
  engine splits a big file lazily, piece by piece, so its first chunks embed while
  the rest is split; Ray sends a file back whole, as one piece);
* ``embed(texts)``: start embedding one batch and return a handle whose
  ``result()`` is the vectors.

``window`` is how many batches may be in flight before ingest waits for the
oldest and writes it. Batches are written in the order they were sent, so the
end state does not depend on the engine or on which worker finished first.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..config import Settings
from ..documents import LoaderOptions
from ..documents.splitter import Splitter
from ..embeddings import Embedder
from ..errors import GenstackError
from . import Prepared, Work, prepare_file, prepare_pieces

__all__ = ["LocalEngine", "RayEngine", "IngestWorker"]


class LocalEngine:
    """This process: files are prepared on the calling thread, batches embedded on one background
    thread (torch and the tokenizer release the GIL), so loading, splitting and the store's writes
    overlap with the embedding instead of waiting for it."""

    window = 1

    def __init__(self, embedder: Embedder, splitter: Splitter, loader_options: LoaderOptions | None = None):
        self.embedder = embedder
        self.splitter = splitter
        self.loader_options = loader_options
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="genstack-embed")

    def prepare(self, works: Iterable[Work]) -> Iterator[tuple[Work, Iterator[Prepared]]]:
        for work in works:
            yield work, prepare_pieces(work, self.splitter, self.loader_options)

    def embed(self, texts: Sequence[str]) -> Future:
        return self._pool.submit(self.embedder.embed_passages, list(texts))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class IngestWorker:
    """One Ray actor: the embedder loaded once, the same splitter as a local ingest. Its calls run
    in two concurrency groups of one thread each, ``prepare`` and ``embed``, so the next files are
    loaded and split while a batch embeds instead of queueing behind it."""

    def __init__(self, embedder: str, settings: Settings, chunk_size: int, overlap: int,
                 loader_options: LoaderOptions | None):
        import ray

        from ..embeddings import get_embedder

        self.embedder = get_embedder(embedder, settings=settings)
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        if hasattr(self.embedder, "threads") and not self.embedder.threads:
            self.embedder.threads = max(1, int(cpus))  # the CPUs Ray gave this actor, not the node's
        self.splitter = Splitter(self.embedder, chunk_size=chunk_size, overlap=overlap)
        self.loader_options = loader_options

    def pid(self) -> int:
        return os.getpid()

    def prepare(self, work: Work) -> Prepared:
        if not os.path.exists(work.path):
            import socket

            return Prepared(error=f"not readable on Ray node {socket.gethostname()}: with a cluster of several "
                                  "machines the files must be on storage every node mounts at the same path")
        return prepare_file(work, self.splitter, self.loader_options)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed_passages(texts)


class _RayResult:
    def __init__(self, ref):
        self.ref = ref

    def result(self):
        return _get(self.ref)


def _get(ref):
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
        if isinstance(cause, GenstackError):
            raise cause from None
        raise GenstackError(f"a Ray ingest worker failed: {cause or exc}".splitlines()[0]) from None
    except RayActorError:
        raise GenstackError(f"a Ray ingest worker died more than {RayEngine.RESTARTS} times; the files written "
                            "so far are kept: run the same ingest again to finish") from None


def _probe(address: str | None, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, on an address nothing listens at (``ray.init`` would retry for
    minutes). ``auto``/``local`` and unset are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise GenstackError(f"Ray address must be HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise GenstackError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class RayEngine:
    """Ray actors (``IngestWorker``), one CPU each, that load, split and embed; calls go to them in
    turn, ``2 × workers`` in flight. A killed worker is restarted by Ray and its calls retried
    (``RESTARTS`` times), so the ingest carries on; past that it stops with one clear error, and what
    was written stays written (each file in one transaction, as always)."""

    RESTARTS = 3

    def __init__(self, address: str | None, *, workers: int | None, embedder: str, settings: Settings,
                 chunk_size: int, overlap: int, loader_options: LoaderOptions | None):
        try:
            import ray
        except ImportError:
            raise GenstackError("--ray needs Ray: pip install 'genstack[ray]'") from None
        if workers is not None and workers < 1:
            raise GenstackError(f"ray workers must be at least 1, got {workers}")
        self._owns = not ray.is_initialized()
        if self._owns:
            _probe(address or os.environ.get("RAY_ADDRESS"))
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            try:
                ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False, configure_logging=True)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                raise GenstackError(f"cannot start or reach {where}: {str(exc).splitlines()[0]}") from None
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            n = workers or max(1, cpus)
            if n > cpus:  # actors that can never be placed would wait for ever
                raise GenstackError(f"--ray-workers {n} is more than the cluster's {cpus} CPUs")
            actor = ray.remote(num_cpus=1, max_restarts=self.RESTARTS, max_task_retries=self.RESTARTS,
                               concurrency_groups={"prepare": 1, "embed": 1})(IngestWorker)
            self.actors = [actor.remote(embedder, settings, chunk_size, overlap, loader_options) for _ in range(n)]
            self.pids = [_get(a.pid.remote()) for a in self.actors]  # waits until every worker has its model
        except BaseException:
            self.close()
            raise
        self.window = 2 * n  # embed batches in flight
        self.prepare_window = 16 * n  # files in flight: enough that no actor waits for the writer
        self._turns: dict[str, int] = {}

    def _next(self, kind: str):
        """Round robin, kept apart for each kind of call: embeds (the long ones) alternate between
        actors whatever number of files came between them."""
        turn = self._turns.get(kind, 0)
        self._turns[kind] = turn + 1
        return self.actors[turn % len(self.actors)]

    def prepare(self, works: Iterable[Work]) -> Iterator[tuple[Work, tuple[Prepared]]]:
        ahead: deque = deque()
        for work in works:
            ahead.append((work, self._next("prepare").prepare.options(concurrency_group="prepare").remote(work)))
            if len(ahead) >= self.prepare_window:
                w, ref = ahead.popleft()
                yield w, (_get(ref),)
        while ahead:
            w, ref = ahead.popleft()
            yield w, (_get(ref),)

    def embed(self, texts: Sequence[str]) -> _RayResult:
        return _RayResult(self._next("embed").embed.options(concurrency_group="embed").remote(list(texts)))

    def close(self) -> None:
        import ray

        for a in getattr(self, "actors", []):
            ray.kill(a)
        self.actors = []
        if self._owns and ray.is_initialized():
            ray.shutdown()
