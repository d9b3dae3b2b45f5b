"""The named checks that stand between the model's draft and the user.

Each check is a small function with a name. It looks at one answer (and the
text the model was shown), may settle it (abstain, or replace a pointer with
a quote), and returns a :class:`Verdict` that is recorded on
``answer.checks``, so ``--json`` and the server show which check fired and why.
The pipeline runs :data:`CHECKS` in order and stops at the first verdict
that settles the answer.

=================  ===========================================================
check              what it does
=================  ===========================================================
``retrieval``      (before generating) no chunk is similar enough: abstain
``citations``      ``[n]`` naming a source that was not given is removed
``declined``       the model said the sources hold no answer: abstain
``pointer``        the answer only points (``[2]``): quote the top shown sentence
``support``        too few of the answer's words are in what the model saw: abstain
``quantity``       "how many" answered without a number the sources tie to the
                   question: quote a sentence that has one, or abstain
``person``         "who" answered without a name that a shown sentence holds beside the
                   question's head word ("manager" in "Who is the office manager?"):
                   abstain
``row``            the question names one of a series (error code E3, model A320) and the answer
                   is supported by a row of a sibling (E2) instead: quote the row that names it
``attribution``    sentences without a citation get the source that supports them
``schema``         (structured answers) the JSON parses and is valid for the schema
=================  ===========================================================
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

from . import grounding
from .citations import CITATION

if TYPE_CHECKING:  # pragma: no cover
    from .answer import Answer
    from .config import RagConfig

__all__ = ["Verdict", "CheckContext", "CHECKS", "STRUCTURED_CHECKS", "run_checks", "check_names", "NOT_FOUND"]

NOT_FOUND = "Not found in these documents."


@dataclass(frozen=True)
class Verdict:
    """One check's finding. ``passed`` False with ``settled`` means the check decided the answer."""

    check: str
    passed: bool
    detail: str = ""
    #: the abstention reason when this check made the answer abstain
    reason: str | None = None
    #: this verdict decided the answer; later checks do not run
    settled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: (n, position, sentence, similarity to the query), best first
Ranked = list[tuple[int, int, str, float]]


@dataclass
class CheckContext:
    """What the checks of one answer may read and change."""

    answer: "Answer"
    shown: dict[int, str]
    config: "RagConfig"
    rank: Callable[[], Ranked]

    @property
    def texts(self) -> list[str]:
        return [self.shown.get(s.n, "") for s in self.answer.sources]

    @cached_property
    def sentences(self) -> list[str]:
        """The sentences (and list items, table rows) of everything shown, split once per answer."""
        return [t for text in self.shown.values() for t in grounding.split_passage(text)]

    def abstain(self, reason: str) -> None:
        a = self.answer
        a.abstained, a.reason, a.text = True, reason, NOT_FOUND

    def quote(self, quantity: bool) -> bool:
        """Answer with the top-ranked shown sentence, cited; False when it does not qualify.

        Only the top sentence of the same ranking that chose what the model saw
        is a candidate: a lower-ranked sentence that merely holds a number is no
        answer. For a quantity question it must give a number the question does
        not already hold, and be about the question.
        """
        a = self.answer
        visible = {n: " ".join(t.split()) for n, t in self.shown.items()}
        top = next(((n, " ".join(t.split())) for n, _, t, _ in self.rank()
                    if " ".join(t.split()) in visible.get(n, "")), None)
        if top is None or (quantity and not (grounding.gives_quantity(top[1], a.question)
                                             and grounding.about_question(top[1], a.question))):
            return False
        self.answer_with(*top)
        return True

    def answer_with(self, n: int, text: str) -> None:
        """Make the answer ``text`` of source ``n``, quoted and cited (an extractive answer)."""
        a = self.answer
        a.text = f"{text} [{n}]"
        a.cited, a.attributed, a.extractive, a.support = [n], [], True, 1.0


def _citations(ctx: CheckContext) -> Verdict:
    bad = ctx.answer.invalid_citations
    if bad:
        return Verdict("citations", False, "removed citation(s) to sources not given: "
                       + ", ".join(f"[{n}]" for n in bad))
    return Verdict("citations", True, f"cited {ctx.answer.cited or 'nothing'}")


