"""Prometheus metrics (one registry per app) and the ASGI middleware that
records every request, assigns it an id and writes the access log."""

from __future__ import annotations

import json
import logging
import time
import uuid

__all__ = ["Metrics", "ObservabilityMiddleware"]

access_log = logging.getLogger("genstack.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, queue_depth=lambda: 0, running=lambda: 0, batchers=lambda: {}):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("genstack_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("genstack_request_seconds", "HTTP request latency, to the last byte",
                                 ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("genstack_time_to_first_token_seconds", "time from request to first generated token",
                              ["model"], buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens_per_s = Histogram("genstack_generation_tokens_per_second", "decode speed per request",
                                      ["model"], buckets=(1, 5, 10, 20, 40, 60, 80, 100, 150, 200, 400), registry=r)
        self.tokens = Counter("genstack_tokens_total", "tokens processed", ["model", "kind"], registry=r)
        self.retrieval = Histogram("genstack_retrieval_seconds", "retrieval latency", ["collection"],
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.cancelled = Counter("genstack_generations_cancelled_total",
                                 "generations stopped early (client gone or timeout)", registry=r)
        self.guard = Counter("genstack_guard_events_total", "guard decisions: input flagged or blocked, "
                             "canary blocked, redactions, instruction sentences in sources", ["kind"], registry=r)
        self.rejected = Counter("genstack_requests_rejected_total", "requests refused by a limit", ["reason"],
                                registry=r)
        q = Gauge("genstack_queue_depth", "requests waiting for a generation slot", registry=r)
        q.set_function(queue_depth)
        run = Gauge("genstack_generations_running", "generations running now", registry=r)
        run.set_function(running)
        r.register(_BatchCollector(batchers))

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _BatchCollector:
    """Counters of each continuous-batching scheduler (``genstack serve --batch``): decode steps,
    tokens put through them, seconds in ``llama_decode``, and prompt tokens read from a slot's cache."""

    def __init__(self, batchers):
        self.batchers = batchers

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        steps = CounterMetricFamily("genstack_batch_steps", "decode steps of the batch scheduler", labels=["model"])
        secs = CounterMetricFamily("genstack_batch_decode_seconds", "seconds spent in llama_decode", labels=["model"])
        toks = CounterMetricFamily("genstack_batch_tokens", "tokens in decode steps (step), prompt tokens "
                                   "requested (prompt) and read from a slot's cache instead (reused)",
                                   labels=["model", "kind"])
        for name, b in dict(self.batchers()).items():
            steps.add_metric([name], b.steps)
            secs.add_metric([name], b.decode_seconds)
            for kind, v in (("step", b.step_tokens), ("prompt", b.prompt_tokens), ("reused", b.reused_tokens)):
                toks.add_metric([name, kind], v)
        yield from (steps, secs, toks)


class ObservabilityMiddleware:
    """Times each request to its last body byte (streams included), counts it by
    route template and status, and writes one JSON access-log line."""

    def __init__(self, app, metrics: Metrics, enabled_log: bool = True):
        self.app, self.metrics, self.enabled_log = app, metrics, enabled_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        size = 0
        done = False

        def finish():
            nonlocal done
            if done:
                return
            done = True
            route = scope.get("route")
            label = getattr(route, "path", None) or ("/ui" if scope["path"].startswith("/ui") else "unmatched")
            dt = time.perf_counter() - t0
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(scope["method"], label).observe(dt)
            if self.enabled_log:
                client = scope.get("client")
                access_log.info(json.dumps({
                    "ts": round(time.time(), 3), "request_id": rid, "method": scope["method"],
                    "path": scope["path"], "route": label, "status": status, "duration_ms": round(dt * 1000, 1),
                    "bytes": size, "client": client[0] if client else None,
                    "key": scope.get("state", {}).get("key_id"),
                }))

        async def wrapped_send(message):
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    await send(message)
                    finish()
                    return
            await send(message)

        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            finish()
