"""Ratings from pairwise battles: online Elo and Bradley–Terry, with bootstrap intervals.

A battle is ``(model_a, model_b, winner)`` with ``winner`` one of
:data:`WINNERS`, the values of the public Chatbot Arena battle data. Both
methods put ratings on the Elo scale (base 10, 400 points: a model rated 400
above another is expected to win 10 times out of 11) and count a tie,
"both bad" included, as half a win for each side. These are the conventions
of FastChat's ``fastchat/serve/monitor/elo_analysis.py``, the leaderboard's
own code, which ``benchmarks/arena.py`` runs beside this module on the same
battles.

- **Elo** (:func:`elo_ratings`) is the online update, battle by battle in the
  order given, with step ``k``; its result depends on that order.
- **Bradley–Terry** (:func:`bt_ratings`) is the maximum-likelihood fit of
  P(A beats B) = 1 / (1 + 10^((R_B - R_A) / 400)) to all battles at once,
  by scikit-learn's logistic regression. Its weak L2 prior (``C=1``, as
  FastChat's) keeps a model that has never lost at a finite rating and fixes
  the free offset: the ratings average ``init`` (1000). The result does not
  depend on the order of the battles.

:func:`leaderboard` adds bootstrap intervals (battles resampled with
replacement), a rank that is shared where intervals overlap, the observed
and the predicted win-rate matrices, and battle counts.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InvalidParameter

__all__ = ["WINNERS", "TIES", "METHODS", "elo_ratings", "bt_ratings", "Leaderboard", "leaderboard",
           "predicted_win_rate", "check_battles", "simulate_battles"]

#: the winner values of the public Chatbot Arena battle data
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
TIES = ("tie", "tie (bothbad)")
METHODS = ("bt", "elo")

SCALE, BASE, INIT = 400.0, 10.0, 1000.0


def check_battles(battles: Iterable[Sequence[str]]) -> list[tuple[str, str, str]]:
    """``battles`` as (model_a, model_b, winner) tuples, checked: a clear error for a bad one."""
    out = []
    for i, b in enumerate(battles):
        try:
            a, m, w = b
        except (TypeError, ValueError):
            raise InvalidParameter(f"battle {i}: expected (model_a, model_b, winner), got {b!r}") from None
        if w not in WINNERS:
            raise InvalidParameter(f"battle {i}: winner must be one of {', '.join(WINNERS)}, got {w!r}")
        if not isinstance(a, str) or not isinstance(m, str) or not a or not m:
            raise InvalidParameter(f"battle {i}: model names must be non-empty strings")
        if a == m:
            raise InvalidParameter(f"battle {i}: a model cannot battle itself ({a!r})")
        out.append((a, m, w))
    return out


def simulate_battles(strengths: dict[str, float], n: int, *, seed: int = 0,
                     tie_rate: float = 0.1) -> list[tuple[str, str, str]]:
    """``n`` battles between random pairs drawn from Bradley–Terry ``strengths`` on the Elo scale, with
    ties: a tie is likelier between close models (at most ``tie_rate``), and A's expected score (a tie
    half a win) is exactly the BT probability, so the ratings of :func:`bt_ratings` recover the strengths.
    For checking rating methods (``benchmarks/arena.py``, the tests)."""
    import random

    rng = random.Random(seed)
    names = list(strengths)
    out = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        p = 1 / (1 + BASE ** ((strengths[b] - strengths[a]) / SCALE))
        tie = tie_rate * 2 * min(p, 1 - p)
        u = rng.random()
        if u < tie:
            out.append((a, b, "tie" if rng.random() < 0.5 else "tie (bothbad)"))
        else:
            out.append((a, b, "model_a" if u < tie + p - tie / 2 else "model_b"))
    return out


def _score(winner: str) -> float:
    return 1.0 if winner == "model_a" else 0.0 if winner == "model_b" else 0.5


def elo_ratings(battles: Iterable[Sequence[str]], *, k: float = 4.0, scale: float = SCALE, base: float = BASE,
                init: float = INIT) -> dict[str, float]:
    """Online Elo: each battle, in order, moves both ratings by ``k`` times the surprise."""
    if k <= 0:
        raise InvalidParameter(f"k must be positive, got {k}")
    rating: dict[str, float] = {}
    for a, b, w in check_battles(battles):
        ra, rb = rating.setdefault(a, init), rating.setdefault(b, init)
        ea = 1 / (1 + base ** ((rb - ra) / scale))
        sa = _score(w)
        rating[a] = ra + k * (sa - ea)
        rating[b] = rb + k * ((1 - sa) - (1 - ea))
    return rating


def _groups(battles: list[tuple[str, str, str]], models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (i, j, outcome) triples and how often each occurred; outcome 2 = A wins, 1 = tie, 0 = B wins."""
    idx = {m: i for i, m in enumerate(models)}
    counts = Counter((idx[a], idx[b], 2 if w == "model_a" else 0 if w == "model_b" else 1) for a, b, w in battles)
    keys = np.array(list(counts), dtype=np.int64).reshape(-1, 3)
    return keys, np.array(list(counts.values()), dtype=np.float64)


