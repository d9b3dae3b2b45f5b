"""Training data for ``genstack tune``: rows read with their line numbers, and the masked tokens.

Supervised rows (``tune sft``), one JSON object per line, in any of these shapes:

* ``{"messages": [{"role": ..., "content": ...}, ...]}``: chat; the loss is on every assistant
  turn. ``genstack synth qa`` / ``synth task`` and the web UI's feedback export
  (``genstack serve``'s ``/api/feedback/export``) write this; a feedback row rated ``-1`` is a
  thumbs-down answer and is skipped, reported as such.
* ``{"prompt": "...", "completion": "..."}``: one user turn and its answer.

Preference pairs (``tune dpo``):

* ``{"prompt": str | messages, "chosen": str | messages, "rejected": str | messages}``;
* the feedback export: a thumbs-up and a thumbs-down answer to the same prompt make a pair;
* arena battles (``genstack arena export``'s Chatbot Arena layout: ``conversation_a``,
  ``conversation_b``, ``winner``), or the arena database itself (:func:`arena_pairs`): the winner's
  answer is chosen, the loser's rejected; ties are skipped.

A bad row is skipped and reported with its line number; a file with no usable row is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .._files import read_user_text
from ..errors import InvalidParameter

__all__ = ["Rows", "load_sft_rows", "load_pairs", "arena_pairs", "mask_assistant", "IGNORE"]

#: the label value the loss ignores (torch's cross-entropy ``ignore_index``)
IGNORE = -100
_ROLES = ("system", "user", "assistant")


@dataclass
class Rows:
    """The usable rows of a file and, for each skipped one, ``(line, reason)``."""

    path: str
    rows: list[Any] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        s = f"{len(self.rows)} rows from {self.path}"
        if self.skipped:
            shown = "; ".join(f"line {n}: {why}" for n, why in self.skipped[:3])
            more = f" (and {len(self.skipped) - 3} more)" if len(self.skipped) > 3 else ""
            s += f", {len(self.skipped)} skipped ({shown}{more})"
        return s


def _lines(path: str | Path) -> list[tuple[int, str]]:
    text = read_user_text(path, "training data")
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError("'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"message {i + 1} needs a role (system, user or assistant) and a string content")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _sft_row(row: dict[str, Any]) -> list[dict[str, str]]:
    if "messages" in row:
        if row.get("rating") == -1:
            raise ValueError("a thumbs-down answer (rating -1) is not a training target")
        msgs = _messages(row["messages"])
    elif "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError("'prompt' and 'completion' must be strings")
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    else:
        raise ValueError("needs 'messages', or 'prompt' and 'completion'")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise ValueError("no assistant turn to learn from")
    if msgs[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")
    return msgs


def _check_any(rows: Rows, what: str) -> Rows:
    if not rows.rows:
        detail = f": {rows.skipped[0][1]} (line {rows.skipped[0][0]})" if rows.skipped else ": the file is empty"
        raise InvalidParameter(f"no usable {what} in {rows.path}{detail}")
    return rows


def load_sft_rows(path: str | Path) -> Rows:
    """Chat conversations to fine-tune on (see the module docstring for the formats)."""
    out = Rows(str(path))
    for n, line in _lines(path):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            out.rows.append(_sft_row(row))
        except json.JSONDecodeError:
            out.skipped.append((n, "not JSON"))
        except ValueError as exc:
            out.skipped.append((n, str(exc)))
    return _check_any(out, "training rows")


def _as_prompt(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("'prompt' is empty")
        return [{"role": "user", "content": value}]
    msgs = _messages(value)
    if msgs[-1]["role"] == "assistant":
        raise ValueError("the prompt must end with a user turn")
    return msgs


def _as_answer(value: Any, key: str) -> str:
    if isinstance(value, list):  # TRL's conversational form: [{"role": "assistant", "content": ...}]
        msgs = _messages(value)
        if len(msgs) != 1 or msgs[0]["role"] != "assistant":
            raise ValueError(f"{key!r} must be one assistant message")
        value = msgs[0]["content"]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string")
    return value


def load_pairs(path: str | Path) -> Rows:
    """Preference pairs ``{"prompt": messages, "chosen": str, "rejected": str}``: rows that carry them,
    and thumbs-up / thumbs-down answers to the same prompt in a feedback export."""
    out = Rows(str(path))
    rated: dict[str, dict[int, tuple[int, list, str]]] = {}
    for n, line in _lines(path):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            if "chosen" in row or "rejected" in row:
                prompt = _as_prompt(row.get("prompt"))
                chosen, rejected = _as_answer(row.get("chosen"), "chosen"), _as_answer(row.get("rejected"), "rejected")
                if chosen.strip() == rejected.strip():
                    raise ValueError("'chosen' and 'rejected' are the same answer")
                out.rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
            elif "conversation_a" in row and "conversation_b" in row:
                out.rows.append(_battle_pair(row.get("conversation_a"), row.get("conversation_b"), row.get("winner")))
            elif "messages" in row and row.get("rating") in (1, -1):
                msgs = _messages(row["messages"])
                if msgs[-1]["role"] != "assistant" or len(msgs) < 2:
                    raise ValueError("a rated row ends with the assistant's answer")
                key = json.dumps(msgs[:-1], sort_keys=True)
                rated.setdefault(key, {}).setdefault(row["rating"], (n, msgs[:-1], msgs[-1]["content"]))
            else:
                raise ValueError("needs 'prompt', 'chosen' and 'rejected' (or a rated feedback row)")
        except json.JSONDecodeError:
            out.skipped.append((n, "not JSON"))
        except ValueError as exc:
            out.skipped.append((n, str(exc)))
    for by_rating in rated.values():
        if 1 in by_rating and -1 in by_rating:
            _, prompt, chosen = by_rating[1]
            out.rows.append({"prompt": prompt, "chosen": chosen, "rejected": by_rating[-1][2]})
        else:
            n, _, _ = next(iter(by_rating.values()))
            out.skipped.append((n, "a rated answer with no oppositely rated answer to the same prompt"))
    out.skipped.sort()
    return _check_any(out, "preference pairs")


def _battle_pair(conv_a: Any, conv_b: Any, winner: Any) -> dict[str, Any]:
    if winner not in ("model_a", "model_b"):
        raise ValueError(f"a battle with winner {winner!r} is not a preference (only model_a or model_b is)")
    a, b = _messages(conv_a), _messages(conv_b)
    if a[:-1] != b[:-1] or a[-1]["role"] != "assistant" or b[-1]["role"] != "assistant":
        raise ValueError("the two conversations must share the prompt and end with each model's answer")
    chosen, rejected = (a, b) if winner == "model_a" else (b, a)
    if not chosen[-1]["content"].strip():
        raise ValueError("the chosen answer is empty (a vote for no answer teaches nothing to prefer)")
    if chosen[-1]["content"].strip() == rejected[-1]["content"].strip():
        raise ValueError("'chosen' and 'rejected' are the same answer")
    return {"prompt": a[:-1], "chosen": chosen[-1]["content"], "rejected": rejected[-1]["content"]}


def arena_pairs(settings: Any) -> Rows:
    """Preference pairs from the arena's voted battles (``genstack arena``): winner chosen, loser rejected."""
    from ..arena.store import ArenaDB

    db = ArenaDB.for_settings(settings)
    out = Rows("the arena")
    try:
        for n, b in enumerate(db.battles(voted=True), 1):
            conv = lambda ans: [{"role": "user", "content": b["prompt"]}, {"role": "assistant", "content": ans}]  # noqa: E731
            try:
                out.rows.append(_battle_pair(conv(b["answer_a"]), conv(b["answer_b"]), b["winner"]))
            except ValueError as exc:
                out.skipped.append((n, str(exc)))
    finally:
        db.close()
    return _check_any(out, "preference pairs (voted battles with a winner)")


