"""genstack: the generative-AI stack that runs on your own machine.

The public API is what ``__all__`` lists; everything else is private and may
change. Imports are cheap: models load on first use.
"""


from .config import Settings, load_settings
from .errors import (
    ContextLengthExceeded,
    GenstackError,
    InvalidParameter,
    ModelIntegrityError,
    ModelNotFound,
    ModelNotInstalled,
    UnsupportedModelFormat,
)
from .generation import Chunk, Completion, GenerationRequest, Message, SamplingParams, TextStream, Usage
from .models.base import Model
from .models.memory import MemoryEstimate, estimate_memory
from .models.registry import REGISTRY, ModelSpec, get_model

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # configuration
    "Settings",
    "load_settings",
    # generation
    "get_model",
    "Model",
    "SamplingParams",
    "Message",
    "GenerationRequest",
    "Chunk",
    "Completion",
    "TextStream",
    "Usage",
    # models
    "REGISTRY",
    "ModelSpec",
    "estimate_memory",
    "MemoryEstimate",
    # errors
    "GenstackError",
    "InvalidParameter",
    "ContextLengthExceeded",
    "ModelNotFound",
    "ModelNotInstalled",
    "ModelIntegrityError",
    "UnsupportedModelFormat",
]
