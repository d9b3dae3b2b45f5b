"""genstack agent: a task, a model and an allowlist of tools; and genstack tools (what is installed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import _common
from ._options import MODEL, N_CTX, _load, _show_prompt

tools_app = typer.Typer(help="The tools agents can be given (built-in and plugins).", no_args_is_help=True)


def agent(
    task: str = typer.Argument(..., help="What to do, in words."),
    tools: str = typer.Option("calculator,datetime", "--tools", help="The tools this run may use, comma-separated "
                              "(the allowlist; genstack tools list shows what is installed)."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="The collection the search and ask "
                                             "tools use."),
    root: Optional[Path] = typer.Option(None, "--root", help="The one folder the read_file tool may read."),
    model: Optional[str] = MODEL,
    max_steps: int = typer.Option(6, "--max-steps", help="Stop after this many model turns."),
    approve: bool = typer.Option(False, "--approve", help="Ask before each call of a tool with side effects "
                                 "(without it, such calls are refused)."),
    allow: List[str] = typer.Option([], "--allow", help="Run this side-effect tool without asking (repeatable)."),
    injection: str = typer.Option("strip", "--injection", help="Tool results that read as instructions to the model: "
                                  "strip (remove those sentences), flag (keep, and report), off."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="Sampling temperature; 0 is greedy."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for reproducible sampling."),
    n_ctx: Optional[int] = N_CTX,
    call_threshold: str = typer.Option("model", "--call-threshold", help="Call a tool when log P(<tool_call>) "
                                       "reaches this: a number, 'model' (the model's calibrated value, if any) or "
                                       "'none' (only when the model's own text opens a call)."),
    final_answer: bool = typer.Option(False, "--final-answer", help="Every turn is a tool call and the run ends "
                                      "with a call of final_answer(answer) (smolagents' design; better for small "
                                      "models, which rarely open a call by themselves)."),
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print each step's exact prompt on stderr."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not record the steps in the request log."),
    json_out: bool = typer.Option(False, "--json", help="Print the whole run as JSON: steps, calls, results."),
) -> None:
    """Let the model call tools until it answers: every call is checked against the allowlist and the
    tool's schema, tools with side effects need --approve or --allow, and tool results are screened for
    injected instructions like retrieved documents. Each step is shown (--show-prompt adds the prompt)
    and recorded in the request log (genstack logs).

    The bundled 135M model picks a tool and writes valid calls (a grammar makes them valid), but often
    the wrong tool or arguments: benchmarks/RESULTS.md has its figures. For real work give it a bigger
    --model (openai:MODEL@URL).
    """
    from ..agents.loop import Agent
    from ..agents.tools import ToolContext
    from ..errors import InvalidParameter
    from ..generation import SamplingParams

    if injection not in ("strip", "flag", "off"):
        raise InvalidParameter(f"--injection must be strip, flag or off, got {injection!r}")
    threshold = parse_threshold(call_threshold)
    settings = _common.settings()
    m = _load(model, n_ctx)
    ctx = ToolContext(collection=collection, root=root, settings=settings, model=m)
    err = _common.console(stderr=True)
    log = None if no_log else _log(settings, m.name)
    allowed = set(allow)

    def approve_call(tool, call) -> bool:
        if tool.name in allowed:
            return True
        if not approve:
            return False
        if not sys.stdin.isatty():
            err.print(f"[yellow]{tool.name} needs approval and stdin is not a terminal: refused (use --allow "
                      f"{tool.name})[/]")
            return False
        return typer.confirm(f"run {tool.name}({json.dumps(call.arguments, ensure_ascii=False)})?", default=False)

    def on_step(step) -> None:
        if show_prompt and step.prompt:
            _show_prompt(step.prompt)
        if not json_out:
            for r in step.results:
                args = json.dumps(r.call.arguments, ensure_ascii=False)
                err.print(f"[dim]step {step.n}:[/] {r.call.name}({args}) → [{_STYLE.get(r.status, '')}]{r.status}[/]: "
                          f"{_short(r.output)}", highlight=False, markup=True)
                for f in r.flags:
                    err.print(f"[yellow]  {f['action']} from the result: {f['text'][:100]}[/]", highlight=False)
        if log is not None:
            log(task, step)

    params = SamplingParams(temperature=temperature, greedy=temperature == 0, seed=seed, max_tokens=256)
    a = Agent(m, [t.strip() for t in tools.split(",") if t.strip()], context=ctx, max_steps=max_steps,
              approve=approve_call, params=params, injection=injection, on_step=on_step, threshold=threshold,
              final_answer=final_answer)
    try:
        result = a.run(task)
    finally:
        a.close()
    if json_out:
        _common.print_json(result.to_dict())
    else:
        print(result.answer)
    if result.stopped != "answer":
        raise typer.Exit(2)


def parse_threshold(value: str):
    """--call-threshold: a number, "model" or "none"."""
    from ..errors import InvalidParameter

    v = value.strip().lower()
    if v in ("model", "none"):
        return None if v == "none" else "model"
    try:
        return float(v)
    except ValueError:
        raise InvalidParameter(f"--call-threshold must be a number, model or none, got {value!r}") from None


_STYLE = {"ok": "green", "error": "red", "refused": "red", "denied": "yellow", "invalid": "red"}


def _short(text: str, n: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def _log(settings, model: str):
    """A function recording one step in the request log (the server's, read by genstack logs)."""
    from ..server.logdb import LogDB

    db = LogDB(settings.data_dir / "server.db")
    run_id = "agent-" + __import__("uuid").uuid4().hex[:16]

    def record(task, step) -> None:
        calls = [c.to_openai()["function"] for c in step.calls]
        db.log_request(id=f"{run_id}-{step.n}", route="agent", model=model, key_id=None,
                       status=200, request={"task": task, "step": step.n},
                       response=json.dumps({"content": step.content, "calls": calls,
                                            "results": [r.to_dict() for r in step.results]}, ensure_ascii=False),
                       prompt_tokens=step.usage.prompt_tokens, completion_tokens=step.usage.completion_tokens,
                       latency_s=round(step.seconds, 4), ttft_s=None, prompt=step.prompt, params=None)

    return record


@tools_app.command("list")
def list_tools(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every installed tool: name, side effects, description and argument schema."""
    from ..agents.tools import load_tool, tool_names

    rows = []
    for name in tool_names():
        t = load_tool(name)
        rows.append({"name": name, "side_effects": t.side_effects, "description": t.description,
                     "parameters": t.parameters})
    if json_out:
        _common.print_json(rows)
        return
    from rich.table import Table

    table = Table(title="tools")
    for col in ("name", "side effects", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], "yes" if r["side_effects"] else "no", r["description"])
    _common.console().print(table)


def mcp(
    transport: str = typer.Option("stdio", "--transport", help="stdio (an MCP client starts this command) or http "
                                  "(streamable HTTP at http://HOST:PORT/mcp)."),
    tools: Optional[str] = typer.Option(None, "--tools", help="The tools to serve, comma-separated. [default: "
                                        "search,ask,calculator,datetime with --collection, else calculator,datetime]"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="The collection search and ask use."),
    root: Optional[Path] = typer.Option(None, "--root", help="The one folder the read_file tool may read."),
    model: Optional[str] = MODEL,
    allow: List[str] = typer.Option([], "--allow", help="A tool with side effects that clients may run (repeatable); "
                                    "others are refused."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP: the address to listen on."),
    port: int = typer.Option(8765, "--port", help="HTTP: the port."),
    api_key: List[str] = typer.Option([], "--api-key", help="HTTP: an accepted key, KEY (every served tool) or "
                                      "KEY:tool,tool (only those; repeatable). Clients send 'Authorization: Bearer "
                                      "KEY'. Also GENSTACK_MCP_API_KEYS, space-separated."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="HTTP: listen on a non-loopback address without "
                                      "API keys (put it behind a proxy that authenticates). With --api-key it "
                                      "is not needed."),
) -> None:
    """Serve collections (search, ask) and the tools as an MCP server, for Claude Desktop, IDEs and other
    MCP clients. Calls get the agent's rules: only the served tools, arguments checked against their
    schemas, side-effect tools only when --allow'ed, results screened for injected instructions. Over
    HTTP, --api-key limits each key to some of the served tools: it lists only those and calls of
    others are refused."""
    from ..agents.loop import ToolBox
    from ..agents.mcp import build_server, parse_api_keys, require_mcp, serve_http, serve_stdio
    from ..agents.tools import ToolContext
    from ..errors import InvalidParameter

    require_mcp()
    if transport not in ("stdio", "http"):
        raise InvalidParameter(f"--transport must be stdio or http, got {transport!r}")
    specs = list(api_key) + os.environ.get("GENSTACK_MCP_API_KEYS", "").split()
    if specs and transport != "http":
        raise InvalidParameter("--api-key is for --transport http (over stdio the client starts this process)")
    from ..server.config import is_loopback

    if transport == "http" and not is_loopback(host) and not (allow_remote or specs):
        raise InvalidParameter(f"--host {host} is not a loopback address; give --api-key (or --allow-remote "
                               "behind an authenticating proxy) to listen there")
    names = tools or ("search,ask,calculator,datetime" if collection else "calculator,datetime")
    served = [t.strip() for t in names.split(",") if t.strip()]
    keys = parse_api_keys(specs, served)
    settings = _common.settings()
    m = _load(model, None)
    ctx = ToolContext(collection=collection, root=root, settings=settings, model=m)
    allowed = set(allow)
    box = ToolBox(served, ctx, approve=lambda tool, call: tool.name in allowed)
    server = build_server(box)
    try:
        if transport == "stdio":
            serve_stdio(server)
        else:
            auth = f", {len(keys)} API key(s)" if keys else ", no API key"
            sys.stderr.write(f"genstack mcp: streamable HTTP at http://{host}:{port}/mcp (tools: {names}{auth})\n")
            serve_http(server, host, port, api_keys=keys)
    finally:
        box.close()


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
    app.command("mcp")(mcp)
    app.add_typer(tools_app, name="tools")
