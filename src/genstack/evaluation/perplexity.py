"""Token-level perplexity with a sliding window.

The text is tokenized once (with BOS when the model uses one). Windows of
``context`` tokens start every ``stride`` tokens; in each window only the
tokens not scored by an earlier window are scored, so every token after the
first is scored at most once, with at least ``context - stride`` tokens of
left context once the first window is past (the method of the Hugging Face
perplexity guide). Perplexity = exp(-(1/N) Σ log p(token | its context)).
With ``stride == context`` the windows are disjoint (fastest, least context).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidParameter

__all__ = ["perplexity", "PerplexityResult"]


@dataclass
class PerplexityResult:
    perplexity: float
    tokens: int  # tokens scored
    nll: float  # mean negative log-likelihood per token (nats)
    context: int
    stride: int

    def to_dict(self) -> dict:
        return {"perplexity": self.perplexity, "tokens": self.tokens, "nll": self.nll,
                "context": self.context, "stride": self.stride}


def perplexity(text: str, model, *, context: int | None = None, stride: int | None = None) -> PerplexityResult:
    """Token perplexity of ``text`` with a sliding window of ``context`` tokens every ``stride``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter("the text is empty")
    from ..models.capabilities import require

    require(model, "logprobs")
    window = context or min(model.context_length or 2048, 2048)
    if window < 16 or window > (model.context_length or window):
        raise InvalidParameter(f"--context must be between 16 and the model's window ({model.context_length})")
    stride = stride or window // 2
    if not 1 <= stride <= window:
        raise InvalidParameter(f"--stride must be between 1 and --context ({window}), got {stride}")
    tokens = model.tokenize(text)
    if len(tokens) < 2:
        raise InvalidParameter("the text is shorter than two tokens")
    total, n = 0.0, 0
    prev_end = 0
    for begin in range(0, len(tokens) - 1, stride):
        end = min(begin + window, len(tokens))
        first = max(prev_end, begin + 1)  # the first token this window scores
        if first < end:
            lps = model.sequence_logprobs(tokens[begin:end], score_from=first - begin)
            total += sum(lps)
            n += len(lps)
        prev_end = end
        if end == len(tokens):
            break
    nll = -total / n
    return PerplexityResult(math.exp(nll), n, nll, window, stride)
