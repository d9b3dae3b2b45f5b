"""The agent loop: the model calls tools until it answers or reaches the step limit.

Every decision the loop makes about a call is enforced here, not left to the
model (OWASP LLM06, excessive agency):

* only the tools given to the run can be called: another name is refused and
  the refusal is the result the model sees (with llama.cpp models the grammar
  already makes any other name impossible);
* arguments are validated against the tool's schema before it runs;
* a tool with side effects runs only when ``approve(tool, call)`` says yes;
* tool results are untrusted input: instruction-like sentences in them are
  removed (or flagged) by the same screening as retrieved documents, and the
  result is cut to ``max_result_chars``.

Each step (the exact prompt, the calls, the results) is reported to
``on_step`` as it happens, for ``--show-prompt`` and the request log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Sequence

from ..errors import InvalidParameter
from ..generation import Message, SamplingParams, Usage
from .calling import Function, ToolCall, ToolCallError, respond
from .tools import Tool, ToolContext, ToolError

__all__ = ["Agent", "AgentResult", "Step", "ToolBox", "ToolResult", "run_agent"]

DEFAULT_SYSTEM = ("You are a careful assistant. Use the functions when they help: the calculator for any "
                  "arithmetic, search or ask for questions about the documents. Answer briefly once you know.")


#: the function that ends a run in final_answer mode
FINAL_ANSWER = Function("final_answer", "Give the final answer to the task, once you know it.",
                        {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]})


@dataclass
class ToolResult:
    call: ToolCall
    output: str
    #: ok, error (the tool failed), refused (not allowed in this run), denied (not approved), invalid (bad arguments)
    status: str = "ok"
    flags: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"id": self.call.id, "name": self.call.name, "arguments": self.call.arguments, "status": self.status,
                "output": self.output, "flags": self.flags, "seconds": round(self.seconds, 4)}


@dataclass
class Step:
    n: int
    prompt: str | None
    content: str
    calls: list[ToolCall]
    results: list[ToolResult] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"n": self.n, "content": self.content, "calls": [c.to_openai() for c in self.calls],
                "results": [r.to_dict() for r in self.results], "usage": self.usage.to_dict(),
                "seconds": round(self.seconds, 4)}


@dataclass
class AgentResult:
    task: str
    answer: str
    steps: list[Step]
    #: "answer" (the model answered) or "max_steps" (it was still calling tools at the limit)
    stopped: str
    messages: list[dict] = field(default_factory=list)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for s in self.steps for c in s.calls]

    def to_dict(self) -> dict:
        return {"task": self.task, "answer": self.answer, "stopped": self.stopped,
                "steps": [s.to_dict() for s in self.steps]}


class ToolBox:
    """The tools of one run and the rules for calling them; the agent loop and ``genstack mcp`` both
    call tools only through :meth:`call`."""

    def __init__(self, tools: Sequence[Tool | str], context: ToolContext | None = None, *,
                 approve: Callable[[Tool, ToolCall], bool] | None = None, injection: str = "strip",
                 max_result_chars: int = 4000):
        from .tools import load_tools

        if injection not in ("strip", "flag", "off"):
            raise InvalidParameter(f"injection must be strip, flag or off, got {injection!r}")
        self.context = context or ToolContext()
        names = [t for t in tools if isinstance(t, str)]
        loaded = iter(load_tools(names, self.context)) if names else iter(())
        self.tools = [next(loaded) if isinstance(t, str) else t for t in tools]
        if not self.tools:
            raise InvalidParameter("an agent needs at least one tool (--tools calculator,search,...)")
        for t in tools:
            if not isinstance(t, str):
                t.check(self.context)
        self.by_name = {t.name: t for t in self.tools}
        if len(self.by_name) != len(self.tools):
            raise InvalidParameter("two tools have the same name")
        self.approve, self.injection, self.max_result_chars = approve, injection, max_result_chars

    def functions(self):
        return [t.function() for t in self.tools]

    def call(self, call: ToolCall, only: Collection[str] | None = None) -> ToolResult:
        """Run one call under the run's rules; every outcome, refusals included, becomes a result.

        ``only`` narrows the allowlist for this call (an MCP API key limited to some tools): a tool
        outside it is refused exactly like one the run was never given."""
        tool = self.by_name.get(call.name)
        if only is not None and call.name not in only:
            tool = None
        if tool is None:
            allowed = ", ".join(n for n in self.by_name if only is None or n in only)
            return ToolResult(call, f"error: the tool {call.name!r} is not allowed in this run (allowed: {allowed})",
                              "refused")
        problem = _invalid(call.arguments, tool.parameters)
        if problem:
            return ToolResult(call, f"error: bad arguments for {tool.name}: {problem}", "invalid")
        if tool.side_effects and not (self.approve is not None and self.approve(tool, call)):
            return ToolResult(call, f"error: {tool.name} changes things and was not approved; nothing was done",
                              "denied")
        t0 = time.perf_counter()
        try:
            out = tool.run(call.arguments, self.context)
            status = "ok"
        except (ToolError, InvalidParameter) as exc:
            out, status = f"error: {exc}", "error"
        seconds = time.perf_counter() - t0
        if not isinstance(out, str):
            out = json.dumps(out, ensure_ascii=False, default=str)
        from ..guard.injection import screen_untrusted

        shown, flags = screen_untrusted(out, self.injection)
        if len(shown) > self.max_result_chars:
            shown = shown[: self.max_result_chars] + "\n[truncated]"
        return ToolResult(call, shown, status, flags, seconds)

    def close(self) -> None:
        self.context.close()


class Agent:
    """``Agent(model, tools).run("What is 17 * 23?")``. ``tools`` are Tool objects or names; the
    calls go through a :class:`ToolBox` (the allowlist, validation, approval and screening)."""

    def __init__(self, model, tools: Sequence[Tool | str], *, context: ToolContext | None = None,
                 max_steps: int = 6, approve: Callable[[Tool, ToolCall], bool] | None = None,
                 params: SamplingParams | None = None, system: str | None = DEFAULT_SYSTEM,
                 injection: str = "strip", max_result_chars: int = 4000, template=None,
                 on_step: Callable[[Step], None] | None = None, parallel: bool = True,
                 threshold: Any = "model", final_answer: bool = False):
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= 50:
            raise InvalidParameter(f"max_steps must be an integer from 1 to 50, got {max_steps!r}")
        context = context or ToolContext()
        if context.model is None:
            context.model = model
        self.toolbox = ToolBox(tools, context, approve=approve, injection=injection,
                               max_result_chars=max_result_chars)
        self.tools, self.context = self.toolbox.tools, context
        self.model, self.max_steps, self.system = model, max_steps, system
        self.params = params or SamplingParams(greedy=True, max_tokens=256)
        self.template, self.on_step, self.parallel = template, on_step, parallel
        #: log P(<tool_call>) from which the model calls ("model": its calibrated value; None: free text decides)
        self.threshold = threshold
        #: every turn is a call (tool_choice="required"), and the run ends with a call of final_answer(answer):
        #: smolagents' ToolCallingAgent design, for models that rarely open a call by themselves
        self.final_answer = final_answer

    def run(self, task: str, history: Sequence[dict | Message] = ()) -> AgentResult:
        if not isinstance(task, str) or not task.strip():
            raise InvalidParameter("the task is empty")
        messages: list[Any] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        messages += [m.to_dict() if isinstance(m, Message) else m for m in history]
        messages.append({"role": "user", "content": task})
        functions = self.toolbox.functions()
        if self.final_answer:
            functions.append(FINAL_ANSWER)
        steps: list[Step] = []
        for n in range(1, self.max_steps + 1):
            t0 = time.perf_counter()
            turn = None
            for item in respond(self.model, messages, functions, params=self.params, template=self.template,
                                parallel=self.parallel and not self.final_answer, strict=False,
                                threshold=self.threshold, tool_choice="required" if self.final_answer else "auto"):
                if not isinstance(item, str):
                    turn = item
            assert turn is not None
            final = next((c for c in turn.calls if c.name == FINAL_ANSWER.name), None)
            if final is not None:
                answer = final.arguments.get("answer")
                turn.content = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
                turn.calls = []
            step = Step(n, turn.prompt, turn.content, turn.calls, usage=turn.usage)
            if not turn.calls:
                step.seconds = time.perf_counter() - t0
                self._report(step)
                steps.append(step)
                messages.append({"role": "assistant", "content": turn.content})
                return AgentResult(task, turn.content.strip(), steps, "answer", messages)
            messages.append(turn.to_message())
            for call in turn.calls:
                res = self.toolbox.call(call)
                step.results.append(res)
                messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": res.output})
            step.seconds = time.perf_counter() - t0
            self._report(step)
            steps.append(step)
        last = steps[-1].results[-1].output if steps and steps[-1].results else ""
        return AgentResult(task, f"(stopped after {self.max_steps} steps without an answer; the last tool result: "
                                 f"{last[:300]})", steps, "max_steps", messages)

    def _report(self, step: Step) -> None:
        if self.on_step is not None:
            self.on_step(step)

    def close(self) -> None:
        self.toolbox.close()


def _invalid(arguments: Any, schema: dict) -> str | None:
    from jsonschema import ValidationError, validate

    if not isinstance(arguments, dict):
        return "the arguments must be a JSON object"
    try:
        validate(arguments, schema)
    except ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"{exc.message} (at {path})"
    return None


def run_agent(task: str, tools: Sequence[Tool | str], *, model=None, collection: str | None = None,
              root=None, settings=None, **kwargs) -> AgentResult:
    """One task with the named tools: ``run_agent("What is 2**10?", ["calculator"])``."""
    from pathlib import Path

    from ..config import load_settings
    from ..models.registry import get_model

    settings = settings or load_settings()
    m = model if model is not None and not isinstance(model, str) else get_model(model or settings.default_model,
                                                                               settings=settings)
    ctx = ToolContext(collection=collection, root=Path(root) if root else None, settings=settings, model=m)
    agent = Agent(m, tools, context=ctx, **kwargs)
    try:
        return agent.run(task)
    finally:
        agent.close()
