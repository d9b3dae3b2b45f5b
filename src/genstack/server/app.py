"""The FastAPI application: ``create_app(settings, config)``.

Routes are thin: parsing and shaping live in :mod:`.openai_api`, work runs
in the :class:`~.engine.Engine`, limits in :mod:`.limits`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .._apikeys import Keys, entry, lookup
from ..config import Settings, load_settings
from ..errors import GenstackError
from .boundary import BrowserBoundary
from .config import ServerConfig
from .engine import Engine
from .errors import APIError, error_body, error_response
from .limits import BodySizeLimit, RateLimiter
from .metrics import Metrics, ObservabilityMiddleware

__all__ = ["create_app", "State", "app_from_env"]

log = logging.getLogger("genstack.server")
#: seconds a /readyz result is reused
READY_TTL = 5.0
UI_DIR = Path(__file__).parent / "ui"


class State:
    """Everything a request handler needs, hung on ``app.state.gs``."""

    def __init__(self, settings: Settings, config: ServerConfig, engine: Engine):
        self.settings, self.config, self.engine = settings, config, engine
        self.metrics = Metrics(queue_depth=lambda: engine.gate.depth if engine._gate else 0,
                               running=lambda: engine.gate.running if engine._gate else 0,
                               batchers=engine.batchers)
        engine.on_cancel = self.metrics.cancelled.inc
        self.limiter = RateLimiter(config.rate_limit)
        # "KEY" may use every collection; "KEY:a,b" only collections a and b (LLM08)
        self._keys: Keys = {}
        for spec in config.api_keys:
            key, sep, colls = spec.partition(":")
            digest, value = entry(key, frozenset(c.strip() for c in colls.split(",") if c.strip()) if sep else None)
            self._keys[digest] = value
        self._logdb = None
        self.jobs: dict[str, dict[str, Any]] = {}
        self.guard = config.guard_policy(settings)
        #: the arena (genstack.arena.Arena), made on the first battle, and its vote database
        self.arena = None
        self._arena_db = None

    #: finished ingest jobs kept for GET /api/jobs/{id}; older ones are forgotten (running ones never)
    MAX_FINISHED_JOBS = 256

    def add_job(self, job: dict[str, Any]) -> None:
        """Register an ingest job, forgetting the oldest finished jobs beyond MAX_FINISHED_JOBS."""
        finished = [k for k, j in self.jobs.items() if j.get("status") in ("done", "failed")]
        for k in finished[: max(0, len(finished) - self.MAX_FINISHED_JOBS + 1)]:
            self.jobs.pop(k, None)
        self.jobs[job["id"]] = job

    @property
    def logdb(self):
        if self._logdb is None:
            from .logdb import LogDB

            self._logdb = LogDB(self.settings.data_dir / "server.db")
        return self._logdb

    @property
    def arena_db(self):
        if self._arena_db is None:
            from ..arena.store import ArenaDB

            self._arena_db = ArenaDB.for_settings(self.settings)
        return self._arena_db

    def authorize(self, request) -> str:
        """Check the API key (when keys are configured) and the rate limit; return the caller's id."""
        if self._keys:
            auth = request.headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
            found = lookup(self._keys, token)
            if found is None:
                raise APIError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                               code="invalid_api_key")
            key_id, allowed = found
        else:
            key_id, allowed = "ip-" + (request.client.host if request.client else "unknown"), None
        request.scope.setdefault("state", {})["key_id"] = key_id
        request.scope["state"]["collections"] = allowed
        try:
            self.limiter.check(key_id)
        except APIError:
            self.metrics.rejected.labels("rate_limit").inc()
            raise
        return key_id

    @staticmethod
    def may_use(request, collection: str) -> bool:
        allowed = request.scope.get("state", {}).get("collections")
        return allowed is None or collection in allowed

    def check_collection(self, request, collection: str) -> None:
        """404 (not 403: a key must not learn which collections exist) for a collection the key may not use."""
        if not self.may_use(request, collection):
            raise APIError(404, f"no collection named {collection!r}", code="collection_not_found")

    def log_request(self, **fields) -> None:
        if not self.config.log_requests:
            return
        try:
            # secrets and PII never reach the log (LLM02): the stored request and response are redacted
            from ..guard.pii import redact

            fields["request"] = json.loads(redact(json.dumps(fields["request"], ensure_ascii=False))[0])
            for key in ("response", "prompt"):
                if fields.get(key):
                    fields[key] = redact(fields[key])[0]
            self.logdb.log_request(**fields)
        except Exception as exc:  # the log must never break a response
            log.warning("request log write failed: %s", exc)

    def close(self) -> None:
        self.engine.close()
        if self._logdb is not None:
            self._logdb.close()
        if self._arena_db is not None:
            self._arena_db.close()


