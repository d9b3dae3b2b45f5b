"""Embedders behind one small interface, and the lookup by name."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from ..config import Settings, load_settings
from ..errors import BackendNotFound, InvalidParameter
from .base import Embedder

__all__ = ["Embedder", "get_embedder"]

_BUILTIN = {
    "sentence-transformers": "genstack.embeddings.sentence_transformers:SentenceTransformerEmbedder",
    "fake": "genstack.embeddings.fake:FakeEmbedder",
}


def _backend(name: str) -> type:
    import importlib

    for ep in entry_points(group="genstack.embedders"):
        if ep.name == name:
            return ep.load()
    if name in _BUILTIN:
        module, _, attr = _BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    raise BackendNotFound(f"no embedder backend named {name!r} is installed")


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
