"""LLM-as-judge: a model decides battles, each judged twice with the answers swapped.

The judge reads a template kept as data (``judge.pairwise`` in
``prompts/data/arena.toml``; override it like any template) and its verdict
is the most likely of the labels ``A``, ``B`` and ``tie`` (scored, not
parsed from free text). The second judgement sees the answers in swapped
positions: a verdict that flips with the position is a tie (the judge
preferred a slot, not an answer). :func:`agreement` compares the verdicts
with human votes where both exist: percent agreement and Cohen's kappa.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..errors import InvalidParameter
from .ratings import TIES

__all__ = ["Verdict", "judge_battle", "agreement", "Agreement", "JudgeReport", "run_judge", "JUDGE_LABELS"]

JUDGE_LABELS = ("A", "B", "tie")
_WINNER = {"A": "model_a", "B": "model_b", "tie": "tie"}


@dataclass
class Verdict:
    #: the verdict with the answers as stored (A = model_a), and with them swapped (A = model_b)
    first: str
    swapped: str
    #: model_a, model_b or tie: the two verdicts combined
    winner: str
    probs: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        return _WINNER[self.first] == _flip(_WINNER[self.swapped])


def _flip(winner: str) -> str:
    return {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner)


def judge_battle(judge, question: str, answer_a: str, answer_b: str, *, template=None, data_dir=None,
                 calibrate: bool = False) -> Verdict:
    """Judge one battle twice, the answers swapped the second time. ``calibrate`` divides the label
    probabilities by those the judge gives two content-free answers ("N/A"), which removes a fixed
    preference for a slot or a label (contextual calibration, Zhao et al. 2021)."""
    from ..prompts.templates import PromptTemplate, resolve_template
    from ..rag.tasks import choose_label

    t = template if isinstance(template, PromptTemplate) else resolve_template(template, "judge", "pairwise",
                                                                                data_dir=data_dir)
    base = t.render(question=question, answer_a="N/A", answer_b="N/A") if calibrate else None
    first = choose_label(judge, t.render(question=question, answer_a=answer_a, answer_b=answer_b), JUDGE_LABELS,
                         baseline=base)
    swapped = choose_label(judge, t.render(question=question, answer_a=answer_b, answer_b=answer_a), JUDGE_LABELS,
                           baseline=base)
    w1, w2 = _WINNER[first.label], _flip(_WINNER[swapped.label])
    winner = w1 if w1 == w2 else "tie"
    return Verdict(first.label, swapped.label, winner, {"first": first.scores, "swapped": swapped.scores})


@dataclass
class Agreement:
    n: int
    agree: int
    #: percent of battles where judge and human chose the same (A, B or tie; "both bad" is a tie)
    percent: float | None
    #: Cohen's kappa over the three classes (None when undefined: fewer than two battles or one class only)
    kappa: float | None
    #: [human][judge] counts
    confusion: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _cls(winner: str) -> str:
    return "tie" if winner in TIES else winner


def agreement(pairs: Iterable[Sequence[str]]) -> Agreement:
    """Agreement between (human winner, judge winner) pairs."""
    pairs = [(_cls(h), _cls(j)) for h, j in pairs]
    classes = ["model_a", "model_b", "tie"]
    for h, j in pairs:
        if h not in classes or j not in classes:
            raise InvalidParameter(f"unknown winner in ({h!r}, {j!r})")
    confusion = {h: {j: 0 for j in classes} for h in classes}
    for h, j in pairs:
        confusion[h][j] += 1
    n = len(pairs)
    agree = sum(h == j for h, j in pairs)
    kappa = None
    if n >= 2 and len({x for p in pairs for x in p}) > 1:
        from sklearn.metrics import cohen_kappa_score

        k = cohen_kappa_score([h for h, _ in pairs], [j for _, j in pairs], labels=classes)
        kappa = None if k != k else float(k)  # NaN when undefined
    return Agreement(n, agree, 100.0 * agree / n if n else None, kappa, confusion)


@dataclass
class JudgeReport:
    judge: str
    judged: int
    #: verdicts that did not flip when the answers were swapped
    consistent: int
    winners: dict[str, int]
    #: agreement with human votes, over the battles that have both
    human: Agreement

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["human"] = self.human.to_dict()
        return d


def run_judge(arena, judge, judge_name: str, *, prompts: Sequence[str] = (), existing: bool = True,
              params=None, progress=None, template=None, calibrate: bool = False) -> JudgeReport:
    """Judge new battles on ``prompts`` (drawn and stored by ``arena``) and, with ``existing``, every
    stored battle among the arena's models that ``judge_name`` has not judged yet."""
    todo = [arena.battle(p, params=params, origin="judge") for p in prompts]
    rows = [{"id": r.id, "prompt": r.prompt, "answer_a": r.answer_a, "answer_b": r.answer_b} for r in todo]
    if existing:
        seen = {r["id"] for r in rows} | set(arena.db.judgements(judge_name))
        rows += [b for b in arena.db.battles(models=arena.names) if b["id"] not in seen and b["prompt"]]
    winners = {"model_a": 0, "model_b": 0, "tie": 0}
    consistent = 0
    for i, b in enumerate(rows):
        v = judge_battle(judge, b["prompt"], b["answer_a"], b["answer_b"], template=template,
                         data_dir=arena.settings.data_dir, calibrate=calibrate)
        arena.db.add_judgement(b["id"], judge_name, first=v.first, swapped=v.swapped, winner=v.winner)
        winners[v.winner] += 1
        consistent += v.consistent
        if progress:
            progress(i + 1, len(rows))
    verdicts = arena.db.judgements(judge_name)
    both = [(b["winner"], verdicts[b["id"]]["winner"]) for b in arena.db.battles(voted=True, models=arena.names)
            if b["id"] in verdicts]
    return JudgeReport(judge_name, len(rows), consistent, winners, agreement(both))
