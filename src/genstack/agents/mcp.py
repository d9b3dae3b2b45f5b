"""MCP both ways, with the ``mcp`` package (the ``agents`` extra).

* :func:`build_server`: genstack's tools (search and ask over a collection, the
  calculator, the clock, read_file, any plugin) as an MCP server, served over
  stdio (:func:`serve_stdio`) or streamable HTTP (:func:`serve_http`). Calls go
  through the same :class:`~genstack.agents.loop.ToolBox` as the agent loop: the
  allowlist, schema validation, approval of side effects (only tools named in
  ``allow`` run) and the screening of results. Over HTTP, API keys
  (:func:`parse_api_keys`: ``KEY`` for every served tool, ``KEY:a,b`` for tools
  a and b only) are checked on every request; a key limited to some tools sees
  only those listed, and a call of another is refused like an unknown tool.
* :class:`MCPTools`: the tools of an external MCP server (a command over stdio,
  or a URL) as genstack :class:`~genstack.agents.tools.Tool` objects, for
  ``genstack agent --tools mcp:NAME``. A tool the server does not mark
  read-only counts as having side effects, so it needs approval.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Sequence

from .._apikeys import Keys, entry, lookup
from ..errors import GenstackError, InvalidParameter
from .calling import ToolCall
from .tools import Tool, ToolContext, ToolError

__all__ = ["build_server", "serve_stdio", "serve_http", "http_app", "parse_api_keys", "MCPTools", "MCPServerConfig",
           "require_mcp"]


def require_mcp():
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise GenstackError("MCP needs the mcp package: pip install 'genstack[agents]'") from None
    return mcp


def build_server(toolbox, *, name: str = "genstack"):
    """A low-level ``mcp`` Server listing ``toolbox``'s tools with their JSON Schemas and calling them
    through ``toolbox.call`` (one call at a time: the tools share one model). Over HTTP with API keys,
    each request lists and calls only the tools its key may use."""
    require_mcp()
    import anyio
    import mcp.types as types
    from mcp.server import Server

    from .. import __version__

    lock = threading.Lock()

    async def list_tools(ctx, params) -> types.ListToolsResult:
        only = _key_tools(ctx)
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters,
                       annotations=types.ToolAnnotations(read_only_hint=not t.side_effects,
                                                         destructive_hint=t.side_effects))
            for t in toolbox.tools if only is None or t.name in only])

    def run(call: ToolCall, only):
        with lock:
            return toolbox.call(call, only)

    async def call_tool(ctx, params) -> types.CallToolResult:
        result = await anyio.to_thread.run_sync(run, ToolCall(params.name, dict(params.arguments or {})), _key_tools(ctx))
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.output)],
                                    is_error=result.status != "ok")

    return Server(name, version=__version__, instructions="Search and ask the user's documents, and small tools.",
                  on_list_tools=list_tools, on_call_tool=call_tool)


#: where the key check leaves a request's tool allowlist (None: every served tool)
_SCOPE_KEY = "genstack_tools"


def _key_tools(ctx) -> frozenset[str] | None:
    request = getattr(ctx, "request", None)
    state = getattr(request, "scope", {}).get("state") or {}
    return state.get(_SCOPE_KEY)


def parse_api_keys(specs: Sequence[str], served: Sequence[str]) -> Keys:
    """``KEY`` (every served tool) or ``KEY:tool,tool`` specs as {sha256 of the key: (key id, tools)}.

    A key naming a tool the server does not serve is a one-line error (a typo would otherwise
    silently leave that key with fewer tools than meant); errors name a key by its position, never
    by any part of it."""
    out: dict[str, tuple[str, frozenset[str] | None]] = {}
    for i, spec in enumerate(specs, 1):
        key, sep, names = spec.partition(":")
        key = key.strip()
        if not key:
            raise InvalidParameter("--api-key must not be empty (an empty key would turn authentication off)")
        tools = frozenset(n.strip() for n in names.split(",") if n.strip()) if sep else None
        if tools is not None:
            if not tools:
                raise InvalidParameter(f"API key {i}: no tools after ':' (give KEY or KEY:tool,tool)")
            unknown = sorted(tools - set(served))
            if unknown:
                raise InvalidParameter(f"API key {i}: {', '.join(unknown)} not served here "
                                       f"(served: {', '.join(served)})")
        digest, value = entry(key, tools)
        out[digest] = value
    return out


class _KeyAuth:
    """ASGI middleware: a valid ``Authorization: Bearer KEY`` on every HTTP request, or 401; the key's
    tools are left in the request's scope for the handlers."""

    def __init__(self, app, keys: Keys):
        self.app, self.keys = app, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        found = lookup(self.keys, token)
        if found is None:
            body = json.dumps({"error": "missing or invalid API key: send 'Authorization: Bearer <key>'"}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})[_SCOPE_KEY] = found[1]
        return await self.app(scope, receive, send)


