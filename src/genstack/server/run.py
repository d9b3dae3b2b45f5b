"""Starting uvicorn: one process, or ``--workers N`` processes sharing the port."""

from __future__ import annotations

import logging
import os
import sys

from ..config import Settings, load_settings
from .config import ServerConfig

GRACEFUL_SECONDS = 10


def _logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("genstack.access", "genstack.server"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level.upper())
        lg.propagate = False


def run(config: ServerConfig, settings: Settings | None = None, *, workers: int = 1, log_level: str = "info") -> None:
    import uvicorn

    config.check_bind()
    settings = settings or load_settings()
    _logging(log_level)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was there before it: make that a clean exit (code 0), not death by signal
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    common = dict(host=config.host, port=config.port, log_level=log_level, access_log=False,
                  timeout_graceful_shutdown=GRACEFUL_SECONDS, lifespan="on")
    if workers > 1:
        # each worker builds its own app (and loads its own model) from the config in the environment
        os.environ["GENSTACK_SERVER_CONFIG"] = config.to_json()
        os.environ.setdefault("GENSTACK_HOME", str(settings.data_dir))
        uvicorn.run("genstack.server.app:app_from_env", factory=True, workers=workers, **common)
        return
    from .app import create_app

    uvicorn.run(create_app(settings, config), **common)
