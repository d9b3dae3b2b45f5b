"""The interactive chat loop behind ``genstack chat``."""

from __future__ import annotations

import sys
from typing import Iterator, TextIO

from ..errors import GenstackError, InvalidParameter
from ..generation import Message, SamplingParams, fit_messages
from ..models.base import Model

_PARAM_TYPES = {
    "temperature": float, "top_k": int, "top_p": float, "min_p": float,
    "repeat_penalty": float, "max_tokens": int, "seed": int, "greedy": bool,
}


def _parse_value(key: str, raw: str):
    typ = _PARAM_TYPES[key]
    if key == "seed" and raw.lower() in ("none", "random", ""):
        return None
    if typ is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise InvalidParameter(f"{key} must be true or false, got {raw!r}")
    try:
        return typ(raw)
    except ValueError:
        raise InvalidParameter(f"{key} must be a {typ.__name__}, got {raw!r}") from None


def read_prompts(inp: TextIO, out: TextIO) -> Iterator[str]:
    """The non-empty input lines, stripped, with a ``>>>`` prompt when the input is a terminal."""
    interactive = inp.isatty()
    while True:
        if interactive:
            out.write(">>> ")
            out.flush()
        line = inp.readline()
        if not line:
            return
        line = line.strip()
        if line:
            yield line


class ChatRepl:
    def __init__(self, model: Model, params: SamplingParams, *, system: str | None = None,
                 show_prompt: bool = False, store=None, session=None):
        self.model = model
        self.params = params
        self.system = system
        self.show_prompt = show_prompt
        self.store, self.session = store, session  # a SessionStore and Session to save turns to
        self.history: list[Message] = session.history() if session is not None else []

    def messages(self) -> list[Message]:
        return ([Message("system", self.system)] if self.system else []) + self.history

    def command(self, line: str, out: TextIO) -> bool:
        """Handle a /command; return False to leave the loop."""
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        if cmd in ("/exit", "/quit"):
            return False
        if cmd == "/reset":
            self.history.clear()
            out.write("(conversation cleared)\n")
        elif cmd == "/system":
            self.system = arg or None
            out.write(f"(system prompt {'set' if arg else 'cleared'})\n")
        elif cmd == "/params":
            changes = {}
            for item in arg.split():
                key, eq, value = item.partition("=")
                if not eq or key not in _PARAM_TYPES:
                    raise InvalidParameter(f"use /params key=value with key in {', '.join(_PARAM_TYPES)}")
                changes[key] = _parse_value(key, value)
            self.params = self.params.replace(**changes)
            shown = {k: v for k, v in self.params.to_dict().items()}
            out.write("(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")\n")
        elif cmd == "/help":
            out.write("/reset  /system TEXT  /params [key=value ...]  /exit\n")
        else:
            out.write(f"(unknown command {cmd}; try /help)\n")
        return True

    def turn(self, text: str, out: TextIO) -> None:
        n_ctx = self.model.context_length or 2048
        budget = n_ctx - self.params.max_tokens
        before = len(self.history) + 1
        msgs = fit_messages(self.messages() + [Message("user", text)], self.model.count_chat_tokens, budget)
        dropped = before - sum(1 for m in msgs if m.role != "system")
        if dropped > 0:
            self.history = [m for m in msgs if m.role != "system"][:-1]
            sys.stderr.write(f"(trimmed {dropped} old message(s) to fit the {n_ctx}-token window)\n")
        stream = self.model.stream(messages=msgs, params=self.params, on_overflow="clamp")
        if self.show_prompt:
            sys.stderr.write("----- prompt -----\n" + (stream.prompt or "") + "\n------------------\n")
        for piece in stream:
            out.write(piece)
            out.flush()
        out.write("\n")
        assert stream.completion is not None
        self.history += [Message("user", text), Message("assistant", stream.completion.text)]
        if self.store is not None and self.session is not None:
            self.store.add_exchange(self.session, text, stream.completion.text)

    def run(self, inp: TextIO, out: TextIO) -> int:
        interactive = inp.isatty()
        failed = False
        if interactive:
            out.write(f"Chatting with {self.model.name}. /help for commands, /exit to leave.\n")
        for line in read_prompts(inp, out):
            try:
                if line.startswith("/"):
                    if not self.command(line, out):
                        return 0
                else:
                    self.turn(line, out)
            except GenstackError as exc:  # report and keep the conversation going
                sys.stderr.write(f"error: {exc}\n")
                failed = True
        return 1 if failed and not interactive else 0