def http_app(server, host: str = "127.0.0.1", path: str = "/mcp", api_keys: Keys | None = None):
    """The streamable-HTTP ASGI app of ``server``; with ``api_keys`` (:func:`parse_api_keys`) every
    request needs one."""
    app = server.streamable_http_app(streamable_http_path=path, host=host)
    return _KeyAuth(app, api_keys) if api_keys else app


def serve_stdio(server) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    async def main():
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def serve_http(server, host: str = "127.0.0.1", port: int = 8765, path: str = "/mcp", api_keys: Keys | None = None) -> None:
    import uvicorn

    uvicorn.run(http_app(server, host, path, api_keys), host=host, port=port, log_level="warning")


class MCPServerConfig:
    """An external MCP server: ``command`` (a list: program and arguments, spoken to over stdio) or ``url``
    (streamable HTTP). Configured as ``[mcp_servers.NAME]`` in the config file."""

    def __init__(self, name: str, command: Sequence[str] | None = None, url: str | None = None,
                 env: dict | None = None, api_key_env: str | None = None):
        if (command is None) == (url is None):
            raise InvalidParameter(f"MCP server {name!r} needs either command or url")
        if command is not None and (isinstance(command, str) or not command
                                    or not all(isinstance(c, str) for c in command)):
            raise InvalidParameter(f"MCP server {name!r}: command must be a list of strings")
        self.name, self.command, self.url, self.env = name, list(command) if command else None, url, env
        self.api_key_env = api_key_env

    def api_key(self) -> str | None:
        """The bearer key from the ``api_key_env`` variable (None when no variable is named)."""
        import os

        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise InvalidParameter(f"MCP server {self.name!r}: the environment variable {self.api_key_env} "
                                   "(api_key_env) is not set")
        return key

    @classmethod
    def from_settings(cls, name: str, settings) -> "MCPServerConfig":
        servers = settings.mcp_servers
        if name not in servers:
            known = ", ".join(sorted(servers)) or "none configured"
            raise InvalidParameter(f"no MCP server named {name!r} in the config file ([mcp_servers.{name}]; "
                                   f"configured: {known})")
        d = servers[name]
        return cls(name, d.get("command"), d.get("url"), d.get("env"), d.get("api_key_env"))


class _MCPTool(Tool):
    def __init__(self, owner: "MCPTools", spec):
        self.owner, self.remote_name = owner, spec.name
        self.name = f"{owner.config.name}.{spec.name}"[:64]
        self.description = spec.description or ""
        self.parameters = spec.input_schema or {"type": "object", "properties": {}}
        ann = spec.annotations
        self.side_effects = not (ann is not None and ann.read_only_hint)

    def run(self, arguments: dict, context: ToolContext) -> str:
        return self.owner.call(self.remote_name, arguments)


class MCPTools:
    """A live connection to an external MCP server, its tools as genstack tools. The client runs on
    its own event loop in a background thread; ``close()`` ends it."""

    def __init__(self, config: MCPServerConfig, timeout: float = 60.0):
        require_mcp()
        config.api_key()  # a missing key variable is a one-line error before anything connects
        self.config, self.timeout = config, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"mcp-{config.name}", daemon=True)
        self._thread.start()
        self._stop: asyncio.Event | None = None
        self._client = None
        ready = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        try:
            specs = ready.result(timeout)
        except Exception as exc:
            self.close()
            raise GenstackError(f"could not connect to MCP server {config.name!r}: {_reason(exc)}") from None
        self.tools = [_MCPTool(self, s) for s in specs]

    async def _open(self):
        from mcp.client import Client

        key = self.config.api_key()
        if self.config.url and key:
            from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

            target: Any = streamable_http_client(
                self.config.url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}))
        elif self.config.url:
            target = self.config.url
        else:
            from mcp.client.stdio import StdioServerParameters

            target = StdioServerParameters(command=self.config.command[0], args=self.config.command[1:],
                                           env=self.config.env)
        opened = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()

        async def hold():
            try:
                async with Client(target) as client:
                    self._client = client
                    listed = await client.list_tools()
                    opened.set_result(listed.tools)
                    await self._stop.wait()
            except BaseException as exc:
                if not opened.done():
                    opened.set_exception(exc)

        self._holder = asyncio.ensure_future(hold())
        return await opened

    def call(self, name: str, arguments: dict) -> str:
        fut = asyncio.run_coroutine_threadsafe(self._client.call_tool(name, arguments), self._loop)
        try:
            result = fut.result(self.timeout)
        except Exception as exc:
            raise ToolError(f"the MCP server {self.config.name!r} failed on {name}: {_reason(exc)}") from None
        text = "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")
        if result.is_error:
            raise ToolError(text or f"{name} failed")
        return text

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            holder = getattr(self, "_holder", None)
            if holder is not None:
                try:
                    asyncio.run_coroutine_threadsafe(asyncio.wait_for(asyncio.shield(holder), 10), self._loop).result(12)
                except Exception:
                    pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return " ".join(str(exc).split()) or type(exc).__name__
