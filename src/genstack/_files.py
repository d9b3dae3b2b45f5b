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
