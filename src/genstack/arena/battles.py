"""Battles: one prompt, two anonymised models answering in parallel with the same parameters.

:func:`stream_battle` runs both sides at once (each in its own thread, each
under its own guard session) and yields ``(side, piece)`` items as they
arrive, then ``(side, Outcome)`` when a side ends. :class:`Arena` is the
whole flow used by ``genstack arena battle``, the web UI's Arena tab and
``genstack arena judge``: draw a balanced pair, run the battle, store it,
take the vote.
"""

from __future__ import annotations

import queue
import random
import threading
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ..errors import InvalidParameter
from ..generation import Message, SamplingParams
from .store import ArenaDB

__all__ = ["Arena", "BattleResult", "stream_battle", "balanced_pair", "check_arena_models", "load_prompts", "SIDES"]

SIDES = ("a", "b")
_END = object()


def check_arena_models(models: Sequence[str], settings=None) -> list[str]:
    """The arena's model names, checked: at least two distinct ones, each a model genstack can load."""
    from ..models.registry import check_model_name

    names = list(dict.fromkeys(m.strip() for m in models if m and m.strip()))
    if len(names) < 2:
        raise InvalidParameter("an arena needs at least two different models, e.g. --models A,B"
                               + (f" (got only {names[0]!r})" if names else ""))
    for n in names:
        check_model_name(n, settings)
    return names


def balanced_pair(models: Sequence[str], counts, rng: random.Random) -> tuple[str, str]:
    """A pair among those with the fewest battles so far (chosen at random among them), in random order:
    every pair gets its share of battles, and each model sits on each side equally often on average."""
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    fewest = min(counts.get(frozenset(p), 0) for p in pairs)
    a, b = rng.choice([p for p in pairs if counts.get(frozenset(p), 0) == fewest])
    return (a, b) if rng.random() < 0.5 else (b, a)


def stream_battle(models: tuple[Any, Any], messages: Sequence[Message], params: SamplingParams, *,
                  guards: tuple[Any, Any] | None = None, locks: tuple[Any, Any] | None = None,
                  streaming: bool = True) -> Iterator[tuple[str, Any]]:
    """Both models answer ``messages`` at once; yields ``(side, text piece)`` and, when a side ends,
    ``(side, Outcome)``. ``guards`` are two GuardSessions (default: no guard); ``locks`` two locks
    a side holds while it generates (a model serving other requests too). Closing the iterator stops
    both sides at their next token."""
    from ..guard.policy import GuardPolicy
    from ..rag.respond import plain

    if guards is None:
        off = GuardPolicy.off()
        guards = (off.session(messages), off.session(messages))
    out: queue.Queue = queue.Queue()
    stop = threading.Event()

    def side(name: str, model, guard, lock) -> None:
        try:
            with ExitStack() as stack:
                if lock is not None:
                    stack.enter_context(lock)
                it = plain(model, messages, params, guard, streaming=streaming)
                try:
                    for item in it:
                        if stop.is_set():
                            break
                        out.put((name, item))
                finally:
                    it.close()
        except BaseException as exc:  # delivered to the consumer
            out.put((name, exc))
        finally:
            out.put((name, _END))

    threads = [threading.Thread(target=side, args=(s, m, g, lk), daemon=True, name=f"arena-{s}")
               for s, m, g, lk in zip(SIDES, models, guards, locks or (None, None))]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            name, item = out.get()
            if item is _END:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield name, item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


