"""One guard policy for the server, the red-team command and the Python API.

``GuardPolicy`` decides, for one request:

- **input** (``off``, ``flag``, ``block``): the direct-injection detector on the
  user's latest message; ``flag`` records the detection, ``block`` refuses
  the request;
- **canary**: a marker added to the system prompt; an answer containing it
  is blocked (:mod:`genstack.guard.canary`);
- **redact** (``off``, ``secrets``, ``all``): secrets (or all PII) removed from
  the answer while it streams, and from the user's messages before the
  model sees them;
- **sources** (``strip``, ``flag``, ``off``): what happens to sentences of
  retrieved chunks that give orders to the model (see ``Asker``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..choices import SOURCE_MODES
from .canary import DEFAULT_SYSTEM, Canary, with_canary
from .output import REDACT_MODES, SECRET_KINDS, OutputGuard
from .pii import redact as redact_text

__all__ = ["GuardPolicy", "GuardSession", "InputBlocked", "INPUT_MODES", "SOURCE_MODES"]

log = logging.getLogger("genstack.guard")

INPUT_MODES = ("off", "flag", "block")


class InputBlocked(Exception):
    def __init__(self, detection):
        self.detection = detection
        super().__init__("the message was refused by the prompt-injection guard: "
                         + ", ".join(detection.reasons or ["classifier"]))


@dataclass
class GuardPolicy:
    input: str = "flag"
    canary: bool = True
    redact: str = "secrets"
    sources: str = "strip"
    token: Canary = field(default_factory=Canary)
    #: system prompts that hold nothing confidential (genstack's public defaults): the canary is not
    #: added to them, nor to a request without a system prompt (see genstack.guard.canary)
    public_system: tuple[str, ...] = (DEFAULT_SYSTEM,)
    detector: object = None  # an InjectionDetector, built on first use
    #: one detector (and its embedder) per policy: checks run one at a time
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ..errors import InvalidParameter

        for name, value, allowed in (("input", self.input, INPUT_MODES), ("redact", self.redact, REDACT_MODES),
                                     ("sources", self.sources, SOURCE_MODES)):
            if value not in allowed:
                raise InvalidParameter(f"guard {name} must be one of {', '.join(allowed)}, got {value!r}")

    @classmethod
    def off(cls) -> "GuardPolicy":
        return cls(input="off", canary=False, redact="off", sources="off")

    def detect(self, text: str):
        """The detector's verdict on a user message (None when input scanning is off or the text is blank)."""
        if self.input == "off" or not text.strip():
            return None
        with self._lock:
            if self.detector is None:
                from .detector import InjectionDetector

                self.detector = InjectionDetector()
            return self.detector.detect(text)

    def check_input(self, text: str):
        """:meth:`detect`, raising InputBlocked for a flagged message in block mode."""
        d = self.detect(text)
        if d is not None and d.flagged and self.input == "block":
            raise InputBlocked(d)
        return d

    def redact_user(self, text: str) -> str:
        """A user's text as the model (and retrieval) may see it: secrets (or all PII) redacted."""
        if self.redact == "off":
            return text
        return redact_text(text, None if self.redact == "all" else SECRET_KINDS)[0]

    def prepare(self, messages: Sequence) -> list:
        """Messages as the model should see them: canary in the system prompt, user secrets redacted."""
        from ..generation import Message

        msgs = [Message(m.role, self.redact_user(m.content)) if m.role == "user" else m for m in messages]
        return with_canary(msgs, self.token) if self.canary and self.confidential(msgs) else msgs

    def prepare_request(self, request):
        """A grounded request (:class:`~genstack.rag.pipeline.RagRequest`) as retrieval and the model
        should see it: the question, the query and the user turns of the history redacted, and the
        canary added to the client's system prompt when it is confidential (the pipeline places that
        prompt below its grounding rules)."""
        import dataclasses

        from ..generation import Message

        history = tuple(Message(m.role, self.redact_user(m.content)) if m.role == "user" else m
                        for m in request.history)
        system = request.system
        if system and self.canary and self._secret_prompt(system):
            system = self.token.protect(system)
        return dataclasses.replace(request, question=self.redact_user(request.question), history=history,
                                   query=self.redact_user(request.query) if request.query else request.query,
                                   system=system)

    def confidential(self, messages: Sequence) -> bool:
        """Does ``messages`` carry a system prompt worth protecting (one that is not public)?"""
        return any(m.role == "system" and self._secret_prompt(m.content) for m in messages)

    def _secret_prompt(self, text: str) -> bool:
        return bool(text.strip()) and text.strip() not in {p.strip() for p in self.public_system}

    def output(self, messages: Sequence = ()) -> OutputGuard:
        """The output filter for one answer; a confidential system prompt of ``messages`` is protected from echoes."""
        system = ("\n".join(m.content for m in messages if m.role == "system")
                  if self.canary and self.confidential(messages) else None)
        return OutputGuard(self.token if self.canary else None, self.redact, protected=system)

    def session(self, messages: Sequence = (), on_event: Callable[[str, int], None] | None = None) -> "GuardSession":
        """The guard around one request (the server's and the red team's, the same object)."""
        return GuardSession(self, messages, on_event)


