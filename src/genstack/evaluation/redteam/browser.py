"""The browser boundary of a live server (``genstack redteam --suite browser --target URL``).

What any web page the user opens could send to the server, sent over HTTP as a
browser would send it: requests under a rebound DNS name, requests carrying
another page's ``Origin``, and JSON bodies typed ``text/plain`` or as a form
(which browsers send cross-origin without a preflight). An attack succeeds when
the server does what the page asked (a 2xx answer) or, for reads and preflights,
when it hands the page a CORS grant. Nothing the probes create is kept: each
write names a collection that is deleted again if the attack got through.
:mod:`genstack.server.boundary` is the defence; ``docs/security.md`` the threat model.
"""

from __future__ import annotations

import json
import secrets
from typing import Callable
from urllib.parse import urlsplit

from .common import Rate, SuiteResult

__all__ = ["run", "probes"]

EVIL = "http://attacker.example"


def probes(base: str) -> tuple[list[tuple[str, dict]], str]:
    """The probes as (name, request) pairs, each request the keyword arguments of
    ``httpx.Client.request``, and the collection name the writing probes try to create."""
    port = urlsplit(base).port or 80
    name = "redteam-" + secrets.token_hex(4)
    body = json.dumps({"name": name})
    chat = json.dumps({"model": "any", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    return [
        ("rebound name reads collections", {"method": "GET", "url": "/api/collections",
                                            "headers": {"Host": f"attacker.example:{port}"}}),
        ("rebound name loads the UI", {"method": "GET", "url": "/ui/", "headers": {"Host": f"attacker.example:{port}"}}),
        ("rebound look-alike name", {"method": "GET", "url": "/v1/models",
                                     "headers": {"Host": f"localhost.attacker.example:{port}"}}),
        ("foreign origin creates a collection", {"method": "POST", "url": "/api/collections", "content": body,
                                                 "headers": {"Origin": EVIL, "Content-Type": "application/json"}}),
        ("text/plain JSON creates a collection", {"method": "POST", "url": "/api/collections", "content": body,
                                                  "headers": {"Content-Type": "text/plain"}}),
        ("form-typed JSON runs a chat", {"method": "POST", "url": "/v1/chat/completions", "content": chat,
                                         "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("foreign origin uploads", {"method": "POST", "url": f"/api/collections/{name}/documents?create=true",
                                    "files": {"files": ("x.txt", b"planted", "text/plain")},
                                    "headers": {"Origin": EVIL}}),
        ("sandboxed (null) origin writes", {"method": "POST", "url": "/api/collections", "content": body,
                                            "headers": {"Origin": "null", "Content-Type": "application/json"}}),
        ("foreign origin reads", {"method": "GET", "url": "/api/collections", "headers": {"Origin": EVIL}}),
        ("foreign preflight", {"method": "OPTIONS", "url": "/v1/chat/completions",
                               "headers": {"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "content-type"}}),
    ], name


def _succeeded(method: str, r) -> bool:
    """A preflight succeeds with a CORS grant; any other probe when the server does what it asked."""
    if method == "OPTIONS":
        return r.headers.get("access-control-allow-origin") in (EVIL, "*", "null")
    return r.is_success


def run(url: str, *, api_key: str | None = None, progress: Callable[[int, int], None] | None = None) -> SuiteResult:
    import httpx

    from ...errors import GenstackError

    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    items, name = probes(base)
    got, examples, jobs = 0, [], []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for i, (what, req) in enumerate(items):
            try:
                r = http.request(**req)
            except httpx.HTTPError as exc:
                raise GenstackError(f"cannot reach a genstack server at {url}: {exc}") from None
            hit = _succeeded(req["method"], r)
            got += hit
            if hit and r.status_code == 202:
                jobs.append(r.json().get("status_url"))
            examples.append({"probe": what, "status": r.status_code, "attack_succeeded": hit})
            if progress:
                progress(i + 1, len(items))
        if got:  # leave nothing behind: a planted upload is deleted once its ingest job has ended
            _wait_for(http, [j for j in jobs if j])
            http.delete(f"/api/collections/{name}")
    return SuiteResult("browser", Rate(got, len(items)), None, examples=examples,
                       judge="a 2xx answer to a write, or a CORS grant to a foreign origin")


def _wait_for(http, status_urls: list[str], seconds: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    for url in status_urls:
        while time.monotonic() < deadline:
            r = http.get(url)
            if r.status_code != 200 or r.json().get("status") in ("done", "failed"):
                break
            time.sleep(0.1)
