"""Documents: loaders per format, a safe directory walker and the splitter."""

from .base import Document, LoadError
from .loaders import LoaderOptions, load_file
from .walk import walk_paths

__all__ = ["Document", "LoadError", "LoaderOptions", "load_file", "walk_paths"]