def create_app(settings: Settings | None = None, config: ServerConfig | None = None, *,
               models: dict | None = None, embedders: dict | None = None, guard=None):
    """Build the app. ``models`` / ``embedders`` inject loaded instances (tests use the fakes);
    ``guard`` replaces the :class:`~genstack.guard.GuardPolicy` built from ``config``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from . import routes_api, routes_arena, routes_openai, scoring

    settings = settings or load_settings()
    config = config or ServerConfig()
    engine = Engine(settings, config, models=models, embedders=embedders)
    gs = State(settings, config, engine)
    if guard is not None:
        gs.guard = guard

    @asynccontextmanager
    async def lifespan(app):
        log.info("genstack serving on http://%s:%s (models: %s)", config.host, config.port,
                 ", ".join(engine.generator_names()))
        try:
            yield
        finally:
            gs.close()

    app = FastAPI(title="genstack", version=_version(), lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.gs = gs

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        if exc.status == 503:
            gs.metrics.rejected.labels("queue_full").inc()
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(GenstackError)
    async def _genstack_error(request: Request, exc: GenstackError):
        return JSONResponse(error_response(exc).body(), status_code=error_response(exc).status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return JSONResponse(error_body(400, f"{where}: {first.get('msg', 'invalid request')}", param=where or None),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body(500, f"internal error ({type(exc).__name__}); see the server log"),
                            status_code=500)

    app.include_router(routes_openai.router)
    app.include_router(routes_api.router)
    app.include_router(routes_arena.router)
    app.include_router(scoring.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        """Liveness: the process answers (no model work, no key)."""
        return {"status": "ok"}

    ready: dict[str, Any] = {}  # the last readiness result, and when it was measured

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        """Readiness: a real one-token generation with the default model, at most once per READY_TTL
        seconds (calls in between, or while one runs, get that result with its age), so it cannot be
        used to load the server."""
        import asyncio

        lock = ready.setdefault("lock", asyncio.Lock())
        async with lock:
            now = time.monotonic()
            if "result" not in ready or now - ready["at"] >= READY_TTL:
                ready["result"], ready["at"] = await _ready(), time.monotonic()
            body, status = ready["result"]
            return JSONResponse({**body, "cached_s": round(time.monotonic() - ready["at"], 3)}, status_code=status)

    async def _ready():
        name = settings.default_model
        t0 = time.perf_counter()
        try:
            def one():
                return engine.model(name).generate("ping", max_tokens=1, greedy=True)

            comp = await engine.run(one, lock=name, deadline=time.monotonic() + min(60.0, config.request_timeout))
        except Exception as exc:
            status = exc.status if isinstance(exc, APIError) else 503
            msg = exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"
            return {"status": "error", "model": name, "error": msg}, (status if status >= 500 else 503)
        return {"status": "ok", "model": name, "tokens": comp.usage.completion_tokens,
                "latency_s": round(time.perf_counter() - t0, 4)}, 200

    async def metrics(request):
        # metrics name collections and models: with API keys set, only an unrestricted key reads them
        if gs._keys:
            gs.authorize(request)
            if request.scope["state"].get("collections") is not None:
                raise APIError(403, "/metrics needs a key that is not limited to some collections",
                               code="forbidden")
        body, ctype = gs.metrics.render()
        return Response(body, media_type=ctype)

    metrics.__annotations__["request"] = Request  # the class itself: FastAPI injects the request by type
    app.get("/metrics", include_in_schema=False)(metrics)

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/ui/")

    @app.get("/ui/", include_in_schema=False)
    async def ui_index():
        return FileResponse(UI_DIR / "index.html", headers=_UI_HEADERS)

    app.mount("/ui", StaticFiles(directory=UI_DIR), name="ui")
    # added innermost first: observe everything, refuse foreign names and origins, then oversized bodies
    app.add_middleware(BodySizeLimit, limit=config.max_body_bytes, upload_limit=config.max_upload_bytes)
    app.add_middleware(BrowserBoundary, bind=config.host, allowed_hosts=config.allowed_hosts,
                       allowed_origins=config.allowed_origins,
                       on_refuse=lambda reason: gs.metrics.rejected.labels(reason).inc())
    app.add_middleware(ObservabilityMiddleware, metrics=gs.metrics, enabled_log=config.access_log)
    return app


#: the UI loads nothing from other origins, and no inline script runs
_UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _version() -> str:
    from .. import __version__

    return __version__


def app_from_env():
    """The app factory uvicorn's workers call (``--workers N``): config comes as JSON in the environment."""
    config = ServerConfig.from_json(os.environ["GENSTACK_SERVER_CONFIG"])
    return create_app(load_settings(), config)
