"""Who gets the cores when one process both embeds and generates.

llama.cpp decodes with its own OpenMP team, one thread per core. PyTorch runs
an embedding on a second OpenMP team of the same size. Once torch has run a
parallel region beside a loaded llama.cpp model, the two teams contend for
the same cores and llama.cpp decode slows by 30-45% for the rest of the
process's life, with fewer cores busy, not more (measured in
``benchmarks/RESULTS.md``: 167 -> 100 tokens/s single-stream, 450 -> 250 with
16 batched sequences, on 2 cores). Short embeddings (queries, guard checks)
gain nothing from a second thread anyway.

So the rule, the same in every entry point: while a llama.cpp model is loaded
in this process, torch embeds on one thread. A process that only embeds
(``genstack ingest``) keeps every core. An embedder configured with an
explicit thread count keeps it.

BLAS is the third team. numpy's OpenBLAS workers spin for about 0.1 s after each
call before they sleep; a query embedded right after a vector scan found both
cores taken and took ~95 ms instead of ~10 (p95 of single SciFact queries,
``benchmarks/RESULTS.md``). The stores' scans that are small enough run with BLAS
on one thread (:func:`blas_one_thread`), which leaves no worker spinning.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading

from .config import available_cores

__all__ = ["generation_loaded", "generation_unloaded", "embedding_threads", "apply_torch_threads", "blas_one_thread"]

_lock = threading.Lock()
_generators = 0


def generation_loaded() -> None:
    """A llama.cpp model has loaded its weights in this process."""
    global _generators
    with _lock:
        _generators += 1
    apply_torch_threads(None)


def generation_unloaded() -> None:
    global _generators
    with _lock:
        _generators = max(0, _generators - 1)


def embedding_threads(configured: int | None) -> int | None:
    """Threads torch should use for an embedding now (None: torch's default, every core)."""
    if configured:
        return configured
    return 1 if _generators else None


def apply_torch_threads(configured: int | None) -> None:
    """Set torch's intra-op threads for the rule above, if torch is imported (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    want = embedding_threads(configured) or available_cores()
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


@functools.cache
def _blas():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a BLAS without the controller: its own threading, as numpy ships it
        return None
    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


def blas_one_thread():
    """A context in which numpy's BLAS runs on one thread (a few microseconds to enter)."""
    blas = _blas()
    return blas.limit(limits=1) if blas is not None else contextlib.nullcontext()