def _fit_bt(keys: np.ndarray, counts: np.ndarray, n_models: int, *, base: float, C: float) -> np.ndarray:
    """Logistic regression on the grouped battles: each battle counts twice, a tie once each way
    (the same objective as FastChat's, which duplicates every battle and makes one copy of a tie a win)."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise InvalidParameter("Bradley–Terry ratings need scikit-learn: pip install 'genstack[arena]' "
                               "(or rate with --method elo)") from None

    rows, ys, ws = [], [], []
    for (i, j, o), c in zip(keys, counts):
        if c <= 0:
            continue
        x = np.zeros(n_models)
        x[i], x[j] = math.log(base), -math.log(base)
        if o == 1:
            rows += [x, x]
            ys += [1, 0]
            ws += [c, c]
        else:
            rows.append(x)
            ys.append(1 if o == 2 else 0)
            ws.append(2 * c)
    y = np.array(ys)
    if len(set(ys)) < 2:  # one class only (e.g. one battle): add a zero-weight row so the fit can run
        rows.append(np.zeros(n_models))
        ys.append(1 - ys[0])
        ws.append(0.0)
        y = np.array(ys)
    lr = LogisticRegression(fit_intercept=False, C=C, tol=1e-8, max_iter=1000)
    lr.fit(np.array(rows), y, sample_weight=np.array(ws))
    return lr.coef_[0]


def bt_ratings(battles: Iterable[Sequence[str]], *, scale: float = SCALE, base: float = BASE, init: float = INIT,
               C: float = 1.0) -> dict[str, float]:
    """Bradley–Terry ratings by maximum likelihood (with FastChat's weak prior ``C``), on the Elo scale."""
    battles = check_battles(battles)
    if not battles:
        return {}
    models = _models(battles)
    keys, counts = _groups(battles, models)
    coef = _fit_bt(keys, counts, len(models), base=base, C=C)
    return {m: float(scale * c + init) for m, c in zip(models, coef)}


def _models(battles: list[tuple[str, str, str]]) -> list[str]:
    return sorted({m for a, b, _ in battles for m in (a, b)})


def predicted_win_rate(ratings: dict[str, float], *, scale: float = SCALE, base: float = BASE) -> dict[str, dict[str, float]]:
    """P(row beats column) under the ratings."""
    return {a: {b: (1 / (1 + base ** ((rb - ra) / scale)) if a != b else None) for b, rb in ratings.items()}
            for a, ra in ratings.items()}


@dataclass
class Leaderboard:
    """Ratings with intervals, ranks, battle counts and the win-rate matrices, best model first."""

    method: str
    models: list[str]
    ratings: dict[str, float]
    #: the 2.5% and 97.5% quantiles of the bootstrap ratings (absent without a bootstrap)
    lower: dict[str, float] = field(default_factory=dict)
    upper: dict[str, float] = field(default_factory=dict)
    #: 1 + the number of models whose interval lies wholly above this one's: overlapping models share a rank
    rank: dict[str, int] = field(default_factory=dict)
    battles: dict[str, int] = field(default_factory=dict)
    wins: dict[str, int] = field(default_factory=dict)
    losses: dict[str, int] = field(default_factory=dict)
    ties: dict[str, int] = field(default_factory=dict)
    #: observed P(row beats column) among battles that were not ties (None where the two never met)
    win_rate: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: P(row beats column) the ratings predict
    predicted: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: the online Elo in battle order (method "elo" rates by the bootstrap median, as FastChat does)
    online: dict[str, float] = field(default_factory=dict)
    n_battles: int = 0
    bootstrap: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        rows = [{"rank": self.rank[m], "model": m, "rating": round(self.ratings[m], 2),
                 "lower": round(self.lower[m], 2) if m in self.lower else None,
                 "upper": round(self.upper[m], 2) if m in self.upper else None,
                 "battles": self.battles[m], "wins": self.wins[m], "losses": self.losses[m], "ties": self.ties[m]}
                for m in self.models]
        return {"method": self.method, "battles": self.n_battles, "bootstrap": self.bootstrap, "seed": self.seed,
                "models": rows, "win_rate": self.win_rate, "predicted_win_rate": self.predicted,
                "online_elo": {m: round(v, 2) for m, v in self.online.items()} if self.online else None}


def leaderboard(battles: Iterable[Sequence[str]], *, method: str = "bt", bootstrap: int = 100, seed: int = 0,
                k: float = 4.0, C: float = 1.0) -> Leaderboard:
    """Rate the models of ``battles`` by ``method`` (``bt`` or ``elo``), with ``bootstrap`` resamples
    (0 for none) drawn from ``seed``."""
    if method not in METHODS:
        raise InvalidParameter(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise InvalidParameter(f"bootstrap must be 0 or a positive number of rounds, got {bootstrap!r}")
    battles = check_battles(battles)
    models = _models(battles)
    if len(models) < 2:
        raise InvalidParameter("a leaderboard needs battles between at least two models"
                               + (f"; only {models[0]!r} has any" if models else "; there are none"))
    rng = np.random.default_rng(seed)
    online = elo_ratings(battles, k=k) if method == "elo" else {}
    samples: np.ndarray | None = None
    if method == "bt":
        keys, counts = _groups(battles, models)
        point = SCALE * _fit_bt(keys, counts, len(models), base=BASE, C=C) + INIT
        if bootstrap:
            n = int(counts.sum())
            draws = rng.multinomial(n, counts / n, size=bootstrap)  # battles resampled with replacement
            samples = np.array([SCALE * _fit_bt(keys, d.astype(float), len(models), base=BASE, C=C) + INIT
                                for d in draws])
        ratings = dict(zip(models, map(float, point)))
    else:
        if bootstrap:
            rows = []
            for _ in range(bootstrap):
                pick = rng.integers(0, len(battles), len(battles))
                r = elo_ratings([battles[i] for i in pick], k=k)
                rows.append([r.get(m, INIT) for m in models])
            samples = np.array(rows)
            ratings = dict(zip(models, map(float, np.median(samples, axis=0))))
        else:
            ratings = dict(online)
    lower, upper = {}, {}
    if samples is not None:
        lo, hi = np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)
        lower, upper = dict(zip(models, map(float, lo))), dict(zip(models, map(float, hi)))
    order = sorted(models, key=lambda m: -ratings[m])
    if lower:
        rank = {m: 1 + sum(lower[o] > upper[m] for o in models if o != m) for m in models}
    else:
        rank = {m: 1 + sum(ratings[o] > ratings[m] for o in models) for m in models}
    wins, losses, ties, count = Counter(), Counter(), Counter(), Counter()
    met: Counter = Counter()
    beat: Counter = Counter()
    for a, b, w in battles:
        count[a] += 1
        count[b] += 1
        if w in TIES:
            ties[a] += 1
            ties[b] += 1
            continue
        win, lose = (a, b) if w == "model_a" else (b, a)
        wins[win] += 1
        losses[lose] += 1
        beat[(win, lose)] += 1
        met[(a, b)] += 1
        met[(b, a)] += 1
    win_rate = {a: {b: (beat[(a, b)] / met[(a, b)] if met[(a, b)] else None) if a != b else None for b in order}
                for a in order}
    predicted = predicted_win_rate({m: ratings[m] for m in order})
    return Leaderboard(method, order, ratings, lower, upper, rank, dict(count), {m: wins[m] for m in models},
                       {m: losses[m] for m in models}, {m: ties[m] for m in models}, win_rate, predicted,
                       online, len(battles), bootstrap, seed)
