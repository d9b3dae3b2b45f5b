"""Documents: text plus metadata, and the errors a loader reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import GenstackError

__all__ = ["Document", "LoadError"]


@dataclass
class Document:
    """One loadable unit of text: a file, a PDF page, a CSV row or a JSON record.

    ``metadata`` always has ``source`` (the file path) and ``title``; loaders add
    their own keys (``page`` for PDF pages, ``row`` for CSV rows, …).
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", ""))


class LoadError(GenstackError):
    """A file could not be loaded: corrupt, empty, unreadable or unsupported."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")
