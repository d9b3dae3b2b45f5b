"""Named collections: each one a folder under ``<data_dir>/collections/<name>/``.

Collections are isolated by construction (separate folders), names are checked
so they can never point outside the collections folder, and the embedder a
collection was built with is recorded in it: querying or adding with a
different one is refused.

Which store backend holds a collection is recorded in its ``collection.json``
(``{"store": "lancedb"}``) when it is created; a folder holding only
``store.sqlite`` is a SQLite collection (collections made before backends
were pluggable). Backends are found through the ``genstack.stores`` entry
points; new collections use ``Settings.store`` unless told otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import GenstackError, InvalidParameter
from .base import VectorStore

__all__ = ["CollectionNotFound", "check_name", "collection_dir", "collection_exists", "collection_store",
           "read_manifest", "update_manifest",
           "open_collection", "list_collections", "delete_collection", "store_backend", "store_names"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MANIFEST = "collection.json"
#: built-in stores, for a source tree that is not installed (installed ones come from entry points)
BUILTIN_STORES = {"sqlite": "genstack.stores.sqlite:SQLiteStore", "lancedb": "genstack.stores.lancedb:LanceDBStore"}


class CollectionNotFound(GenstackError):
    """No collection of that name exists."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidParameter(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def store_backend(name: str):
    """The store class registered as ``name`` in ``genstack.stores``."""
    from ..plugins import load_plugin

    return load_plugin("genstack.stores", name, BUILTIN_STORES, what="store")


def store_names() -> list[str]:
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group="genstack.stores")} | set(BUILTIN_STORES))


def _root(settings: Settings) -> Path:
    return settings.data_dir / "collections"


def collection_dir(name: str, settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    return _root(settings) / check_name(name)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The collection's ``collection.json``: ``store`` (its backend) and, once it has been ingested
    into, ``chunking`` (``{"chunk_size": N, "overlap": N}``). Empty when there is no file (SQLite
    collections made before manifests existed, or no collection at all)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return {}
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        str(data["store"])
    except (OSError, ValueError, KeyError, TypeError):
        raise GenstackError(f"{manifest} is unreadable: it should say {{\"store\": NAME}}") from None
    return data


def update_manifest(folder: Path, **fields: Any) -> None:
    """Add ``fields`` to the collection's manifest (written whole, atomically; a collection
    without one gets one naming its store)."""
    data = read_manifest(folder)
    if "store" not in data:
        store = collection_store(folder)
        if store is None:
            raise GenstackError(f"no collection in {folder}")
        data["store"] = store
    data.update(fields)
    _write_manifest(folder, data)


def collection_store(folder: Path) -> str | None:
    """The backend name of the collection in ``folder`` (None: no collection there)."""
    manifest = read_manifest(folder)
    if manifest:
        return str(manifest["store"])
    from .sqlite import SQLiteStore

    return SQLiteStore.name if SQLiteStore.exists(folder) else None


def collection_exists(name: str, settings: Settings | None = None) -> bool:
    try:
        return collection_store(collection_dir(name, settings)) is not None
    except InvalidParameter:
        return False


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def open_collection(name: str, settings: Settings | None = None, *, create: bool = False,
                    embedder: str | None = None, dim: int | None = None, store: str | None = None,
                    read_only: bool = False) -> VectorStore:
    """Open a collection's store; with ``create=True`` make it if it is missing (in ``store``,
    default ``settings.store``). Naming a store that differs from an existing collection's is refused."""
    settings = settings or load_settings()
    folder = collection_dir(name, settings)
    existing = collection_store(folder)
    if existing is None:
        if not create:
            known = [c["name"] for c in list_collections(settings)]
            hint = f" (collections: {', '.join(known)})" if known else " (there are no collections yet: run genstack ingest)"
            raise CollectionNotFound(f"no collection named {name!r}{hint}")
        backend_name = store or settings.store
        backend = store_backend(backend_name)  # a clear error for an unknown or uninstalled store
        _write_manifest(folder, {"store": backend.name})
    else:
        if store is not None and store != existing:
            raise InvalidParameter(f"collection {name!r} is stored in {existing}, not {store}; "
                                   "use a new collection for another store")
        backend = store_backend(existing)
    s = backend.open_collection(folder, dim=dim, embedder=embedder, read_only=read_only, settings=settings)
    s.name = name  # type: ignore[attr-defined]
    return s


def list_collections(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every collection: name, store backend, chunks, sources, embedder, dimension and bytes on disk."""
    settings = settings or load_settings()
    root = _root(settings)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not _NAME.match(d.name):
            continue
        kind = collection_store(d)
        if kind is None:
            continue
        store = store_backend(kind).open_collection(d, read_only=True, settings=settings)
        try:
            size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
            out.append({
                "name": d.name,
                "store": kind,
                "chunks": store.count(),
                "sources": len(store.sources()),
                "embedder": store.embedder,
                "dim": store.dim,
                "bytes": size,
            })
        finally:
            store.close()
    return out


def delete_collection(name: str, settings: Settings | None = None) -> None:
    """Delete a collection and all its data (its tables too, when they live under ``lancedb_uri``)."""
    settings = settings or load_settings()
    folder = collection_dir(name, settings)
    kind = collection_store(folder)
    if kind is None:
        raise CollectionNotFound(f"no collection named {name!r}")
    backend = store_backend(kind)
    drop = getattr(backend, "drop_collection", None)
    if drop is not None:  # data kept outside the folder (an object-store URI)
        drop(folder, settings=settings)
    shutil.rmtree(folder)
