"""Soft prompts in llama.cpp: learned input vectors decoded before every prompt.

Prompt tuning (``genstack tune sft --method prompt-tuning``, PEFT's ``PromptTuningConfig``) learns
a few vectors that the model reads as if they were the embeddings of tokens before the prompt;
no token has them, so they cannot be written as text. llama.cpp takes such vectors directly:
a ``llama_batch`` made with ``embd > 0`` carries floats instead of token ids (the path its
multimodal models use for image embeddings). genstack decodes the soft prompt that way at
positions 0..n-1, as PEFT places it in training, and keeps it in the KV cache; every prompt then
goes after it. Architectures that scale token embeddings (Gemma's sqrt(n_embd)) scale only token
ids in llama.cpp, as PEFT leaves its virtual tokens unscaled, so the vectors go in as trained.

In llama-cpp-python's ``input_ids`` the virtual positions hold :data:`SOFT_TOKEN`, an id no token
has, so its prefix matching (``Llama.generate``) keeps them cached from one request to the next.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import GenstackError

__all__ = ["SOFT_TOKEN", "load_soft_prompt", "prime"]

#: what stands in ``Llama.input_ids`` where the soft prompt's virtual tokens sit
SOFT_TOKEN = -1


def load_soft_prompt(path: str | os.PathLike[str], n_embd: int | None):
    """A soft prompt saved by ``genstack tune`` (a ``.npy`` of shape (virtual tokens, n_embd)),
    checked against the model's embedding width."""
    import numpy as np

    try:
        arr = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GenstackError(f"cannot read the soft prompt {path}: {exc}") from None
    if (arr.ndim != 2 or not len(arr) or not np.issubdtype(arr.dtype, np.floating)
            or not np.isfinite(arr).all()):
        raise GenstackError(f"{path} is not a soft prompt: expected finite floats of shape (tokens, width), "
                            f"got {arr.dtype} {arr.shape}")
    if n_embd is not None and arr.shape[1] != int(n_embd):
        raise GenstackError(f"the soft prompt {path} is {arr.shape[1]} wide but the model's embeddings are "
                            f"{n_embd}: it was tuned for another model")
    return np.ascontiguousarray(arr, dtype=np.float32)


def prime(llm, vectors) -> int:
    """Make ``llm``'s KV cache (sequence 0) start with ``vectors``, decoding them unless they are
    there already; return their number. The caller holds the model's lock."""
    import ctypes

    import llama_cpp

    n = len(vectors)
    if llm.n_tokens >= n and bool((llm.input_ids[:n] == SOFT_TOKEN).all()):
        return n
    llm._ctx.kv_cache_seq_rm(-1, 0, -1)
    llm.n_tokens = 0
    batch = llama_cpp.llama_batch_init(n, vectors.shape[1], 1)
    try:
        batch.n_tokens = n
        ctypes.memmove(batch.embd, vectors.ctypes.data, vectors.nbytes)
        for j in range(n):
            batch.pos[j] = j
            batch.seq_id[j][0] = 0
            batch.n_seq_id[j] = 1
            batch.logits[j] = False
        rc = llama_cpp.llama_decode(llm._ctx.ctx, batch)
        if rc != 0:
            raise GenstackError(f"llama_decode failed on the soft prompt ({rc})")
    finally:
        llama_cpp.llama_batch_free(batch)
    llm.input_ids[:n] = SOFT_TOKEN
    llm.n_tokens = n
    llm._requires_eval = True
    return n
