"""The OpenAI wire, once: a client for any OpenAI-compatible server, shared by the remote model
(``genstack.models.remote``) and the remote embedder (``genstack.embeddings.remote``).

The API key comes from an environment variable (default ``OPENAI_API_KEY``) and never appears in
an error or a log line. Timeouts, connection errors, 429 and 5xx are retried (``retries`` attempts,
backoff 0.5 s, 1 s, …) before any answer has arrived; then one :class:`RemoteError` line.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from .errors import GenstackError, InvalidParameter

__all__ = ["OpenAIClient", "RemoteError", "parse_spec", "RETRY_STATUS"]

RETRY_STATUS = {429, 500, 502, 503, 504}


class RemoteError(GenstackError):
    """The remote server failed, or could not be reached, after the retries. ``status`` is the HTTP
    status of a refusal (None when nothing answered, or a retried status persisted) and ``detail``
    the server's own message, so callers can tell a missing capability from a failure without
    reading the text of the error."""

    exit_code = 1

    def __init__(self, message: str, *, status: int | None = None, detail: str = ""):
        super().__init__(message)
        self.status, self.detail = status, detail


def parse_spec(spec: str) -> tuple[str, str]:
    """``MODEL@BASE_URL`` → (model, base URL)."""
    model, sep, url = (spec or "").rpartition("@")
    if not sep or not model or not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"a remote model is named openai:MODEL@http(s)://host:port/v1, got {spec!r}")
    return model, url.rstrip("/")


class OpenAIClient:
    def __init__(self, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0,
                 retries: int = 3, transport=None):
        self.base_url = base_url.rstrip("/")
        self._key = os.environ.get(api_key_env) or None
        self.timeout, self.retries, self._transport = float(timeout), int(retries), transport
        self._http = None

    @property
    def http(self):
        if self._http is None:
            import httpx

            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            self._http = httpx.Client(base_url=self.base_url, headers=headers, transport=self._transport,
                                      timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)))
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def post(self, path: str, body: dict[str, Any], *, stream: bool = False):
        """The 200 response to ``POST path`` (open for reading when ``stream``), after bounded retries."""
        import httpx

        where = path if path.startswith(("http://", "https://")) else self.base_url + path
        last, wait = "", None
        for attempt in range(self.retries):
            if attempt:  # the server's Retry-After when it sent one (capped), else backoff with jitter
                time.sleep(wait if wait is not None else 0.5 * 2 ** (attempt - 1) * (0.75 + random.random() / 2))
            wait = None
            try:
                resp = self.http.send(self.http.build_request("POST", path, json=body), stream=stream)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = type(exc).__name__
                continue
            if resp.status_code == 200:
                return resp
            detail = error_message(resp)
            resp.close()
            if resp.status_code not in RETRY_STATUS:
                raise RemoteError(f"{where}: HTTP {resp.status_code}: {detail}", status=resp.status_code, detail=detail)
            last = f"HTTP {resp.status_code}: {detail}"
            wait = retry_after(resp.headers.get("retry-after"))
        raise RemoteError(f"{where}: no answer after {self.retries} attempts ({last})")


#: the longest Retry-After the client honours (seconds); a longer one is waited for this long
MAX_RETRY_AFTER = 60.0


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), at most
    :data:`MAX_RETRY_AFTER`; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def error_message(resp) -> str:
    try:
        resp.read()
        data = resp.json()
        err = data.get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg or resp.text)[:300]
    except Exception:  # noqa: BLE001 - any body
        return (resp.text or resp.reason_phrase or "")[:300]
