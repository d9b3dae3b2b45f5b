"""Compare two runs of a model by what their logits decide, not by one host's rounding.

Two implementations of the same model (llama.cpp's F16 kernels against torch float32, a merged
LoRA against a runtime adapter) never give the same floats, and how far apart they land depends
on the CPU's kernels: AVX2, AVX-512, bf16 and AMX hosts take different F16 paths. A bound on raw
logit differences holds only on the host it was measured on (0.15 held on AVX-512 and failed at
0.202 on an AVX2-only EPYC). What such a test protects is that both runs are the same model:

- the next-token distributions agree: KL(reference || other) at every position is at most
  ``MAX_KL``. F16 rounding gave 2e-5 to 4e-5 nats on an AVX-512 host; KL grows with the square of
  the logit error, so an AVX2 host's error would have to be 5x larger to reach the bound. The changes the
  tests must catch give far more: a soft prompt left out 9.9 nats, a 12-step tune 2.3, even a
  LoRA whose B was scaled down to 2% of its start 0.0096 (``assert_other_model``, 3x the bound);
- the greedy choices agree, except at near-ties: where the argmax differs, the reference rates
  the other run's choice within ``TIE`` nats of its own best.
"""

from __future__ import annotations

import numpy as np

#: nats per position: 25x the F16 rounding measured, 10x below the smallest real change tested
MAX_KL = 1e-3
#: nats: two tokens this close are a tie that rounding may break either way
TIE = 0.1


def log_softmax(logits) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kl(reference, other) -> np.ndarray:
    """KL(p_reference || p_other) per position, in nats."""
    lp, lq = log_softmax(reference), log_softmax(other)
    return (np.exp(lp) * (lp - lq)).sum(axis=-1)


def same_model(other, reference, *, max_kl: float = MAX_KL, tie: float = TIE) -> tuple[bool, str]:
    """(whether ``other`` and ``reference`` logits, shape (positions, vocab), are the same model's,
    and the measured figures for the assertion message)."""
    other, reference = np.asarray(other), np.asarray(reference)
    assert other.shape == reference.shape, (other.shape, reference.shape)
    d = kl(reference, other)
    lp = log_softmax(reference)
    choice = other.argmax(-1)
    gap = lp.max(-1) - lp[np.arange(len(lp)), choice]  # 0 where the greedy choices agree
    ok = bool(d.max() <= max_kl and gap.max() <= tie)
    return ok, f"max KL {d.max():.2e} nats (bound {max_kl}), largest greedy gap {gap.max():.3f} nats (bound {tie})"


def assert_same_model(other, reference, **kw) -> None:
    ok, figures = same_model(other, reference, **kw)
    assert ok, figures


def assert_other_model(other, reference, *, min_kl: float = 3 * MAX_KL) -> None:
    """The two differ as a real change does: some position's KL is well above the rounding bound."""
    d = kl(reference, other).max()
    assert d >= min_kl, f"max KL {d:.2e} nats: no real change (expected at least {min_kl})"
