"""genstack ask, summarize, sessions and the RAG side of chat."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..rag.config import DEFAULT_CONFIG
from . import _common
from ._options import MODEL, N_CTX, _load, _show_prompt
from .ingest_cmd import _filters

sessions_app = typer.Typer(help="List, show and delete chat sessions.", no_args_is_help=True)

# the defaults are the pipeline's own (genstack.rag.config), so the CLI runs what eval rag measures
COLLECTION = typer.Option("default", "--collection", "-c", help="Collection to answer from.")
K = typer.Option(DEFAULT_CONFIG.k, "--k", "-k", help="Chunks to retrieve.")
MODE = typer.Option(DEFAULT_CONFIG.mode, "--mode", help="Retrieval: dense, bm25 or hybrid.")
TEMPLATE = typer.Option(None, "--template", help="Prompt template: zero_shot, one_shot, few_shot, cot, or FILE.toml[:NAME].")
MIN_SIM = typer.Option(None, "--min-similarity", help="Abstain when no chunk is this similar to the question (cosine). "
                       f"[default: {DEFAULT_CONFIG.min_similarity:.2f}]")
FOCUS = typer.Option(DEFAULT_CONFIG.focus, "--focus", help="Most relevant sentences shown to the model (0 = whole chunks).")
MAX_TOKENS = typer.Option(DEFAULT_CONFIG.answer_tokens, "--max-tokens", "-n", help="Most tokens in the answer.")


def _asker(collection, model, n_ctx, k, mode, template, min_similarity, focus, max_tokens, filters=None):
    from ..generation import SamplingParams
    from ..rag.pipeline import Asker
    from ..stores.collections import check_name

    check_name(collection)
    settings = _common.settings()
    params = SamplingParams(greedy=True, max_tokens=max_tokens)
    asker = Asker(collection, model=None, settings=settings, template=template, k=k, mode=mode,
                  min_similarity=min_similarity, params=params, filters=_filters(filters) or None,
                  focus=focus or None, answer_tokens=max_tokens)
    asker._model = _load(model, n_ctx)  # after the cheap checks: a bad collection fails before the model loads
    return asker


REDACT = typer.Option(None, "--redact", help="Redact what you type before the search and the model see it: off, "
                                             "secrets or all (default: the redact setting, off).")


def input_guard(redact: Optional[str]):
    """The guard that prepares a grounded request (None when redaction is off): the one the server runs."""
    from ..errors import InvalidParameter
    from ..guard import GuardPolicy
    from ..choices import REDACT_MODES

    mode = redact if redact is not None else _common.settings().redact
    if mode not in REDACT_MODES:
        raise InvalidParameter(f"--redact must be one of {', '.join(REDACT_MODES)}, got {mode!r}")
    return None if mode == "off" else GuardPolicy(input="off", canary=False, redact=mode, sources="off")


def write_answer(stream, out, *, show_prompt: bool = False):
    """Stream an answer to ``out`` and end with the checked one (the same tail the server sends)."""
    from ..rag.answer import render_tail

    if show_prompt and stream.prompt:
        _show_prompt(stream.prompt)
    for piece in stream:
        out.write(piece)
        out.flush()
    ans = stream.answer
    out.write(render_tail(ans) + "\n")
    return ans


def _print_sources(answer, console) -> None:
    from rich.markup import escape

    if not answer.sources:
        return
    title = "Closest sources" if answer.abstained else "Sources"
    console.print(f"\n[bold]{title}[/]")
    shown = answer.sources[:3] if answer.abstained else answer.sources
    for s in shown:
        if not answer.abstained and answer.cited and s.n not in answer.cited:
            continue
        sim = f" (similarity {s.hit.similarity:.2f})" if s.hit.similarity is not None else ""
        console.print(f"  [{s.n}] [cyan]{escape(s.label)}[/]{sim}\n      {escape(s.snippet())}")


def ask(
    question: str = typer.Argument(..., help="The question; '-' reads it from standard input."),
    collection: str = COLLECTION,
    k: int = K,
    mode: str = MODE,
    template: Optional[str] = TEMPLATE,
    model: Optional[str] = MODEL,
    min_similarity: Optional[float] = MIN_SIM,
    focus: int = FOCUS,
    max_tokens: int = MAX_TOKENS,
    filter: Optional[List[str]] = typer.Option(None, "--filter", help="Only chunks whose metadata KEY=VALUE (repeatable)."),
    json_schema: Optional[Path] = typer.Option(None, "--json-schema", help="Answer as JSON valid for this JSON Schema file (the same pipeline and checks; exit 1 when the sources do not support it)."),
    n_ctx: Optional[int] = N_CTX,
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print the exact prompt sent, on stderr."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object: answer, citations, sources, timings."),
    redact: Optional[str] = REDACT,
) -> None:
    """Answer a question from a collection, with numbered citations.

    Says "Not found in these documents." (exit code 0) when retrieval finds
    nothing similar enough or the model's answer is not supported by the sources.
    """
    from ..errors import GenstackError, InvalidParameter

    if question == "-":
        question = sys.stdin.read()
    if not question.strip():
        raise InvalidParameter("the question is empty")
    schema = None
    if json_schema is not None:
        from ..prompts.structured import load_schema

        schema = load_schema(json_schema)
    guard = input_guard(redact)
    asker = _asker(collection, model, n_ctx, k, mode, template, min_similarity, focus, max_tokens, filter)
    try:
        from ..rag.pipeline import RagRequest

        request = RagRequest(question, schema=schema)
        stream = asker.stream(guard.prepare_request(request) if guard else request)
        if json_out or schema is not None:
            if show_prompt and stream.prompt:
                _show_prompt(stream.prompt)
            ans = stream.collect()
            if schema is not None:
                if ans.abstained:
                    raise GenstackError(f"not found in these documents ({ans.reason}: {ans.checks[-1].detail})")
                out = ans.data if not json_out else ans.to_dict()
            else:
                out = ans.to_dict()
            if json_out and show_prompt:
                out["prompt"] = ans.prompt
            _common.print_json(out)
            return
        ans = write_answer(stream, sys.stdout, show_prompt=show_prompt)
        err = _common.console(stderr=True)
        settled = next((v for v in reversed(ans.checks) if v.settled), None)
        if settled is not None:  # which check decided, and why
            err.print(f"[dim](check {settled.check}: {settled.detail})[/]", highlight=False)
        if ans.invalid_citations:
            err.print(f"[yellow]removed citation(s) to sources that were not given: "
                      f"{', '.join(f'[{n}]' for n in ans.invalid_citations)}[/]")
        _print_sources(ans, _common.console())
    finally:
        asker.close()


def summarize(
    path: Optional[Path] = typer.Argument(None, help="A file to summarize (any format ingest reads)."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Summarize a whole collection instead."),
    style: str = typer.Option("bullets", "--style", help="bullets, paragraph or tldr."),
    max_words: int = typer.Option(120, "--max-words", help="Longest summary, in words."),
    template: Optional[str] = TEMPLATE,
    model: Optional[str] = MODEL,
    n_ctx: Optional[int] = N_CTX,
    json_out: bool = typer.Option(False, "--json", help="Print JSON: summary, steps, usage."),
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print every prompt sent, on stderr."),
) -> None:
    """Summarize a document or a collection by map-reduce; every step fits the window."""
    from ..errors import InvalidParameter
    from ..rag.summaries import STYLES, summarize as run

    if (path is None) == (collection is None):
        raise InvalidParameter("give a file to summarize or --collection NAME (one of the two)")
    if style not in STYLES:
        raise InvalidParameter(f"--style must be one of {', '.join(STYLES)}, got {style!r}")
    settings = _common.settings()
    if path is not None:
        from ..documents import LoaderOptions, LoadError, load_file

        if not path.is_file():
            raise InvalidParameter(f"not a file: {path}")
        try:
            texts = [d.text for d in load_file(path, LoaderOptions())]
        except LoadError as exc:
            raise InvalidParameter(f"{path}: {exc.reason}") from None
    else:
        from ..stores import open_collection
        from ..stores.collections import check_name

        check_name(collection)
        store = open_collection(collection, settings)
        try:
            texts = store.texts_in_order()
        finally:
            store.close()
        if not texts:
            raise InvalidParameter(f"collection {collection!r} is empty")
    m = _load(model, n_ctx)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = _common.console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=json_out or not err.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = run(texts, m, style=style, max_words=max_words, template=template, progress=progress,
                     data_dir=settings.data_dir)
    if show_prompt:
        for p in result.prompts:
            _show_prompt(p)
    if json_out:
        _common.print_json(result.to_dict())
    else:
        sys.stdout.write(result.text + "\n")


def rag_chat(collection: str, session_id: Optional[str], model, n_ctx, k, mode, template, min_similarity, focus,
             max_tokens, show_prompt: bool, redact: Optional[str] = None) -> int:
    """The REPL behind ``genstack chat --collection``."""
    from ..errors import GenstackError
    from ..rag.chat import ChatSession
    from .chat_repl import read_prompts

    guard = input_guard(redact)
    asker = _asker(collection, model, n_ctx, k, mode, template, min_similarity, focus, max_tokens)
    chat = ChatSession.resume(asker, session_id, model_name=asker.model.name)
    chat.guard = guard
    session = chat.session
    inp, out = sys.stdin, sys.stdout
    interactive = inp.isatty()
    console = _common.console()
    failed = False
    err = sys.stderr
    err.write(f"session {session.id}" + (f" (resumed, {len(session.turns) // 2} earlier turns)" if session.turns else "")
              + f"; resume with --session {session.id}\n")
    try:
        for line in read_prompts(inp, out):
            if line in ("/exit", "/quit"):
                return 0
            try:
                ans = write_answer(chat.stream(line), out, show_prompt=show_prompt)
                if ans.query != line:
                    err.write(f"(searched for: {ans.query})\n")
                _print_sources(ans, console)
            except GenstackError as exc:
                err.write(f"error: {exc}\n")
                failed = True
        return 1 if failed and not interactive else 0
    finally:
        chat.close()


@sessions_app.command("list")
def sessions_list(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Chat sessions, most recent first."""
    import datetime as dt

    from ..rag.sessions import SessionStore

    store = SessionStore(_common.settings())
    try:
        rows = store.list()
    finally:
        store.close()
    if json_out:
        _common.print_json([s.to_dict() for s in rows])
        return
    if not rows:
        sys.stdout.write("no sessions yet; start one with: genstack chat --collection NAME\n")
        return
    from rich.table import Table

    table = Table(box=None)
    for col in ("id", "collection", "turns", "updated", "title"):
        table.add_column(col)
    for s in rows:
        when = dt.datetime.fromtimestamp(s.updated).strftime("%Y-%m-%d %H:%M")
        table.add_row(s.id, s.collection or "-", str(len(s.turns) // 2), when, s.title)
    _common.console().print(table)


@sessions_app.command("show")
def sessions_show(session_id: str = typer.Argument(..., help="Session id."),
                  json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print a session's conversation."""
    from ..rag.sessions import SessionStore

    store = SessionStore(_common.settings())
    try:
        s = store.get(session_id)
    finally:
        store.close()
    if json_out:
        _common.print_json(s.to_dict(with_turns=True))
        return
    for t in s.turns:
        sys.stdout.write(f"{t.role}: {t.content}\n")


@sessions_app.command("delete")
def sessions_delete(session_id: str = typer.Argument(..., help="Session id.")) -> None:
    """Delete a session and its messages."""
    from ..rag.sessions import SessionStore

    store = SessionStore(_common.settings())
    try:
        store.delete(session_id)
    finally:
        store.close()
    sys.stdout.write(f"deleted session {session_id}\n")


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("summarize")(summarize)
    app.add_typer(sessions_app, name="sessions")
