"""Models: the registry, the backend interface and the built-in backends."""

from .base import Model
from .registry import REGISTRY, ModelSpec, get_model

__all__ = ["Model", "ModelSpec", "REGISTRY", "get_model"]
