"""The OpenAI-compatible server and web UI (``genstack serve``).

FastAPI and uvicorn are imported only when a server is built.
"""

from __future__ import annotations

from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]


def create_app(*args, **kwargs):
    from .app import create_app as _create

    return _create(*args, **kwargs)


def serve(config: ServerConfig, settings=None, *, workers: int = 1, log_level: str = "info") -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests get ``graceful`` seconds to finish."""
    from .run import run

    run(config, settings, workers=workers, log_level=log_level)
