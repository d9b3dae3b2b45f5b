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

from dataclasses import dataclass, field
from typing import Sequence

from .canary import Canary, with_canary
from .output import REDACT_MODES, SECRET_KINDS, OutputGuard
from .pii import redact as redact_text

__all__ = ["GuardPolicy", "InputBlocked", "INPUT_MODES", "SOURCE_MODES"]

INPUT_MODES = ("off", "flag", "block")
SOURCE_MODES = ("strip", "flag", "off")


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
    detector: object = None  # an InjectionDetector, built on first use

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

    def prepare(self, messages: Sequence) -> list:
        """Messages as the model should see them: canary in the system prompt, user secrets redacted."""
        from ..generation import Message

        msgs = list(messages)
        if self.redact != "off":
            kinds = None if self.redact == "all" else SECRET_KINDS
            msgs = [Message(m.role, redact_text(m.content, kinds)[0]) if m.role == "user" else m for m in msgs]
        return with_canary(msgs, self.token) if self.canary else msgs

    def output(self, messages: Sequence = ()) -> OutputGuard:
        """The output filter for one answer; the system prompt of ``messages`` is protected from echoes."""
        system = "\n".join(m.content for m in messages if m.role == "system") if self.canary else None
        return OutputGuard(self.token if self.canary else None, self.redact, protected=system)