def mask_assistant(tokenizer: Any, messages: Sequence[dict[str, str]], max_len: int) -> dict[str, list[int]]:
    """Token ids of the conversation in the model's own chat template, and labels that keep only the
    assistant turns' tokens (each turn's end-of-turn marker included, so the model learns to stop);
    the rest is :data:`IGNORE`. Truncated to ``max_len`` tokens.

    Each assistant turn's span is where the template's rendering of the conversation up to that turn
    (with the generation prompt) ends and the rendering through it ends. A template whose rendering
    of a prefix is not a prefix of the whole cannot be masked this way and is an error."""
    def ids(msgs, gen):
        out = tokenizer.apply_chat_template(list(msgs), tokenize=True, add_generation_prompt=gen)
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return list(out)

    full = ids(messages, False)
    labels = [IGNORE] * len(full)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start, end = ids(messages[:i], True), ids(messages[: i + 1], False)
        if full[: len(end)] != end or end[: len(start)] != start:
            raise InvalidParameter(
                "the model's chat template renders a conversation's start differently from the whole: "
                "the loss cannot be masked to the assistant turns"
            )
        labels[len(start): len(end)] = full[len(start): len(end)]
    full, labels = full[:max_len], labels[:max_len]
    return {"input_ids": full, "attention_mask": [1] * len(full), "labels": labels}
