"""Named collections: each one a separate store under ``<data_dir>/collections/<name>/``.

Collections are isolated by construction (separate files), names are checked
so they can never point outside the collections folder, and the embedder a
collection was built with is recorded in it: querying or adding with a
different one is refused.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import GenstackError, InvalidParameter
from .sqlite import SQLiteStore

__all__ = ["CollectionNotFound", "check_name", "collection_path", "open_collection", "list_collections",
           "delete_collection"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CollectionNotFound(GenstackError):
    """No collection of that name exists."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidParameter(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def _root(settings: Settings) -> Path:
    return settings.data_dir / "collections"


def collection_path(name: str, settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    return _root(settings) / check_name(name) / "store.sqlite"


def open_collection(name: str, settings: Settings | None = None, *, create: bool = False,
                    embedder: str | None = None, dim: int | None = None) -> SQLiteStore:
    """Open a collection's store; with ``create=True`` make it if it is missing."""
    path = collection_path(name, settings)
    if not path.is_file():
        if not create:
            known = [c["name"] for c in list_collections(settings)]
            hint = f" (collections: {', '.join(known)})" if known else " (there are no collections yet: run genstack ingest)"
            raise CollectionNotFound(f"no collection named {name!r}{hint}")
    store = SQLiteStore(path, dim=dim, embedder=embedder)
    store.name = name  # type: ignore[attr-defined]
    return store


def list_collections(settings: Settings | None = None) -> list[dict[str, Any]]:
    settings = settings or load_settings()
    root = _root(settings)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        db = d / "store.sqlite"
        if not (_NAME.match(d.name) and db.is_file()):
            continue
        store = SQLiteStore(db, read_only=True)
        try:
            size = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
            out.append({
                "name": d.name,
                "chunks": store.count(),
                "sources": len(store.sources()),
                "embedder": store.meta("embedder"),
                "dim": store.dim,
                "bytes": size,
            })
        finally:
            store.close()
    return out


def delete_collection(name: str, settings: Settings | None = None) -> None:
    path = collection_path(name, settings)
    if not path.is_file():
        raise CollectionNotFound(f"no collection named {name!r}")
    shutil.rmtree(path.parent)