class GuardSession:
    """One request under a :class:`GuardPolicy`: input verdict, prepared messages, output filter.

    ``on_event(kind, n)`` hears what the guard did (``input_blocked``,
    ``input_flagged``, ``canary_blocked`` / ``system-prompt_blocked``,
    ``redacted``, ``source_instructions``), once each: the server counts them
    in /metrics, the red team ignores them. Each event is also logged.
    """

    def __init__(self, policy: GuardPolicy, messages: Sequence = (),
                 on_event: Callable[[str, int], None] | None = None):
        self.policy = policy
        self.output = policy.output(messages)
        self.input = None  # the detector's verdict on the user's message
        self._on_event = on_event or (lambda kind, n: None)
        self._counted_block = False
        self._counted_redactions = 0

    @property
    def blocked(self) -> str | None:
        return self.output.blocked

    def _event(self, kind: str, n: int = 1) -> None:
        self._on_event(kind, n)

    def check_input(self, text: str):
        """Screen the user's message; raises :class:`InputBlocked` in block mode."""
        try:
            self.input = self.policy.check_input(text)
        except InputBlocked as exc:
            self._event("input_blocked")
            log.warning("guard: input blocked (%s)", ", ".join(exc.detection.reasons))
            raise
        if self.input is not None and self.input.flagged:
            self._event("input_flagged")
            log.warning("guard: input flagged (%s)", ", ".join(self.input.reasons))
        return self.input

    def prepare(self, messages: Sequence) -> list:
        return self.policy.prepare(messages)

    def prepare_request(self, request):
        return self.policy.prepare_request(request)

    def _count(self) -> None:
        if self.output.blocked and not self._counted_block:
            self._counted_block = True
            self._event(self.output.blocked + "_blocked")
            log.warning("guard: an answer repeated the system prompt (%s) and was withheld", self.output.blocked)
        new = len(self.output.redactions) - self._counted_redactions
        if new:
            self._event("redacted", new)
            self._counted_redactions += new

    def feed(self, piece: str) -> str:
        out = self.output.feed(piece)
        self._count()
        return out

    def finish(self, text: str | None = None) -> str:
        """The rest of a stream (``text`` None), or a whole answer, guarded."""
        out = self.output.flush() if text is None else self.output.check(text)
        self._count()
        return "" if text is None and self.output.blocked else out

    def extra(self, answer=None) -> dict:
        """What the guard did, for the response's ``genstack.guard`` field."""
        if answer is not None and answer.flags:
            self._event("source_instructions", len(answer.flags))
        return {"input": self.input.to_dict() if self.input is not None else None, "blocked": self.output.blocked,
                "redacted": sorted(set(self.output.redactions))}
