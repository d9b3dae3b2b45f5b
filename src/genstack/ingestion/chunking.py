"""A collection keeps the chunking it was built with.

Unchanged files are skipped on a later ingest whatever the chunking, so splitting new files with
another chunk size or overlap would leave a collection of mixed chunks. The chunking is recorded
in the collection's manifest (``collection.json``, :mod:`genstack.stores.collections`) on its
first ingest; a later ingest without one uses it, and one with another is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GenstackError, InvalidParameter
from ..stores.collections import read_manifest, update_manifest

__all__ = ["recorded_chunking", "check_chunking", "record_chunking"]


def recorded_chunking(folder: Path) -> tuple[int, int] | None:
    """The chunk size and overlap a collection was built with (its manifest's ``chunking``; a
    ``chunking.json`` beside it in collections made on 2026-12-07), or None."""
    where, legacy = folder / "collection.json", folder / "chunking.json"
    try:
        rec = read_manifest(folder).get("chunking")
        if rec is None and legacy.is_file():
            where, rec = legacy, json.loads(legacy.read_text(encoding="utf-8"))
        return None if rec is None else (int(rec["chunk_size"]), int(rec["overlap"]))
    except (OSError, KeyError, TypeError, ValueError):
        raise GenstackError(f"{where} is unreadable: its chunking should say {{\"chunk_size\": N, \"overlap\": N}}") from None


def check_chunking(collection: str, recorded: tuple[int, int] | None, wanted: tuple[int, int]) -> None:
    """A collection keeps the chunking it was built with: unchanged files are skipped whatever the
    chunking, so splitting new files differently would leave a collection of mixed chunks."""
    if recorded is not None and wanted != recorded:
        raise InvalidParameter(
            f"collection {collection!r} was split into chunks of {recorded[0]} tokens with {recorded[1]} of overlap, "
            f"not {wanted[0]} and {wanted[1]}; leave --chunk-size/--overlap out, or re-chunk it: "
            f"genstack collections delete {collection}, then ingest again")


def record_chunking(folder: Path, chunk_size: int, overlap: int) -> None:
    """Record the chunking in the manifest, unless it holds one (moving a 2026-12-07 ``chunking.json`` in)."""
    if "chunking" not in read_manifest(folder):
        update_manifest(folder, chunking={"chunk_size": chunk_size, "overlap": overlap})
        (folder / "chunking.json").unlink(missing_ok=True)
