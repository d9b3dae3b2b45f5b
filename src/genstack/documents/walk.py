"""Find the files to ingest under one or more paths, safely.

* include / exclude are glob patterns matched against the path relative to the
  root given (``**/*.md``, ``drafts/*``); a bare ``*.md`` also matches in
  subfolders;
* symlinks are never followed out of the tree: a link whose target resolves
  outside the root is skipped;
* hidden files and folders (``.git``, ``.venv``) are skipped unless included;
* files with a suffix no loader handles are skipped (binaries among them).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from .loaders import SUPPORTED_SUFFIXES

__all__ = ["Walk", "walk_paths"]


@dataclass
class Walk:
    files: list[Path] = field(default_factory=list)
    #: (path, reason) for paths given that could not be used at all
    missing: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0


def _match(rel: str, patterns: Sequence[str]) -> bool:
    p = PurePosixPath(rel)
    for pat in patterns:
        if fnmatch.fnmatchcase(rel, pat) or p.match(pat):
            return True
        if "/" not in pat and fnmatch.fnmatchcase(p.name, pat):
            return True
    return False


def walk_paths(
    paths: Iterable[str | os.PathLike[str]],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Walk:
    out = Walk()
    seen: set[Path] = set()
    for given in paths:
        root = Path(given).expanduser()
        if not root.exists():
            out.missing.append((str(given), "no such file or folder"))
            continue
        if root.is_file():
            real = root.resolve()
            if real not in seen:
                seen.add(real)
                out.files.append(root.absolute())
            continue
        base = root.resolve()
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            d = Path(dirpath)
            keep = []
            for name in sorted(dirnames):
                sub = d / name
                rel = sub.relative_to(base).as_posix()
                if sub.is_symlink():
                    out.skipped += 1  # never descend into linked folders
                    continue
                if (name.startswith(".") and not _match(rel, include)) or _match(rel + "/", exclude) or _match(rel, exclude):
                    continue
                keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                f = d / name
                rel = f.relative_to(base).as_posix()
                if name.startswith(".") and not _match(rel, include):
                    continue
                if include and not _match(rel, include):
                    continue
                if exclude and _match(rel, exclude):
                    continue
                if f.suffix.lower() not in SUPPORTED_SUFFIXES:
                    out.skipped += 1
                    continue
                if f.is_symlink():
                    target = f.resolve()
                    if not target.is_relative_to(base) or not target.is_file():
                        out.skipped += 1
                        continue
                real = f.resolve()
                if real in seen:
                    continue
                seen.add(real)
                out.files.append(f)
    return out
