"""The browser boundary: only the user's own pages reach ``genstack serve``.

A server on 127.0.0.1 is not private from the browser the user already has open.
Two attacks need no bug in genstack, only a browser:

- **DNS rebinding.** A page on ``attacker.example`` re-resolves its own name to
  127.0.0.1; from then on the browser treats the server as same-origin with that
  page, which can read every answer. The one thing the request still carries is
  the name: ``Host: attacker.example``. So a request whose ``Host`` is not a name
  this server is known by is refused before any route runs (Ollama's
  CVE-2024-28224; Jupyter, Vite and webpack-dev-server check ``Host`` alike).
- **Cross-site requests.** A browser sends a ``text/plain`` or form POST, and a
  multipart upload, to any origin without a preflight. Every request that carries
  an ``Origin`` other than the server's own (or one the user allowed) is refused,
  and JSON routes take only ``Content-Type: application/json`` (see
  :func:`genstack.server.routes_openai.read_json`), which no page can send to
  another origin without a CORS preflight that this server only answers for the
  allowed origins.

Names always accepted: ``localhost`` and ``*.localhost`` (browsers resolve them to
loopback themselves, RFC 6761), and IP literals that are loopback or the bound
address (any IP literal when bound to ``0.0.0.0``/``::``): a rebinding page always
has a DNS name. Everything else must be listed in ``allowed_hosts`` (``--allowed-host``;
``.example.com`` also admits its subdomains, ``*`` turns the check off). The port is
not compared: it protects nothing here (a rebound page uses the server's own port),
and a local proxy on another port keeps working.
"""

from __future__ import annotations

import ipaddress

from .errors import send_error

__all__ = ["BrowserBoundary", "host_allowed", "origin_allowed", "split_host"]

#: methods that change state; the others must not (and a foreign page cannot read their answers)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def split_host(value: str) -> tuple[str, int | None]:
    """``'Name:8000'`` -> ``('name', 8000)``; ``'[::1]:8000'`` -> ``('::1', 8000)``; ``('', None)`` if malformed."""
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return "", None
        name, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return "", None
            port = int(rest[1:])
        return name, port
    name, sep, p = value.rpartition(":")
    if not sep:
        name = value
    elif ":" in name:  # a bare IPv6 address without brackets
        name = value
    elif p.isdigit():
        port = int(p)
    else:
        return "", None
    return name.rstrip("."), port


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_allowed(host_header: str, bind: str, allowed: tuple[str, ...] = ()) -> bool:
    """Is a request with this ``Host`` one for this server (see the module's rules)?"""
    if "*" in allowed:
        return True
    name, _ = split_host(host_header)
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    if ip is not None:
        bound = bind.strip("[]").lower()
        return ip.is_loopback or bound in _WILDCARD_BINDS or ip == _ip(bound)
    if name == bind.lower().rstrip("."):
        return True
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif split_host(entry)[0] == name:
            return True
    return False


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str, host_header: str, scheme: str, allowed: tuple[str, ...] = ()) -> bool:
    """Is ``origin`` the server's own (same scheme and ``Host``) or one the user allowed?"""
    o = _normal_origin(origin)
    if o == "null":  # sandboxed frames, file:// pages, redirects across origins
        return "null" in allowed
    if host_header and o == f"{scheme}://{host_header.strip().lower()}":
        return True
    return "*" in allowed or o in {_normal_origin(a) for a in allowed}


class BrowserBoundary:
    """ASGI middleware: the ``Host`` check, the ``Origin`` check and CORS for the allowed origins."""

    def __init__(self, app, *, bind: str, allowed_hosts: tuple[str, ...] = (),
                 allowed_origins: tuple[str, ...] = (), on_refuse=None):
        self.app, self.bind = app, bind
        self.allowed_hosts, self.allowed_origins = tuple(allowed_hosts), tuple(allowed_origins)
        self.on_refuse = on_refuse or (lambda reason: None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        if host and not host_allowed(host, self.bind, self.allowed_hosts):
            self.on_refuse("host")
            return await send_error(send, 403, f"this server does not answer to the name {split_host(host)[0] or host!r}; "
                                            "start it with --allowed-host NAME to allow it", "host_not_allowed")
        origin = headers.get("origin")
        method = scope.get("method", "GET").upper()
        if origin is None:
            return await self.app(scope, receive, send)
        scheme = scope.get("scheme", "http")
        same = origin_allowed(origin, host, scheme)
        allowed = same or origin_allowed(origin, host, scheme, self.allowed_origins)
        if method == "OPTIONS" and "access-control-request-method" in headers:
            if not allowed:
                self.on_refuse("origin")
                return await send_error(send, 403, f"cross-origin requests from {origin} are not allowed; "
                                                "start the server with --cors-origin ORIGIN to allow them",
                                     "origin_not_allowed")
            return await _preflight(send, origin, headers.get("access-control-request-headers", ""))
        if not allowed:
            # a foreign page may not change anything, nor make the server work for it (reading is
            # blocked by the browser anyway, and refusing it costs a same-origin page nothing)
            self.on_refuse("origin")
            verb = "change anything here" if method not in _SAFE else "call this server"
            return await send_error(send, 403, f"a page from {origin} may not {verb}; start the server with "
                                            "--cors-origin ORIGIN to allow that origin", "origin_not_allowed")
        if same:
            return await self.app(scope, receive, send)

        async def with_cors(message):
            if message["type"] == "http.response.start":
                extra = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                         (b"access-control-expose-headers", b"retry-after, x-request-id")]
                message = {**message, "headers": list(message.get("headers") or []) + extra}
            await send(message)

        return await self.app(scope, receive, with_cors)


async def _preflight(send, origin: str, requested: str) -> None:
    headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
               (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
               (b"access-control-max-age", b"600"), (b"content-length", b"0")]
    if requested:
        headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