@dataclass
class BattleResult:
    """A finished battle (anonymous until the vote: the names are here, but the UI hides them)."""

    id: str
    prompt: str
    model_a: str
    model_b: str
    answer_a: str
    answer_b: str
    params: dict[str, Any]
    finish: dict[str, str] = field(default_factory=dict)
    winner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Arena:
    """Battles between ``models`` (names), stored in ``db``; loaded on first use through ``loader``."""

    def __init__(self, models: Sequence[str], *, settings=None, db: ArenaDB | None = None,
                 loader: Callable[[str], Any] | None = None, seed: int | None = None, check: bool = True):
        from ..config import load_settings

        self.settings = settings or load_settings()
        self.names = check_arena_models(models, self.settings) if check else list(models)
        if len(self.names) < 2:
            raise InvalidParameter("an arena needs at least two different models")
        self.db = db or ArenaDB.for_settings(self.settings)
        self._loader = loader
        self._models: dict[str, Any] = {}
        self._rng = random.Random(seed)

    def model(self, name: str):
        if name not in self._models:
            if self._loader is not None:
                self._models[name] = self._loader(name)
            else:
                from ..models.registry import get_model

                self._models[name] = get_model(name, settings=self.settings)
        return self._models[name]

    def pair(self) -> tuple[str, str]:
        return balanced_pair(self.names, self.db.pair_counts(), self._rng)

    def params(self, params: SamplingParams | None = None) -> SamplingParams:
        """The parameters both sides run with: one seed for both (drawn when not given), recorded."""
        params = params or SamplingParams()
        if params.seed is None:
            params = params.replace(seed=self._rng.randrange(2**31))
        return params

    def stream(self, prompt: str, *, params: SamplingParams | None = None, pair: tuple[str, str] | None = None,
               system: str | None = None, guards=None, locks=None, origin: str = "cli",
               extra: dict[str, Any] | None = None) -> Iterator[tuple[str, Any]]:
        """Run one battle: yields ``("start", (battle id, model_a, model_b))``, then the
        :func:`stream_battle` items, then ``("done", BattleResult)`` once it is stored."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidParameter("a battle needs a non-empty prompt")
        a, b = pair or self.pair()
        for name in (a, b):
            if name not in self.names:
                raise InvalidParameter(f"{name!r} is not one of this arena's models ({', '.join(self.names)})")
        if a == b:
            raise InvalidParameter("a model cannot battle itself")
        params = self.params(params)
        messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
        models = (self.model(a), self.model(b))
        bid = uuid.uuid4().hex[:16]
        yield "start", (bid, a, b)
        texts, finish = {"a": [], "b": []}, {}
        for side, item in stream_battle(models, messages, params, guards=guards, locks=locks):
            if isinstance(item, str):
                texts[side].append(item)
            else:  # the side's Outcome
                texts[side] = [item.text]
                finish[side] = item.finish_reason
            yield side, item
        answers = {s: "".join(t) for s, t in texts.items()}
        pdict = params.to_dict()
        self.db.add_battle(id=bid, prompt=prompt, model_a=a, model_b=b, answer_a=answers["a"], answer_b=answers["b"],
                                 params=pdict, origin=origin, extra={**(extra or {}), "finish": finish,
                                                                     **({"system": system} if system else {})})
        yield "done", BattleResult(bid, prompt, a, b, answers["a"], answers["b"], pdict, finish)

    def battle(self, prompt: str, **kwargs) -> BattleResult:
        """:meth:`stream`, run to the end."""
        result = None
        for kind, item in self.stream(prompt, **kwargs):
            if kind == "done":
                result = item
        assert result is not None
        return result

    def vote(self, battle_id: str, winner: str, *, voter: str | None = None) -> dict[str, Any]:
        return self.db.vote(battle_id, winner, voter=voter)


def load_prompts(path) -> list[str]:
    """Prompts from a file: one per line, or JSON lines with a ``prompt`` (or ``question``) field."""
    import json
    from pathlib import Path

    from .._files import read_user_text

    text = read_user_text(Path(path), "prompts file", InvalidParameter)
    prompts = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise InvalidParameter(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
            p = rec.get("prompt", rec.get("question")) if isinstance(rec, dict) else None
            if not isinstance(p, str) or not p.strip():
                raise InvalidParameter(f"{path}, line {n}: a JSON line needs a 'prompt' (or 'question') string")
            prompts.append(p.strip())
        else:
            prompts.append(line)
    if not prompts:
        raise InvalidParameter(f"{path} holds no prompts (one per line, or JSON lines with 'prompt')")
    return prompts
