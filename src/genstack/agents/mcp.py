"""MCP both ways, with the ``mcp`` package (the ``agents`` extra).

* :func:`build_server`: genstack's tools (search and ask over a collection, the
  calculator, the clock, read_file, any plugin) as an MCP server, served over
  stdio (:func:`serve_stdio`) or streamable HTTP (:func:`serve_http`). Calls go
  through the same :class:`~genstack.agents.loop.ToolBox` as the agent loop: the
  allowlist, schema validation, approval of side effects (only tools named in
  ``allow`` run) and the screening of results.
* :class:`MCPTools`: the tools of an external MCP server (a command over stdio,
  or a URL) as genstack :class:`~genstack.agents.tools.Tool` objects, for
  ``genstack agent --tools mcp:NAME``. A tool the server does not mark
  read-only counts as having side effects, so it needs approval.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

from ..errors import GenstackError, InvalidParameter
from .calling import ToolCall
from .tools import Tool, ToolContext, ToolError

__all__ = ["build_server", "serve_stdio", "serve_http", "MCPTools", "MCPServerConfig", "require_mcp"]


def require_mcp():
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise GenstackError("MCP needs the mcp package: pip install 'genstack[agents]'") from None
    return mcp


def build_server(toolbox, *, name: str = "genstack"):
    """A low-level ``mcp`` Server listing ``toolbox``'s tools with their JSON Schemas and calling them
    through ``toolbox.call`` (one call at a time: the tools share one model)."""
    require_mcp()
    import anyio
    import mcp.types as types
    from mcp.server import Server

    from .. import __version__

    lock = threading.Lock()

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters,
                       annotations=types.ToolAnnotations(read_only_hint=not t.side_effects,
                                                         destructive_hint=t.side_effects))
            for t in toolbox.tools])

    def run(call: ToolCall):
        with lock:
            return toolbox.call(call)

    async def call_tool(ctx, params) -> types.CallToolResult:
        result = await anyio.to_thread.run_sync(run, ToolCall(params.name, dict(params.arguments or {})))
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.output)],
                                    is_error=result.status != "ok")

    return Server(name, version=__version__, instructions="Search and ask the user's documents, and small tools.",
                  on_list_tools=list_tools, on_call_tool=call_tool)


def serve_stdio(server) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    async def main():
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def serve_http(server, host: str = "127.0.0.1", port: int = 8765, path: str = "/mcp") -> None:
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=path, host=host)
    uvicorn.run(app, host=host, port=port, log_level="warning")


class MCPServerConfig:
    """An external MCP server: ``command`` (a list: program and arguments, spoken to over stdio) or ``url``
    (streamable HTTP). Configured as ``[mcp_servers.NAME]`` in the config file."""

    def __init__(self, name: str, command: Sequence[str] | None = None, url: str | None = None,
                 env: dict | None = None):
        if (command is None) == (url is None):
            raise InvalidParameter(f"MCP server {name!r} needs either command or url")
        if command is not None and (isinstance(command, str) or not command
                                    or not all(isinstance(c, str) for c in command)):
            raise InvalidParameter(f"MCP server {name!r}: command must be a list of strings")
        self.name, self.command, self.url, self.env = name, list(command) if command else None, url, env

    @classmethod
    def from_settings(cls, name: str, settings) -> "MCPServerConfig":
        servers = settings.mcp_servers
        if name not in servers:
            known = ", ".join(sorted(servers)) or "none configured"
            raise InvalidParameter(f"no MCP server named {name!r} in the config file ([mcp_servers.{name}]; "
                                   f"configured: {known})")
        d = servers[name]
        return cls(name, d.get("command"), d.get("url"), d.get("env"))


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

        if self.config.url:
            target: Any = self.config.url
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
