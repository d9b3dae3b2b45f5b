"""genstack serve, logs and feedback export."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import _common

feedback_app = typer.Typer(help="Work with the thumbs up/down feedback given in the web UI.", no_args_is_help=True)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs an API key."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", help="Server processes; each loads its own model copy."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m",
                                              help="Generator to serve besides the default (registry name or GGUF path; repeatable). "
                                                   "Default: every installed registry generator."),
    api_key: Optional[List[str]] = typer.Option(None, "--api-key",
                                                help="Accepted API key (repeatable). Also GENSTACK_API_KEYS=k1,k2."),
    allowed_host: Optional[List[str]] = typer.Option(
        None, "--allowed-host", help="Another name the server answers to (the Host header; repeatable; "
                                     ".example.com admits subdomains; * turns the check off). "
                                     "localhost and IP addresses of this server always work."),
    cors_origin: Optional[List[str]] = typer.Option(
        None, "--cors-origin", help="A web origin (http://host:port) whose pages may call the API from a browser "
                                    "(repeatable). Pages from any other site are refused."),
    max_body: int = typer.Option(1_000_000, "--max-body-bytes", help="Largest request body (413 above)."),
    max_upload: int = typer.Option(20_000_000, "--max-upload-bytes", help="Largest upload request (413 above)."),
    max_prompt_tokens: int = typer.Option(4096, "--max-prompt-tokens", help="Most prompt tokens per request (400 above; 0 = the model's window)."),
    max_tokens: int = typer.Option(1024, "--max-tokens-cap", help="Most tokens a request may ask for (400 above)."),
    rate_limit: int = typer.Option(120, "--rate-limit", help="Requests per minute per key or client address (429 above; 0 = off)."),
    concurrency: int = typer.Option(1, "--concurrency", help="Generations running at once."),
    batch: int = typer.Option(0, "--batch", help="Decode up to N requests together in one llama.cpp batch (raises --concurrency to N; 0 = off)."),
    batch_kv: str = typer.Option("unified", "--batch-kv", help="With --batch: unified (fastest) or split (greedy and seeded output identical to one request at a time)."),
    queue: int = typer.Option(32, "--queue", help="Requests waiting for a slot (503 beyond)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds a request may take, queueing included (504 after)."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not keep the request/response log in SQLite."),
    no_access_log: bool = typer.Option(False, "--no-access-log", help="Do not write JSON access-log lines to stderr."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    guard: str = typer.Option("flag", "--guard", help="Prompt-injection detector on user messages: off, flag (recorded) or block (400)."),
    no_canary: bool = typer.Option(False, "--no-canary", help="Do not put a canary in the system prompt nor withhold answers that echo it."),
    redact: str = typer.Option("secrets", "--redact", help="Redact answers and user messages: off, secrets (keys, tokens, passwords) or all PII."),
    sources: str = typer.Option("strip", "--sources", help="Sentences of retrieved chunks that give orders to the model: strip, flag or off."),
    arena: Optional[str] = typer.Option(None, "--arena", help="Models the web UI's Arena tab battles, comma-separated "
                                        "(each is served). Default: every generator served."),
) -> None:
    """Serve the OpenAI-compatible API, the collections API and the web UI.

    Open http://HOST:PORT/ in a browser, or point any OpenAI client at
    http://HOST:PORT/v1. Models load on their first request.
    """
    import importlib.util

    from ..errors import GenstackError, InvalidParameter
    from ..models.batching import KV_MODES
    from ..server import ServerConfig, serve as run

    missing = [m for m in ("fastapi", "uvicorn", "multipart", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise GenstackError(f"the server needs {', '.join(missing)}: pip install 'genstack[serve]'")

    if workers < 1:
        raise InvalidParameter("--workers must be at least 1")
    from ..guard.output import REDACT_MODES
    from ..guard.policy import INPUT_MODES, SOURCE_MODES

    for flag, value, allowed in (("--guard", guard, INPUT_MODES), ("--redact", redact, REDACT_MODES),
                                 ("--sources", sources, SOURCE_MODES), ("--batch-kv", batch_kv, KV_MODES)):
        if value not in allowed:
            raise InvalidParameter(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    if log_level not in ("debug", "info", "warning", "error"):
        raise InvalidParameter(f"--log-level must be debug, info, warning or error, got {log_level!r}")
    if any(not k.strip() or not k.partition(":")[0].strip() for k in api_key or []):
        raise InvalidParameter("--api-key must not be empty (an empty key would turn authentication off)")
    keys = list(api_key or []) + [k.strip() for k in os.environ.get("GENSTACK_API_KEYS", "").split(",") if k.strip()]
    config = ServerConfig(
        host=host, port=port, api_keys=tuple(keys), allowed_hosts=tuple(allowed_host or ()),
        allowed_origins=tuple(cors_origin or ()), models=tuple(model or ()), max_body_bytes=max_body,
        max_upload_bytes=max_upload, max_prompt_tokens=max_prompt_tokens, max_tokens_cap=max_tokens,
        rate_limit=rate_limit, max_concurrency=concurrency, max_queue=queue, request_timeout=timeout,
        log_requests=not no_log, access_log=not no_access_log, guard_input=guard, guard_canary=not no_canary,
        guard_redact=redact, guard_sources=sources, batch_slots=batch, batch_kv=batch_kv,
        arena_models=tuple(dict.fromkeys(a.strip() for a in (arena or "").split(",") if a.strip())))
    config.check_bind()
    if "*" in config.allowed_hosts:
        sys.stderr.write("genstack: warning: --allowed-host '*' turns the Host check off: any web page can reach this "
                         "server through DNS rebinding\n")
    if "*" in config.allowed_origins:
        sys.stderr.write("genstack: warning: --cors-origin '*' lets every web page the user opens call this server\n")
    settings = _common.settings()
    if model:
        from ..models.registry import check_model_name

        for m in model:  # fail now, not on the first request
            check_model_name(m, settings)
    if arena is not None:
        from ..arena.battles import check_arena_models

        check_arena_models(config.arena_models, settings)
    sys.stderr.write(f"genstack: http://{host}:{port}/  (API: http://{host}:{port}/v1, metrics: /metrics)\n")
    run(config, settings, workers=workers, log_level=log_level)


def logs(
    limit: int = typer.Option(20, "--limit", "-n", help="Newest requests to show."),
    json_out: bool = typer.Option(False, "--json", help="Print the full records as JSON."),
) -> None:
    """Browse the server's request/response log (newest first)."""
    from ..server.logdb import LogDB

    settings = _common.settings()
    db = LogDB(settings.data_dir / "server.db", read_only=True)
    try:
        rows = db.requests(limit)
    finally:
        db.close()
    if json_out:
        _common.print_json(rows)
        return
    from datetime import datetime

    from rich.markup import escape
    from rich.table import Table

    # one line per request at any width: short fixed columns, the response takes what is left
    t = Table(box=None, expand=True, pad_edge=False)
    for col, kw in (("when", {}), ("status", {"justify": "right"}), ("route", {}), ("model", {"max_width": 24}),
                    ("tokens", {"justify": "right"}), ("s", {"justify": "right"}), ("response", {"ratio": 1})):
        t.add_column(col, no_wrap=True, overflow="ellipsis", **kw)
    today = datetime.now().date()
    short = {"/v1/chat/completions": "chat", "/v1/completions": "complete", "/v1/embeddings": "embed"}
    for r in rows:
        req = r.get("request") or {}
        when = datetime.fromtimestamp(r["created"])
        tokens = f"{r['prompt_tokens'] or 0}+{r['completion_tokens'] or 0}"
        resp = " ".join((r.get("response") or "").split())
        t.add_row(when.strftime("%H:%M:%S" if when.date() == today else "%m-%d %H:%M"), str(r["status"]),
                  short.get(r["route"], r["route"]), escape(str(r.get("model") or req.get("model") or "")), tokens,
                  f"{r['latency_s']:.1f}" if r.get("latency_s") is not None else "", escape(resp))
    _common.console().print(t if rows else "no requests logged yet")


@feedback_app.command("export")
def feedback_export(
    output: Path = typer.Argument(..., help="JSONL file to write ('-' for standard output)."),
    fmt: str = typer.Option("messages", "--format", help="messages (chat fine-tuning records with the rating) or kto (TRL's unpaired preference format)."),
    only: str = typer.Option("all", "--only", help="all, up (thumbs up only: a supervised fine-tuning set) or down."),
) -> None:
    """Write the rated prompt/answer pairs as a JSONL fine-tuning dataset."""
    import json

    from ..server.logdb import LogDB, feedback_dataset

    settings = _common.settings()
    db = LogDB(settings.data_dir / "server.db", read_only=True)
    try:
        records = list(feedback_dataset(db.feedback(), fmt, only))
    finally:
        db.close()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if str(output) == "-":
        sys.stdout.write(lines)
        return
    tmp = output.with_name(output.name + ".part")
    tmp.write_text(lines, encoding="utf-8")
    tmp.replace(output)
    sys.stderr.write(f"wrote {len(records)} rated pairs to {output}\n")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("logs")(logs)
    app.add_typer(feedback_app, name="feedback")
