"""Agents with tools: OpenAI-style function calling on any model (:func:`respond`), tools as plugins
(:class:`Tool`, the ``genstack.tools`` entry-point group), the allowlisted loop (:class:`Agent`) and an
MCP server (``genstack.agents.mcp``).

Names load on first use."""

from .._lazy import lazy_names

_LAZY = {"Function": "calling", "ToolCall": "calling", "ToolTurn": "calling", "ToolCallError": "calling",
         "respond": "calling", "call_schema": "calling", "tool_messages": "calling", "parse_calls": "calling",
         "Tool": "tools", "ToolContext": "tools", "ToolError": "tools", "load_tool": "tools", "load_tools": "tools",
         "tool_names": "tools", "safe_eval": "tools",
         "Agent": "loop", "AgentResult": "loop", "Step": "loop", "ToolResult": "loop", "run_agent": "loop"}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
