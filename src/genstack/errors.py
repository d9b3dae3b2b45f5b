"""The exceptions genstack raises on purpose.

Every error a user can cause is a :class:`GenstackError`: its message is one
line that says what went wrong and, where there is one, what to do about it.
The CLI prints that line and exits non-zero; it never shows a traceback.
"""

from __future__ import annotations

__all__ = [
    "GenstackError",
    "ConfigError",
    "InvalidParameter",
    "ModelNotFound",
    "ModelNotInstalled",
    "ModelIntegrityError",
    "UnsupportedModelFormat",
    "ContextLengthExceeded",
    "BackendNotFound",
]


class GenstackError(Exception):
    """Base class: a problem the user can fix, with a one-line message."""

    exit_code = 1


class ConfigError(GenstackError):
    """The configuration file or a GENSTACK_* variable is invalid."""

    exit_code = 2


class InvalidParameter(GenstackError, ValueError):
    """A parameter value is out of range or of the wrong type."""

    exit_code = 2


class ModelNotFound(GenstackError):
    """The name is neither a registered model nor an existing model file."""


class ModelNotInstalled(GenstackError):
    """A registered model whose package is not installed."""


class ModelIntegrityError(GenstackError):
    """A model file does not match the sha256 recorded in the registry."""


class UnsupportedModelFormat(GenstackError):
    """Only GGUF and safetensors are loaded; pickle-based formats never are."""


class ContextLengthExceeded(GenstackError):
    """Prompt plus the requested answer budget does not fit the context window."""

    def __init__(self, prompt_tokens: int, max_tokens: int, n_ctx: int):
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx
        if prompt_tokens >= n_ctx:
            msg = (
                f"the prompt is {prompt_tokens} tokens but the context window is {n_ctx}: "
                "shorten the prompt or load the model with a larger n_ctx"
            )
        else:
            msg = (
                f"prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) exceeds the "
                f"context window of {n_ctx} tokens: lower max_tokens to at most "
                f"{n_ctx - prompt_tokens} or shorten the prompt"
            )
        super().__init__(msg)


class BackendNotFound(GenstackError):
    """No installed plugin provides the requested backend."""
