"""genstack generate and genstack chat."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from . import _common
from ._options import GREEDY, MAX_TOKENS, MIN_P, MODEL, N_CTX, REPEAT, SEED, STOP, SYSTEM, TEMPERATURE, TOP_K, TOP_P
from ._options import _load, _params, _show_prompt, _system


def generate(
    prompt: str = typer.Argument(..., help="The prompt; '-' reads it from standard input."),
    model: Optional[str] = MODEL,
    system: Optional[str] = SYSTEM,
    temperature: float = TEMPERATURE,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    min_p: float = MIN_P,
    repeat_penalty: float = REPEAT,
    max_tokens: int = MAX_TOKENS,
    seed: Optional[int] = SEED,
    greedy: bool = GREEDY,
    stop: Optional[List[str]] = STOP,
    raw: bool = typer.Option(False, "--raw", help="Send the prompt as is, without the chat template."),
    n_ctx: Optional[int] = N_CTX,
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print the exact prompt sent, on stderr."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object: text, finish_reason, usage."),
    json_schema: Optional[str] = typer.Option(None, "--json-schema", help="Only output JSON valid for this JSON Schema file (grammar-constrained; strings and arrays the schema leaves unbounded get at most 300 characters and 8 items, so the JSON always closes)."),
) -> None:
    """Generate text from a prompt, streamed to stdout.

    Chat models get the prompt as a user message in their chat template;
    completion models (and --raw) get it verbatim.
    """
    from ..errors import InvalidParameter
    from ..generation import Message

    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise InvalidParameter("the prompt is empty")
    params = _params(temperature, top_k, top_p, min_p, repeat_penalty, max_tokens, seed, greedy, stop)
    schema = None
    if json_schema is not None:
        from ..prompts.structured import load_schema

        schema = load_schema(json_schema)
    m = _load(model, n_ctx)
    chat = getattr(m, "is_chat", True) and not raw
    if system and not chat:
        raise InvalidParameter("--system needs a chat model and cannot be combined with --raw")
    system = _system(system, chat)
    if chat:
        msgs = ([Message("system", system)] if system else []) + [Message("user", prompt)]
        stream = m.stream(messages=msgs, params=params, json_schema=schema)
    else:
        stream = m.stream(prompt, params=params, json_schema=schema)
    if show_prompt:
        _show_prompt(stream.prompt or "")
    if schema is not None:
        from ..errors import GenstackError
        from ..prompts.structured import parse_json

        done = stream.collect()
        if done.finish_reason == "length":
            raise GenstackError(f"the JSON was cut off at --max-tokens {params.max_tokens}; raise it")
        value = parse_json(done.text, schema)
        _common.print_json({**done.to_dict(), "json": value} if json_out else value)
        return
    if json_out:
        done = stream.collect()
        out = done.to_dict()
        if show_prompt:
            out["prompt"] = done.prompt
        _common.print_json(out)
        return
    out = sys.stdout
    for piece in stream:
        out.write(piece)
        out.flush()
    out.write("\n")
    c = stream.completion
    if c is not None and c.finish_reason == "length" and sys.stderr.isatty():
        sys.stderr.write(f"[stopped at --max-tokens {params.max_tokens}]\n")


CHAT_HELP = """Commands: /reset (forget the conversation), /system TEXT (set the system prompt),
/params [key=value ...] (show or change sampling: temperature top_k top_p min_p
repeat_penalty max_tokens seed greedy), /exit (or Ctrl-D)."""


def chat(
    model: Optional[str] = MODEL,
    system: Optional[str] = SYSTEM,
    temperature: float = TEMPERATURE,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    min_p: float = MIN_P,
    repeat_penalty: float = REPEAT,
    max_tokens: int = MAX_TOKENS,
    seed: Optional[int] = SEED,
    greedy: bool = GREEDY,
    stop: Optional[List[str]] = STOP,
    n_ctx: Optional[int] = N_CTX,
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print each exact prompt sent, on stderr."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Chat over this collection (multi-turn RAG, with citations)."),
    session: Optional[str] = typer.Option(None, "--session", help="Resume (or create) this saved session; see `genstack sessions list`."),
    k: int = typer.Option(4, "--k", "-k", help="With --collection: chunks to retrieve per turn."),
    mode: str = typer.Option("hybrid", "--mode", help="With --collection: dense, bm25 or hybrid."),
    template: Optional[str] = typer.Option(None, "--template", help="With --collection: the ask template (zero_shot, few_shot, cot, FILE.toml)."),
    redact: Optional[str] = typer.Option(None, "--redact", help="With --collection: redact what you type before the search and the model see it: off, secrets or all (default: the redact setting, off)."),
) -> None:
    """Chat interactively, with streaming; history is trimmed to fit the window.

    With --collection every turn is answered from the collection: follow-up
    questions are rewritten into standalone searches using the history, and
    answers cite their sources. Conversations are saved when --collection or
    --session is given, and resumed with --session ID.
    """
    from .chat_repl import ChatRepl

    params = _params(temperature, top_k, top_p, min_p, repeat_penalty, max_tokens, seed, greedy, stop)
    if collection:
        from .rag_cmd import rag_chat

        from ..rag.config import DEFAULT_CONFIG

        raise typer.Exit(rag_chat(collection, session, model, n_ctx, k, mode, template, None, DEFAULT_CONFIG.focus,
                                  min(max_tokens, DEFAULT_CONFIG.server_max_tokens), show_prompt, redact))
    store = sess = None
    if session:
        from ..rag.sessions import SessionStore

        store = SessionStore(_common.settings())
        sess = store.get_or_create(session)
        if sess.collection:
            from ..errors import InvalidParameter

            raise InvalidParameter(f"session {sess.id} is a chat over collection {sess.collection!r}; add --collection {sess.collection}")
    m = _load(model, n_ctx)
    repl = ChatRepl(m, params, system=_system(system, getattr(m, "is_chat", True)), show_prompt=show_prompt, store=store, session=sess)
    raise typer.Exit(repl.run(sys.stdin, sys.stdout))


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("chat", epilog=CHAT_HELP)(chat)
