"""Limits: a per-key rate limiter, a bounded concurrency gate and a body-size cap."""

from __future__ import annotations

import asyncio
import math
import threading
import time

from .errors import APIError, send_error

__all__ = ["RateLimiter", "Gate", "BodySizeLimit"]


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, bursting up to the same number."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise a 429 that says when to retry."""
        if self.capacity <= 0:
            return
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
                self._buckets[key] = (tokens, now)
                raise APIError(429, f"rate limit of {int(self.capacity)} requests per minute exceeded; "
                                    f"retry after {wait} s", code="rate_limit_exceeded",
                               headers={"Retry-After": str(wait)})
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget idle keys
                full = [k for k, (t, ts) in self._buckets.items() if t + (now - ts) * self.rate >= self.capacity]
                for k in full:
                    del self._buckets[k]


class Gate:
    """At most ``running`` requests at once and ``queue`` waiting; the next one gets 503."""

    def __init__(self, running: int, queue: int):
        self.running_max, self.queue_max = running, queue
        self._sem = asyncio.Semaphore(running)
        self.running = 0
        self.waiting = 0

    @property
    def depth(self) -> int:
        return self.waiting

    async def acquire(self, timeout: float) -> None:
        if self._sem.locked() and self.waiting >= self.queue_max:
            raise APIError(503, f"the server is busy: {self.running} running and {self.waiting} queued "
                                "(the queue is full); retry shortly", code="server_overloaded",
                           headers={"Retry-After": "1"})
        self.waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), timeout)
        except asyncio.TimeoutError:
            raise APIError(504, f"timed out after {timeout:g} s waiting for a free slot",
                           code="timeout") from None
        finally:
            self.waiting -= 1
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self._sem.release()


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over the limit, by Content-Length or as they stream in."""

    def __init__(self, app, limit: int, upload_limit: int, upload_prefix: str = "/api/collections/",
                 upload_suffix: str = "/documents"):
        self.app, self.limit, self.upload_limit = app, limit, upload_limit
        self.upload_prefix, self.upload_suffix = upload_prefix, upload_suffix

    def _limit_for(self, path: str) -> int:
        if path.startswith(self.upload_prefix) and path.endswith(self.upload_suffix):
            return self.upload_limit
        return self.limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self._limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await send_error(send, 400, "invalid Content-Length header", close=True)
            if n > limit:
                # drain nothing: answer at once and let the server close the connection
                return await send_error(send, 413, f"request body of {n} bytes exceeds the limit of {limit} bytes",
                                        code="request_too_large", close=True)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_error(send, 413, f"request body exceeds the limit of {limit} bytes",
                                 code="request_too_large", close=True)


class _TooLarge(Exception):
    pass
