"""Backends are found through entry points; genstack's own register the same way.

Groups: ``genstack.backends`` (generators), ``genstack.embedders`` and
``genstack.stores``. A plugin package declares, in its pyproject.toml::

    [project.entry-points."genstack.backends"]
    my-engine = "my_package.module:MyModel"

and is then used by name: ``--model my-engine:ARG`` (the class gets ARG),
``--embedder my-embedder:ARG``, ``--store my-store``. docs/architecture.md
has a worked example (tests/plugin_example).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Mapping

from .errors import BackendNotFound

__all__ = ["load_plugin", "plugin_names", "split_spec"]


def load_plugin(group: str, name: str, builtins: Mapping[str, str], what: str = "backend") -> type:
    """The class registered as ``name`` in ``group``; ``builtins`` cover an uninstalled source tree."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    if name in builtins:
        module, _, attr = builtins[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    names = sorted({ep.name for ep in entry_points(group=group)} | set(builtins))
    raise BackendNotFound(f"no {what} named {name!r} is installed (available: {', '.join(names)})")


def plugin_names(group: str, builtins: Mapping[str, str]) -> set[str]:
    return {ep.name for ep in entry_points(group=group)} | set(builtins)


def split_spec(spec: str, group: str, builtins: Mapping[str, str]) -> tuple[str, str] | None:
    """``"name:arg"`` (or a bare ``"name"``) → ``(name, arg)`` when ``name`` is a plugin registered
    in ``group``; else None (a registry name or a path)."""
    name, _, arg = spec.partition(":")
    if name in plugin_names(group, builtins):
        return name, arg
    return None
