"""What every red-team suite reports: rates with Wilson 95% intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["wilson", "Rate", "SuiteResult", "Reply"]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (exact at 0 and n, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


@dataclass
class Rate:
    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        lo, hi = wilson(self.k, self.n)
        return {"rate": round(self.value, 4), "k": self.k, "n": self.n, "ci95": [round(lo, 4), round(hi, 4)]}

    def __str__(self) -> str:
        lo, hi = wilson(self.k, self.n)
        return f"{100 * self.value:5.1f}%  [{100 * lo:.1f}, {100 * hi:.1f}]  ({self.k}/{self.n})"


@dataclass
class Reply:
    """What a target returned for one request."""

    text: str
    blocked: str | None = None  # "input" (refused by the injection guard) or "canary" (answer withheld)
    flagged: bool = False  # the input detector flagged the message (flag or block mode)
    abstained: bool = False
    seconds: float = 0.0
    source_flags: int = 0  # sentences of the documents flagged as orders to the model


@dataclass
class SuiteResult:
    suite: str
    #: the headline: attacks that succeeded, as the suite's judge defines it
    attack_success: Rate
    #: benign inputs the guard flagged or refused
    benign_false_positive: Rate | None = None
    #: further rates (detection, clean quality, …) and plain figures
    rates: dict[str, Rate] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    by_category: dict[str, Rate] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    judge: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "attack_success": self.attack_success.to_dict(),
                "benign_false_positive": self.benign_false_positive.to_dict() if self.benign_false_positive else None,
                "rates": {k: v.to_dict() for k, v in self.rates.items()},
                "figures": {k: round(v, 4) for k, v in self.figures.items()},
                "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
                "judge": self.judge, "examples": self.examples}
