"""The agent task set: tasks over the sample corpus and the calculator, scored by their answers.

Each task (``genstack/data/agent_tasks.jsonl``, or a JSONL of your own) has an ``id``, a ``kind``
(calculator, lookup, lookup+calculator), the ``task`` text, the acceptable ``answers`` (numbers are
matched as numbers, anywhere in the answer, to 1e-6 relative or 2 decimals; strings as key facts,
case- and punctuation-insensitive) and the tools it ``needs`` (``"search|ask"``: either one).

A task succeeds when the agent answers (not when it stops at the step limit, whose message quotes
the last tool result) and the answer holds an acceptable answer. Reported beside it: how
often the needed tools were all called, the mean number of steps (model turns), how often the run hit
the step limit, and the seconds per task. One :class:`~genstack.agents.loop.Agent` runs every task,
with the same tools, so the model has to choose among them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from .._files import jsonl_objects, read_user_text
from ..errors import GenstackError, InvalidParameter

__all__ = ["AgentTask", "load_agent_tasks", "answer_ok", "evaluate_agent"]

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class AgentTask:
    id: str
    kind: str
    task: str
    answers: tuple
    needs: tuple = ()


def load_agent_tasks(path: str | Path | None = None) -> list[AgentTask]:
    """The built-in 36 tasks, or a JSONL file of ``{"id", "task", "answers", ["kind", "needs"]}``."""
    if path is None:
        text = resources.files("genstack.data").joinpath("agent_tasks.jsonl").read_text(encoding="utf-8")
        where = "the built-in agent tasks"
    else:
        text, where = read_user_text(path, "task file"), str(path)
    tasks = []
    for n, row in jsonl_objects(text, where):
        if not isinstance(row.get("task"), str) or not row["task"].strip():
            raise InvalidParameter(f"{where}, line {n}: a task needs a non-empty \"task\" string")
        answers = row.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, (str, int, float)) for a in answers):
            raise InvalidParameter(f"{where}, line {n}: \"answers\" must be a non-empty list of strings or numbers")
        tasks.append(AgentTask(str(row.get("id", n)), str(row.get("kind", "task")), row["task"], tuple(answers),
                               tuple(row.get("needs") or ())))
    if not tasks:
        raise InvalidParameter(f"{where} holds no tasks")
    return tasks


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text)]


def answer_ok(answer: str, answers: Sequence[Any]) -> bool:
    """Whether ``answer`` holds one of ``answers`` (numbers as numbers, strings as key facts)."""
    from .rag import contains_fact

    nums = _numbers(answer)
    for a in answers:
        if isinstance(a, bool):
            continue
        if isinstance(a, (int, float)):
            if any(abs(x - a) <= 1e-6 * max(1.0, abs(a)) or round(x, 2) == round(a, 2) for x in nums):
                return True
        elif contains_fact(answer, [a]):
            return True
    return False


@dataclass
class AgentEvalResult:
    rows: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        def agg(rows):
            n = len(rows)
            return {"tasks": n, "success": sum(r["success"] for r in rows) / n,
                    "tools_used": sum(r["tools_used"] for r in rows) / n,
                    "mean_steps": sum(r["steps"] for r in rows) / n,
                    "hit_step_limit": sum(r["stopped"] == "max_steps" for r in rows) / n,
                    "seconds_mean": sum(r["seconds"] for r in rows) / n}

        out = agg(self.rows) if self.rows else {"tasks": 0}
        kinds = sorted({r["kind"] for r in self.rows})
        out["by_kind"] = {k: agg([r for r in self.rows if r["kind"] == k]) for k in kinds}
        return out

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "rows": self.rows}


def _needs_met(needs: Sequence[str], called: set[str]) -> bool:
    return all(any(name in called for name in need.split("|")) for need in needs)


def evaluate_agent(model, tasks: Sequence[AgentTask], *, collection: str | None = None,
                   tools: Sequence[str] = ("calculator", "search", "ask"), max_steps: int = 4, settings=None,
                   threshold: Any = "model", final_answer: bool = False, progress: Callable[[int, int], None] | None = None) -> AgentEvalResult:
    """Run every task through one agent with ``tools`` and score the answers."""
    from ..agents.loop import Agent
    from ..agents.tools import ToolContext
    from ..generation import SamplingParams

    ctx = ToolContext(collection=collection, settings=settings, model=model)
    agent = Agent(model, list(tools), context=ctx, max_steps=max_steps,
                  params=SamplingParams(greedy=True, max_tokens=160, seed=0), threshold=threshold,
                  final_answer=final_answer)
    res = AgentEvalResult()
    try:
        for i, t in enumerate(tasks):
            t0 = time.perf_counter()
            try:
                r = agent.run(t.task)
                answer, steps, stopped = r.answer, len(r.steps), r.stopped
                called = {c.name for c in r.tool_calls}
                calls = [{"name": c.name, "arguments": c.arguments} for c in r.tool_calls]
            except GenstackError as exc:  # a failed run counts as a failed task, with its reason kept
                answer, steps, stopped, called, calls = f"error: {exc}", max_steps, "error", set(), []
            res.rows.append({"id": t.id, "kind": t.kind, "task": t.task, "answer": answer,
                             "success": stopped == "answer" and answer_ok(answer, t.answers),
                             "tools_used": _needs_met(t.needs, called), "calls": calls, "steps": steps,
                             "stopped": stopped, "seconds": round(time.perf_counter() - t0, 3)})
            if progress is not None:
                progress(i + 1, len(tasks))
    finally:
        agent.close()
    return res
