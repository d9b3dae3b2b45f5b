"""Small file helpers shared across layers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import GenstackError, InvalidParameter


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_user_text(path: str | Path, what: str = "file", error: type[GenstackError] = InvalidParameter) -> str:
    """The UTF-8 text of a file the user named, or ``error`` with a one-line reason."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {p}: {exc}") from None


def jsonl_objects(text: str, where: str):
    """``(line number, object)`` for each non-blank line of a JSONL text; a line that is not a JSON
    object is an :class:`InvalidParameter` naming ``where`` and the line."""
    import json

    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidParameter(f"{where}, line {n}: not JSON") from None
        if not isinstance(row, dict):
            raise InvalidParameter(f"{where}, line {n}: each line must be a JSON object")
        yield n, row
