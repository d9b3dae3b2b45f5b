"""Tools an agent may call: one small interface, found through entry points.

A tool is a class with a name, a description, a JSON Schema of its arguments,
whether it has side effects, and ``run(arguments, context) -> str``. genstack's
own tools register in the ``genstack.tools`` entry-point group exactly as a
third-party one would::

    [project.entry-points."genstack.tools"]
    weather = "my_package.tools:Weather"

A run only ever sees the tools it was given by name (the allowlist): a call of
any other name is refused, and a tool with side effects runs only after
approval. Arguments are validated against the tool's schema before ``run``.
"""

from __future__ import annotations

import ast
import datetime as _dt
import math
import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import GenstackError, InvalidParameter
from .calling import Function

__all__ = ["Tool", "ToolContext", "ToolError", "load_tool", "load_tools", "tool_names", "BUILTIN_TOOLS",
           "Calculator", "Clock", "ReadFile", "Search", "Ask", "safe_eval"]

GROUP = "genstack.tools"
BUILTIN_TOOLS = {
    "calculator": "genstack.agents.tools:Calculator",
    "datetime": "genstack.agents.tools:Clock",
    "read_file": "genstack.agents.tools:ReadFile",
    "search": "genstack.agents.tools:Search",
    "ask": "genstack.agents.tools:Ask",
}


class ToolError(GenstackError):
    """A tool could not do what it was asked; the message goes back to the model as the result."""
    exit_code = 1


@dataclass
class ToolContext:
    """What tools of one run may use: the collection for search/ask, the one folder read_file may read,
    the settings, and the model (for ask)."""

    collection: str | None = None
    root: Path | None = None
    settings: Any = None
    model: Any = None
    #: per-run objects tools build once (a retriever, a pipeline), closed with the context
    cache: dict = field(default_factory=dict)

    def close(self) -> None:
        for obj in self.cache.values():
            close = getattr(obj, "close", None)
            if close is not None:
                close()
        self.cache.clear()


class Tool(ABC):
    """A tool: ``name``, ``description``, ``parameters`` (the JSON Schema of its arguments),
    ``side_effects``, and :meth:`run`. Register it in the ``genstack.tools`` entry-point group."""

    name: str = "tool"
    description: str = ""
    parameters: dict = {"type": "object", "properties": {}}
    #: True for a tool that changes something outside genstack (writes, sends, buys): it runs only
    #: after approval (``--approve``), and the server never runs it unless configured to
    side_effects: bool = False

    def function(self) -> Function:
        return Function(self.name, self.description, self.parameters)

    def check(self, context: ToolContext) -> None:
        """Raise InvalidParameter when this tool cannot run in ``context`` (before the run starts)."""

    @abstractmethod
    def run(self, arguments: dict, context: ToolContext) -> str:
        """Do it; return the result as text for the model. Raise ToolError for a failure to report."""

    def __repr__(self) -> str:
        return f"<tool {self.name}>"


def tool_names() -> list[str]:
    from ..plugins import plugin_names

    return sorted(plugin_names(GROUP, BUILTIN_TOOLS))


def load_tool(name: str) -> Tool:
    from ..plugins import load_plugin

    cls = load_plugin(GROUP, name, BUILTIN_TOOLS, what="tool")
    tool = cls()
    if tool.name != name:
        tool.name = name
    return tool


def load_tools(names: Sequence[str] | str, context: ToolContext | None = None) -> list[Tool]:
    """The tools named (a list or "a,b,c"), each checked against ``context``. ``mcp:NAME`` stands for
    every tool of the external MCP server configured as ``[mcp_servers.NAME]`` (the connection stays
    open until ``context.close()``)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise InvalidParameter("a tool is named twice")
    context = context if context is not None else ToolContext()
    tools: list[Tool] = []
    for n in names:
        if n.startswith("mcp:"):
            tools += _mcp_tools(n[4:], context)
        else:
            tools.append(load_tool(n))
    for t in tools:
        t.check(context)
    return tools


def _mcp_tools(server: str, context: ToolContext) -> list[Tool]:
    from ..config import load_settings
    from .mcp import MCPServerConfig, MCPTools

    config = MCPServerConfig.from_settings(server, context.settings or load_settings())
    conn = context.cache[f"mcp:{server}"] = MCPTools(config)
    return list(conn.tools)


# -- the calculator: arithmetic over a parsed expression, never eval ---------------------------------------

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {"sqrt": math.sqrt, "log": math.log, "log10": math.log10, "log2": math.log2, "exp": math.exp,
          "sin": math.sin, "cos": math.cos, "tan": math.tan, "abs": abs, "round": round, "min": min, "max": max,
          "floor": math.floor, "ceil": math.ceil}
_CONSTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_MAX_EXPONENT, _MAX_LEN, _MAX_MAGNITUDE = 1000, 500, 1e300


def safe_eval(expression: str) -> float | int:
    """The value of an arithmetic expression: numbers, + - * / // % **, parentheses, and a few math
    functions and constants. Anything else (names, attributes, calls of other functions) is refused,
    and so are exponents and results too large to compute quickly."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("the expression is empty")
    if len(expression) > _MAX_LEN:
        raise ToolError(f"the expression is longer than {_MAX_LEN} characters")
    try:
        tree = ast.parse(expression.replace("^", "**").replace("×", "*").replace("÷", "/"), mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(b) > _MAX_EXPONENT:
                raise ToolError(f"the exponent {b} is too large")
            try:
                out = _BIN[type(node.op)](a, b)
            except ZeroDivisionError:
                raise ToolError("division by zero") from None
            if isinstance(out, complex):
                raise ToolError("the result is not a real number")
            if abs(out) > _MAX_MAGNITUDE:
                raise ToolError("the result is too large")
            return out
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTS:
            return _CONSTS[node.id]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords and len(node.args) <= 4):
            try:
                return _FUNCS[node.func.id](*[ev(a) for a in node.args])
            except (ValueError, TypeError, OverflowError) as exc:
                raise ToolError(f"{node.func.id}: {exc}") from None
        raise ToolError(f"not allowed in an arithmetic expression: {ast.unparse(node)!r}")

    value = ev(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


class Calculator(Tool):
    name = "calculator"
    description = "Evaluate an arithmetic expression, e.g. (17 * 3) + sqrt(16) or 2 ** 10. Returns the number."
    parameters = {"type": "object", "properties": {"expression": {"type": "string", "maxLength": 200}},
                  "required": ["expression"], "additionalProperties": False}

    def run(self, arguments: dict, context: ToolContext) -> str:
        value = safe_eval(arguments["expression"])
        return str(round(value, 10) if isinstance(value, float) else value)


class Clock(Tool):
    name = "datetime"
    description = "The current date and time (ISO 8601) in a time zone such as UTC or Europe/Lisbon."
    parameters = {"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 64}},
                  "additionalProperties": False}

    def run(self, arguments: dict, context: ToolContext) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        tzname = (arguments.get("timezone") or "UTC").strip() or "UTC"
        try:
            tz = ZoneInfo(tzname)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"unknown time zone {tzname!r} (use a name like UTC or Europe/Lisbon)") from None
        now = _dt.datetime.now(tz)
        return f"{now.isoformat(timespec='seconds')} ({now:%A}, {tzname})"


