"""Embedders behind one small interface, and the lookup by name."""

from __future__ import annotations

import functools
from typing import Any

from ..config import Settings, load_settings
from ..errors import InvalidParameter
from ..plugins import load_plugin
from .base import PRECISIONS, Embedder, mismatch, split_precision, with_precision

__all__ = ["Embedder", "get_embedder", "default_embedder_spec", "split_precision", "with_precision", "mismatch",
           "PRECISIONS", "cpu_has_bf16"]

_BUILTIN = {
    "sentence-transformers": "genstack.embeddings.sentence_transformers:SentenceTransformerEmbedder",
    "fake": "genstack.embeddings.fake:FakeEmbedder",
    "openai": "genstack.embeddings.remote:OpenAIEmbedder",
}


def _backend(name: str) -> type:
    return load_plugin("genstack.embedders", name, _BUILTIN, what="embedder backend")


@functools.cache  # read once: the server asks for every request that names no embedder
def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (AVX512-BF16 or AMX-BF16; Linux flags).

    Elsewhere torch still runs bf16, emulated and slower than fp32, so "auto" picks fp32 there."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def default_embedder_spec(settings: Settings | None = None) -> str:
    """The embedder new collections get: ``settings.default_embedder`` in ``settings.embed_precision``
    (``auto``: bf16 where the CPU has bf16 instructions), spelled as collections record it."""
    from ..models.registry import REGISTRY

    settings = settings or load_settings()
    name = settings.default_embedder
    spec = REGISTRY.get(name)
    if spec is None or spec.backend != "sentence-transformers":
        return name  # a remote, fake, folder or plugin embedder, or one already suffixed
    precision = settings.embed_precision
    if precision == "auto":
        precision = "bf16" if cpu_has_bf16() else "fp32"
    return with_precision(name, precision)


def get_embedder(name: str | None = None, *, settings: Settings | None = None, **options: Any) -> Embedder:
    """An embedder by registry name (``minilm-l6-v2``, or ``minilm-l6-v2@bf16`` for its bf16
    arithmetic), folder path, or ``fake[:dim]``; no name is :func:`default_embedder_spec`."""
    from pathlib import Path

    from ..models.registry import REGISTRY, resolve_model_file

    settings = settings or load_settings()
    name = name or default_embedder_spec(settings)
    if name == "fake" or name.startswith("fake:"):
        dim = name.partition(":")[2]
        if dim and not dim.isdigit():
            raise InvalidParameter(f"fake embedder dimension must be a number, got {dim!r}")
        return _backend("fake")(dim=int(dim) if dim else 64)
    remote = settings.models.get(name)
    if remote is not None and remote.get("kind") == "embedding":  # [models.NAME] kind = "embedding"
        # the collection records the resolved openai:MODEL@URL, not the alias, so it is found again as it was
        table = {k: v for k, v in remote.items() if k not in ("kind", "context_length")}
        return _backend("openai")(None, **{**table, **options})
    from ..plugins import split_spec

    named = split_spec(name, "genstack.embedders", _BUILTIN)
    if named is not None:  # BACKEND:ARG, for any installed embedder backend (a plugin's included)
        emb = _backend(named[0])(named[1] or None, **options)
        emb.name = name  # what the collection records, so it is found again by the same spec
        return emb
    base, precision = split_precision(name)
    if precision != "fp32":
        options = {**options, "precision": precision}
    spec = REGISTRY.get(base)
    if spec is not None:
        if spec.kind != "embedding":
            raise InvalidParameter(f"{base!r} is a {spec.kind} model, not an embedder")
        if precision != "fp32" and spec.backend != "sentence-transformers":
            raise InvalidParameter(f"{base!r} runs on {spec.backend}, which has no @{precision} variant")
        _, path = resolve_model_file(base, settings)  # verifies the sha256
        return _backend(spec.backend)(path, name=name, **options)
    folder = Path(base).expanduser()
    if folder.is_dir() and (folder / "config.json").is_file():
        return _backend("sentence-transformers")(folder, name=with_precision(str(folder), precision), **options)
    embedders = ", ".join(n for n, s in REGISTRY.items() if s.kind == "embedding")
    raise InvalidParameter(f"unknown embedder {name!r}: not a registered name ({embedders}), 'fake', or a model folder")
