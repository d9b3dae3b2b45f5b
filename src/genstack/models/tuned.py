"""Models the user tuned (``genstack tune``): a folder per name under ``<data dir>/models/tuned``.

Each folder holds ``genstack-model.json``, the manifest ``genstack tune`` writes last (so a folder
without one is an unfinished run and never a model), and the files it names: the merged, quantized
GGUF (``model``), the PEFT adapter folder (``adapter``) and, where llama.cpp can apply it at run
time, the adapter as GGUF (``lora_gguf``). The registry looks names up here after the built-in
ones, so ``--model NAME`` works everywhere a model is taken.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import InvalidParameter

__all__ = ["MANIFEST", "tuned_root", "tuned_dir", "read_manifest", "write_manifest", "list_tuned", "check_name"]

MANIFEST = "genstack-model.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    """A tuned model's name: letters, digits, ``. _ -``; no path, no ``:`` (which names a backend)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameter(
            f"model name must be 1-64 letters, digits, '.', '_' or '-' and start with a letter or digit, got {name!r}"
        )
    return name


def tuned_root(settings: Settings) -> Path:
    return settings.data_dir / "models" / "tuned"


def tuned_dir(name: str, settings: Settings) -> Path:
    return tuned_root(settings) / check_name(name)


def read_manifest(name: str, settings: Settings) -> dict[str, Any] | None:
    """The manifest of a finished tuned model ``name``, or None when there is none."""
    if not isinstance(name, str) or not _NAME.match(name):
        return None
    path = tuned_root(settings) / name / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    data["dir"] = str(path.parent)
    return data


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest atomically: the model exists from this moment on."""
    path = Path(folder) / MANIFEST
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def list_tuned(settings: Settings) -> list[dict[str, Any]]:
    root = tuned_root(settings)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir()):
        m = read_manifest(folder.name, settings)
        if m is not None:
            out.append(m)
    return out
