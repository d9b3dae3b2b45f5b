"""Options and helpers shared by the commands that load a model (generate, chat, ask, summarize, tasks)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from . import _common

# Options shared by generate and chat (Typer reads them from the signatures).
MODEL = typer.Option(None, "--model", "-m", help="Registry name or path to a .gguf file. [default: smollm2-135m-instruct]")
SYSTEM = typer.Option(None, "--system", "-s", help="System prompt for a chat model; \"\" sends none. "
                      "[default: the system_prompt setting, \"You are a helpful assistant. Answer the question "
                      "directly and briefly.\"; --show-prompt shows it]")
TEMPERATURE = typer.Option(0.7, "--temperature", "-t", help="Sampling temperature; 0 is greedy.")
TOP_K = typer.Option(40, "--top-k", help="Sample from the k most likely tokens (0 = all).")
TOP_P = typer.Option(0.95, "--top-p", help="Nucleus sampling: smallest set with this much probability, in (0, 1].")
MIN_P = typer.Option(0.05, "--min-p", help="Drop tokens below this fraction of the top token's probability.")
REPEAT = typer.Option(1.0, "--repeat-penalty", help="Penalty for repeating recent tokens (1 = none).")
MAX_TOKENS = typer.Option(256, "--max-tokens", "-n", help="Most tokens to generate.")
SEED = typer.Option(None, "--seed", help="Seed for reproducible sampling.")
GREEDY = typer.Option(False, "--greedy", help="Always take the most likely token.")
STOP = typer.Option(None, "--stop", help="Stop sequence (repeatable).")
N_CTX = typer.Option(None, "--n-ctx", help="Context window to allocate. [default: the model's, capped at 8192]")


def _params(temperature, top_k, top_p, min_p, repeat_penalty, max_tokens, seed, greedy, stop):
    from ..generation import SamplingParams

    return SamplingParams(
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
        repeat_penalty=repeat_penalty, max_tokens=max_tokens, seed=seed,
        greedy=greedy, stop=tuple(stop or ()),
    )


def _load(model: Optional[str], n_ctx: Optional[int]):
    from ..errors import InvalidParameter
    from ..models.registry import get_model

    if n_ctx is not None and n_ctx < 16:
        raise InvalidParameter(f"--n-ctx must be at least 16, got {n_ctx}")
    opts = {"n_ctx": n_ctx} if n_ctx else {}
    return get_model(model, settings=_common.settings(), **opts)


def _show_prompt(text: str) -> None:
    err = sys.stderr
    err.write("----- prompt -----\n" + text + ("" if text.endswith("\n") else "\n") + "------------------\n")
    err.flush()


def _system(system: Optional[str], chat: bool) -> Optional[str]:
    """The system prompt to send: --system as given ("" for none), else the setting, for chat models only."""
    if system is not None:
        return system or None
    return (_common.settings().system_prompt or None) if chat else None
