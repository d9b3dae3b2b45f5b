"""Backends are found through entry points; genstack's own register the same way.

Groups: ``genstack.backends`` (generators) and ``genstack.embedders``. A plugin
package declares, in its pyproject.toml::

    [project.entry-points."genstack.backends"]
    my-engine = "my_package.module:MyModel"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Mapping

from .errors import BackendNotFound

__all__ = ["load_plugin"]


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