class ReadFile(Tool):
    name = "read_file"
    description = "Read a text file under the allowed folder, by its path relative to that folder."
    parameters = {"type": "object", "properties": {"path": {"type": "string", "maxLength": 300}},
                  "required": ["path"], "additionalProperties": False}
    max_bytes = 64 * 1024

    def check(self, context: ToolContext) -> None:
        if context.root is None:
            raise InvalidParameter("the read_file tool needs the one folder it may read: --root DIR")
        if not Path(context.root).is_dir():
            raise InvalidParameter(f"--root {context.root} is not a folder")

    def run(self, arguments: dict, context: ToolContext) -> str:
        self.check(context)
        root = Path(context.root).resolve()
        asked = arguments["path"]
        target = (root / asked).resolve()  # symlinks and .. resolved before the check
        if target != root and root not in target.parents:
            raise ToolError(f"{asked!r} is outside the allowed folder; only files under it can be read")
        if not target.is_file():
            raise ToolError(f"no file {asked!r} under the allowed folder")
        data = target.read_bytes()[: self.max_bytes + 1]
        if b"\0" in data[:4096]:
            raise ToolError(f"{asked!r} is not a text file")
        text = data[: self.max_bytes].decode("utf-8", errors="replace")
        return text + ("\n[truncated]" if len(data) > self.max_bytes else "")


def _collection(context: ToolContext, tool: str) -> str:
    if not context.collection:
        raise InvalidParameter(f"the {tool} tool needs a collection: --collection NAME")
    return context.collection


class Search(Tool):
    name = "search"
    description = "Search the document collection; returns the best passages with their sources."
    parameters = {"type": "object", "properties": {"query": {"type": "string", "maxLength": 200},
                                                   "k": {"type": "integer", "minimum": 1, "maximum": 8}},
                  "required": ["query"], "additionalProperties": False}

    def check(self, context: ToolContext) -> None:
        from ..stores.collections import collection_exists

        name = _collection(context, self.name)
        if not collection_exists(name, context.settings):
            raise InvalidParameter(f"no collection named {name!r} (genstack ingest PATH --collection {name})")

    def run(self, arguments: dict, context: ToolContext) -> str:
        from ..retrieval import Retriever

        r = context.cache.get("retriever")
        if r is None:
            r = context.cache["retriever"] = Retriever(_collection(context, self.name), context.settings)
        hits = r.search(arguments["query"], k=int(arguments.get("k") or 4))
        if not hits:
            return "no passages found"
        return "\n\n".join(f"[{i}] ({Path(h.source).name if h.source else h.id}) {' '.join(h.text.split())[:600]}"
                           for i, h in enumerate(hits, 1))


class Ask(Tool):
    name = "ask"
    description = ("Ask a question of the document collection; returns a grounded answer with its sources, "
                   "or says that the documents do not hold the answer.")
    parameters = {"type": "object", "properties": {"question": {"type": "string", "maxLength": 300}},
                  "required": ["question"], "additionalProperties": False}

    check = Search.check

    def run(self, arguments: dict, context: ToolContext) -> str:
        from ..rag.pipeline import Asker

        a = context.cache.get("asker")
        if a is None:
            a = context.cache["asker"] = Asker(_collection(context, self.name), model=context.model,
                                               settings=context.settings)
        ans = a.ask(arguments["question"])
        if ans.abstained:
            return f"the documents do not answer this ({ans.reason})"
        cited = [s for s in ans.sources if s.n in ans.cited] or ans.sources[:2]
        refs = "; ".join(f"[{s.n}] {Path(s.hit.source).name if s.hit.source else s.hit.id}" for s in cited)
        return f"{ans.text}\nSources: {refs}"
