"""Embedders behind one small interface, and the lookup by name."""

from __future__ import annotations

from typing import Any

from ..config import Settings, load_settings
from ..errors import InvalidParameter
from ..plugins import load_plugin
from .base import Embedder

__all__ = ["Embedder", "get_embedder"]

_BUILTIN = {
    "sentence-transformers": "genstack.embeddings.sentence_transformers:SentenceTransformerEmbedder",
    "fake": "genstack.embeddings.fake:FakeEmbedder",
    "openai": "genstack.embeddings.remote:OpenAIEmbedder",
}


def _backend(name: str) -> type:
    return load_plugin("genstack.embedders", name, _BUILTIN, what="embedder backend")


def get_embedder(name: str | None = None, *, settings: Settings | None = None, **options: Any) -> Embedder:
    """An embedder by registry name (``minilm-l6-v2``), folder path, or ``fake[:dim]``."""
    from pathlib import Path

    from ..models.registry import REGISTRY, resolve_model_file

    settings = settings or load_settings()
    name = name or settings.default_embedder
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
    spec = REGISTRY.get(name)
    if spec is not None:
        if spec.kind != "embedding":
            raise InvalidParameter(f"{name!r} is a {spec.kind} model, not an embedder")
        _, path = resolve_model_file(name, settings)  # verifies the sha256
        return _backend(spec.backend)(path, name=name, **options)
    folder = Path(name).expanduser()
    if folder.is_dir() and (folder / "config.json").is_file():
        return _backend("sentence-transformers")(folder, name=str(folder), **options)
    embedders = ", ".join(n for n, s in REGISTRY.items() if s.kind == "embedding")
    raise InvalidParameter(f"unknown embedder {name!r}: not a registered name ({embedders}), 'fake', or a model folder")