def _declined(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    if not a.text:
        ctx.abstain("model-declined")
        return Verdict("declined", False, "the answer is empty", "model-declined", True)
    if grounding.declines(a.text):
        ctx.abstain("model-declined")
        return Verdict("declined", False, "the model said the sources hold no answer", "model-declined", True)
    return Verdict("declined", True)


def _bare(a: "Answer") -> str:
    return CITATION.sub(" ", a.text)


def _pointer(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    if not (a.cited and not grounding.content_words(_bare(a), exclude=a.question)):
        return Verdict("pointer", True)
    quantity = grounding.asks_quantity(a.question)
    if ctx.quote(quantity):
        return Verdict("pointer", False, "the answer only pointed at a source: quoted its top sentence", None, True)
    reason = "no-quantity" if quantity else "unsupported"
    ctx.abstain(reason)
    return Verdict("pointer", False, "the answer only pointed at a source, and no shown sentence answers", reason, True)


def _support(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    a.support = grounding.support(_bare(a), ctx.texts, a.question)
    need = ctx.config.min_support
    if a.support is None:  # nothing beyond the question's own words
        ctx.abstain("unsupported")
        return Verdict("support", False, "the answer says nothing beyond the question's words", "unsupported", True)
    if a.support < need:
        ctx.abstain("unsupported")
        return Verdict("support", False, f"support {a.support:.2f} < {need:.2f}", "unsupported", True)
    return Verdict("support", True, f"support {a.support:.2f} >= {need:.2f}")


def _quantity(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    if not grounding.asks_quantity(a.question):
        return Verdict("quantity", True, "not a quantity question")
    if grounding.anchored_quantity(_bare(a), a.question, ctx.sentences):
        return Verdict("quantity", True, "the answer's number stands in a shown sentence about the question")
    if ctx.quote(True):
        return Verdict("quantity", False, "no anchored number in the answer: quoted the top shown sentence", None, True)
    ctx.abstain("no-quantity")
    return Verdict("quantity", False, "the question asks for a number; the sources shown give none",
                   "no-quantity", True)


def _person(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    if not grounding.asks_person(a.question):
        return Verdict("person", True, "not a who question")
    if grounding.anchored_name(_bare(a), a.question, ctx.sentences):
        return Verdict("person", True, "a name of the answer stands in a shown sentence with the question's head word")
    ctx.abstain("no-person")
    return Verdict("person", False, "the question asks who; no shown sentence names anyone for it", "no-person", True)


def _row(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    asked = grounding.series_ids(a.question)
    if not asked:
        return Verdict("row", True, "the question names no item of a series")
    # table rows, also those the focus stage joined into one line ("| E1 | … | | E2 | … |")
    units = [(n, r) for n, text in ctx.shown.items() for u in grounding.split_passage(text)
             for r in (re.split(r"(?<=\|)\s+(?=\|)", u) if u.lstrip().startswith("|") else [u])]
    bare = _bare(a)
    scored = [((grounding.support(bare, [u], a.question) or 0.0), n, u) for n, u in units]
    best = max((sc for sc, _, _ in scored), default=0.0)
    tops = [(n, u) for sc, n, u in scored if sc == best and best > 0]
    if not tops or any(asked & grounding.series_ids(u) for _, u in tops):
        return Verdict("row", True, "the answer's best support names what was asked" if tops else "")
    siblings = {i for _, u in tops for i in grounding.series_ids(u)
                if any(grounding.same_series(i, q) for q in asked)}
    if not siblings:
        return Verdict("row", True, "the answer's best support names no other item of the series")
    own = next(((n, u) for n, u in units if asked & grounding.series_ids(u)), None)
    wrong = ", ".join(sorted(siblings))
    if own is None:
        ctx.abstain("wrong-row")
        return Verdict("row", False, f"the answer is about {wrong}, not {', '.join(sorted(asked))}, and no shown "
                       "sentence names the latter", "wrong-row", True)
    n, unit = own
    cells = [c.strip() for c in unit.strip().strip("|").split("|")] if unit.lstrip().startswith("|") else [unit.strip()]
    ctx.answer_with(n, " — ".join(c for c in cells if c))
    return Verdict("row", False, f"the answer was about {wrong}: quoted the row of {', '.join(sorted(asked))}", None, True)


def _attribution(ctx: CheckContext) -> Verdict:
    a = ctx.answer
    texts = ctx.texts
    parts, added = [], []
    for sent in grounding.split_sentences(a.text):
        if not CITATION.search(sent):
            i = grounding.best_source(sent, texts, a.question, threshold=ctx.config.attribution)
            if i is not None:
                n = a.sources[i].n
                stripped = sent.rstrip()
                end = stripped[-1] if stripped and stripped[-1] in ".!?" else ""
                sent = (stripped[:-1] if end else stripped) + f" [{n}]" + end
                if n not in a.cited:
                    a.cited.append(n)
                if n not in a.attributed:
                    a.attributed.append(n)
                    added.append(n)
        parts.append(sent)
    a.text = " ".join(p.strip() for p in parts)
    return Verdict("attribution", True, f"attributed uncited sentences to {added}" if added else "")


def _schema(ctx: CheckContext) -> Verdict:
    from ..errors import GenstackError
    from ..prompts.structured import parse_json

    a = ctx.answer
    try:
        a.data = parse_json(a.draft, a.schema)
    except GenstackError as exc:
        return Verdict("schema", False, str(exc), "invalid-json", True)
    # what support and the citations are measured on: the JSON's string values
    a.text = " ".join(_strings(a.data))
    return Verdict("schema", True, "valid for the schema")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


CHECKS: tuple[tuple[str, Callable[[CheckContext], Verdict]], ...] = (
    ("citations", _citations),
    ("declined", _declined),
    ("pointer", _pointer),
    ("support", _support),
    ("quantity", _quantity),
    ("person", _person),
    ("row", _row),
    ("attribution", _attribution),
)
#: a structured (JSON Schema) answer: valid JSON whose values the sources support
STRUCTURED_CHECKS: tuple[tuple[str, Callable[[CheckContext], Verdict]], ...] = (
    ("schema", _schema),
    ("support", _support),
)


def check_names(structured: bool = False) -> list[str]:
    return ["retrieval"] + [n for n, _ in (STRUCTURED_CHECKS if structured else CHECKS)]


def run_checks(ctx: CheckContext, checks=CHECKS) -> list[Verdict]:
    """Run ``checks`` in order until one settles the answer; the verdicts, in order."""
    out = []
    for _, check in checks:
        v = check(ctx)
        out.append(v)
        if v.settled:
            break
    return out
