"""Synthetic question–answer sets from a collection, every item checked before it is kept.

For an answerable item genstack samples a chunk (sources taken in turn, so no document
dominates), picks a sentence and the answer span in it (a name for ``factoid``, a number for
``quantity``, a name shared with a sentence of another chunk for ``multi-hop``), and the
model writes the question (template ``synth.<kind>``). With ``template="free"`` the model
writes question, answer and supporting sentence itself (JSON), for a model able to.

An item is kept only if it passes, in order (the report counts what each drops):

``well_formed``   a question (ends with "?", 4 to 40 words) of the kind asked for (a quantity
                  question asks how many / at what time / in which year), naming nothing the
                  chunk does not
``not_leaked``    the question does not give the answer away (the answer has words the
                  question lacks)
``supported``     the answer is in its supporting sentence, and the pipeline's own grounding
                  measure (``grounding.support`` ≥ ``min_support``) finds it in the chunk
``retrievable``   the collection's retriever returns the source chunk in the top ``k``
``unique``        no kept question is a near-duplicate (embedding cosine ≥ ``dedupe``)

``unanswerable`` items swap a name in a kept question for one the collection never
mentions (checked against every chunk: ``absent``), so the question stays on topic and its
answer is in no document. Items are written in the format ``genstack eval rag --dataset``
reads (``question``, ``source``, ``facts``) plus what made them.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InvalidParameter
from ..generation import SamplingParams
from ..rag.grounding import STOPWORDS

__all__ = ["KINDS", "FILTERS", "SynthItem", "SynthReport", "synth_qa", "qa_messages", "write_jsonl"]

KINDS = ("factoid", "quantity", "multi-hop", "unanswerable")
FILTERS = ("well_formed", "not_leaked", "supported", "retrievable", "unique")
#: names no sample corpus is likely to hold; each is checked against the collection before use
FICTIONAL = ("Quorvath", "Zelmira Tosk", "Brannoch", "Ilvescu", "Pettervik", "Ondrasek", "Marwick Dunne",
             "Yselda", "Korvanen", "Hestmoor", "Taliesk", "Dravonne", "Ulmbrecht", "Cassivar", "Nyrelle")

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_NUM = re.compile(r"(?:[€$£]\s?)?\d+(?:[.,:]\d+)*(?:\s?%|\s(?:[a-zA-Z€]+))?")
_NAME = re.compile(r"\b[A-Z][a-zA-Z'-]+(?:\s+(?:of\s+|the\s+)?[A-Z][a-zA-Z'-]+)*")


@dataclass
class SynthItem:
    id: str
    question: str
    #: the source the answer is in (None for unanswerable items)
    source: str | None
    #: strings a correct answer contains (the answer); empty for unanswerable items
    facts: list[str]
    kind: str
    answer: str
    supporting_sentence: str
    chunk_id: str | None
    #: the chunk's text, for turning the item into a grounded chat example (:func:`qa_messages`)
    context: str
    filters: dict[str, bool]
    model: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SynthReport:
    items: list[SynthItem]
    #: attempts per kind
    generated: Counter = field(default_factory=Counter)
    #: attempts dropped, by the first filter they failed
    dropped: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    model: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"generated": dict(self.generated), "dropped": dict(self.dropped), "kept": dict(self.kept),
                "items": len(self.items), "model": self.model, "seconds": round(self.seconds, 2)}


def _sentences(text: str) -> list[str]:
    """The prose sentences of a chunk: headings, list labels and table rows left out."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "|", "```"))]
        flat = " ".join(" ".join(lines).split())
        out += [x.strip() for x in _SENT.split(flat) if len(x.split()) >= 5 and x.rstrip().endswith((".", "!", "?"))]
    return out


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^\w%€$£.,:]+", " ", s.lower()).split()).strip(" .,:")


def _quantity(sentence: str) -> str | None:
    for m in _NUM.finditer(sentence):
        span = m.group(0).strip()
        tail = span.split()[-1] if " " in span else ""
        if tail and (tail[0].isupper() or tail.lower() in STOPWORDS or tail.endswith(("ing", "ed", "ly"))):
            span = span[: -len(tail)].strip()
        if span:
            return span
    return None


def _names(sentence: str) -> list[str]:
    out = []
    for m in _NAME.finditer(sentence):
        name = m.group(0).strip()
        if m.start() == 0:
            # the first word is capitalised anyway: keep only the name it starts, if any
            head, rest = name.split()[0], name.split()[1:]
            if head.lower() in _STARTERS or head.lower() in STOPWORDS:
                if not rest or rest[0] in ("of", "the"):
                    continue
                name = " ".join(rest)
            elif not rest:
                continue
        out.append(name)
    return out


#: capitalised sentence openers that are not part of a name
_STARTERS = frozenset("the a an this that these those it its in on at for from to by with after before when "
                      "while if each every all some most many our your their his her".split())


_TIME = re.compile(r"^\d{1,2}:\d\d$")
_YEAR = re.compile(r"^(?:1[5-9]|20)\d\d$")


def _hint(answer: str) -> str:
    """What kind of question a quantity answer calls for (told to the model, then checked)."""
    if _TIME.match(answer):
        return "ask at what time"
    if _YEAR.match(answer):
        return "ask in which year"
    return "ask how many, how much, how long or how far"


_UNIT_ASKS = [
    (("euro", "euros", "€", "$", "dollars", "pounds", "£"), r"how much|cost|price|fee|fare"),
    (("minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years"),
     r"how long|how many {unit}|how often"),
    (("metre", "metres", "meter", "meters", "km", "kilometres", "kilometers", "cm", "mm"),
     r"how (long|far|high|tall|deep|wide)|how many {unit}"),
    (("kg", "g", "grams", "kilograms", "litre", "litres", "liters", "ml"), r"how (much|heavy|many {unit})"),
]


def _fits_unit(q: str, answer: str, sentence: str) -> bool:
    """A number with a unit is asked for the way that unit is asked for (not "how many dogs" for 9 euros);
    a bare number only by "how many X" when X follows it in the sentence."""
    parts = answer.replace("€", "€ ").split()
    unit = next((p.lower() for p in parts[1:] + parts[:1] if not any(c.isdigit() for c in p)), None)
    if unit is None:
        m = re.search(r"how many (\w+)", q)
        if m is None:
            return bool(re.search(r"how (much|old)|what (is|are) the (number|price|cost)", q))
        after = re.search(re.escape(answer) + r"\s+(\w+)", sentence.lower())
        return after is not None and after.group(1).rstrip("s") == m.group(1).rstrip("s")
    for units, pattern in _UNIT_ASKS:
        if unit in units:
            return bool(re.search(pattern.replace("{unit}", re.escape(unit)), q))
    return unit in q or unit.rstrip("s") in q


def _fits(kind: str, question: str, answer: str, sentence: str = "") -> bool:
    """The question asks for the kind of thing the answer is."""
    q = question.lower()
    if kind != "quantity":
        return not re.match(r"(how (many|much|long|far|often)|what time|in which year|when)\b", q)
    if _TIME.match(answer):
        return "what time" in q or q.startswith("when")
    if _YEAR.match(answer):
        return "year" in q or q.startswith("when")
    if not _fits_unit(q, answer, sentence):
        return False
    return bool(re.search(r"\bhow (many|much|long|far|old|big|high|tall|heavy|often|wide|deep|large|warm|cold|hot)\b"
                         r"|\bwhat (is|are) the (price|cost|number|temperature|size|length|distance|weight|capacity)", q))


def _names_known(question: str, texts: Sequence[str]) -> bool:
    """Every name the question mentions is in the chunk(s): the model invented no entity."""
    flat = " ".join(" ".join(t.split()) for t in texts).lower()
    return all(n.lower() in flat for n in _names(question))


def _supported(answer: str, sentence: str, texts: Sequence[str], question: str) -> bool:
    """The answer is in its supporting sentence, the sentence is in the chunk(s), and the pipeline's grounding
    measure finds the answer in them."""
    from ..rag import grounding
    from ..rag.config import DEFAULT_CONFIG

    flat = _norm(" ".join(" ".join(t.split()) for t in texts))
    if not answer or _norm(answer) not in _norm(sentence) or _norm(sentence)[:60] not in flat:
        return False
    s = grounding.support(answer, [" ".join(t.split()) for t in texts], question)
    return s is not None and s >= DEFAULT_CONFIG.min_support


def _question(text: str) -> str | None:
    q = " ".join(text.strip().split("\n", 1)[0].split())
    if "?" in q:
        q = q[: q.index("?") + 1]
    q = q.strip(" \"'")
    return q if q.endswith("?") and 4 <= len(q.split()) <= 40 else None


def qa_messages(item: dict[str, Any] | SynthItem) -> dict[str, Any]:
    """A kept item as a grounded chat example (``{"messages": [...]}``): the chunk as source [1], the
    question, and the answer citing it; unanswerable items answer NOT FOUND."""
    d = item.to_dict() if isinstance(item, SynthItem) else dict(item)
    user = (f"Read the sources and answer the question in one short sentence. Cite the source number like [1]. "
            f"If the sources do not answer it, say NOT FOUND.\n\n[1] {d.get('context', '')}\n\nQuestion: "
            f"{d['question']}\nAnswer:")
    answer = f"{d['answer']} [1]." if d.get("source") else "NOT FOUND."
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def write_jsonl(items: Sequence[SynthItem], path: str | Path) -> None:
    import json

    p = Path(path)
    tmp = p.with_name(p.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps(it.to_dict(), ensure_ascii=False) + "\n")
    tmp.replace(p)


def _check_kinds(kinds: Sequence[str]) -> list[str]:
    ks = list(dict.fromkeys(k.strip() for k in kinds if k.strip()))
    bad = [k for k in ks if k not in KINDS]
    if bad or not ks:
        raise InvalidParameter(f"kinds must be among {', '.join(KINDS)}, got {', '.join(bad) or 'none'}")
    if ks == ["unanswerable"]:
        raise InvalidParameter("unanswerable items are made from answerable ones: add factoid or quantity")
    return ks


def synth_qa(collection: str, *, n: int = 20, model=None, kinds: Sequence[str] = ("factoid", "quantity", "unanswerable"),
             seed: int = 0, settings=None, k: int = 5, mode: str = "hybrid", dedupe: float = 0.9,
             template: str | None = None, max_attempts: int | None = None, temperature: float = 0.3,
             progress: Callable[[int, int], None] | None = None) -> SynthReport:
    """Generate up to ``n`` kept items from ``collection`` (about a quarter unanswerable when asked for),
    making at most ``max_attempts`` answerable attempts (default 4n + 8)."""
    import numpy as np

    from ..config import load_settings
    from ..models.registry import get_model
    from ..prompts.structured import parse_json
    from ..prompts.templates import resolve_template
    from ..rag import grounding
    from ..retrieval import Retriever
    from ..stores.collections import collection_exists

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameter(f"n must be a positive number of items, got {n!r}")
    if not 0 < dedupe <= 1:
        raise InvalidParameter(f"dedupe must be in (0, 1], got {dedupe}")
    kinds = _check_kinds(kinds)
    settings = settings or load_settings()
    if not collection_exists(collection, settings):
        raise InvalidParameter(f"no collection named {collection!r}; `genstack collections list` shows them")
    model = model if model is not None and not isinstance(model, str) else get_model(model, settings=settings)
    retriever = Retriever(collection, settings=settings)
    chunks = retriever.store.chunks()
    if not chunks:
        raise InvalidParameter(f"collection {collection!r} holds no chunks")
    rng = random.Random(seed)
    by_source: dict[str, list] = {}
    for c in chunks:
        by_source.setdefault(c.source, []).append(c)
    sources = sorted(by_source)
    rng.shuffle(sources)
    answerable = [k_ for k_ in kinds if k_ != "unanswerable"]
    n_unans = (n // 4 or 1) if "unanswerable" in kinds and n > 1 else 0
    n_ans = n - n_unans
    budget = max_attempts or 4 * n_ans + 8
    templates = {}
    free = template is not None and template.split(":")[-1].split(".")[-1] == "free"
    for kind in answerable:
        name = template or kind.replace("-", "_")
        templates[kind] = resolve_template(name, "synth", kind.replace("-", "_"), data_dir=settings.data_dir)
    report = SynthReport([], model=model.name)
    embedder = retriever.embedder
    kept_vecs: list = []
    t0 = time.perf_counter()
    params = SamplingParams(temperature=temperature, top_p=0.9, max_tokens=160 if free else 48, stop=("\n",) if not free else (),
                            seed=seed)
    attempt = 0
    emit = progress or (lambda done, total: None)
    while len(report.items) < n_ans and attempt < budget:
        kind = answerable[attempt % len(answerable)]
        source = sources[attempt % len(sources)]
        attempt += 1
        chunk = rng.choice(by_source[source])
        picked = _pick(kind, chunk, chunks, rng)
        if picked is None:
            continue
        sentence, answer, sentence2, chunk2 = picked
        report.generated[kind] += 1
        t = templates[kind]
        values = {"context": chunk.text, "sentence": sentence, "answer": answer, "sentence2": sentence2 or "",
                  "hint": _hint(answer)}
        values = {v: values[v] for v in t.variables if v in values}
        msgs = t.render(**values)
        filters: dict[str, bool] = {}
        if t.options.get("writes") == "qa":
            schema = {"type": "object", "required": ["question", "answer", "supporting_sentence"],
                      "properties": {"question": {"type": "string", "maxLength": 200},
                                     "answer": {"type": "string", "maxLength": 80},
                                     "supporting_sentence": {"type": "string", "maxLength": 300}}}
            try:
                data = parse_json(model.chat(msgs, params=params, json_schema=schema).text, schema)
                question = _question(data["question"])
                answer, sentence = " ".join(data["answer"].split()), " ".join(data["supporting_sentence"].split())
            except Exception:
                question = None
        else:
            question = _question(model.chat(msgs, params=params).text)
        # a question of the kind asked for: a quantity question asks how many/much/long/when
        texts = [chunk.text] + ([chunk2.text] if chunk2 is not None else [])
        filters["well_formed"] = question is not None and _fits(kind, question, answer, sentence2 or sentence) and _names_known(question, texts)
        if filters["well_formed"]:
            filters["not_leaked"] = bool(grounding.content_words(answer, exclude=question))
        if filters.get("not_leaked"):
            filters["supported"] = _supported(answer, sentence2 or sentence, texts, question)
        if filters.get("supported"):
            hits = retriever.search(question, k=k, mode=mode)
            want = {chunk2.id} if chunk2 is not None else {chunk.id}
            filters["retrievable"] = any(h.id in want for h in hits)
        if filters.get("retrievable"):
            v = np.asarray(embedder.embed([question])[0], dtype=np.float32)
            filters["unique"] = not kept_vecs or float(max(np.stack(kept_vecs) @ v)) < dedupe
        failed = next((f for f in FILTERS if filters.get(f) is False), None)
        if failed is not None:
            report.dropped[failed] += 1
            continue
        kept_vecs.append(v)
        gold = chunk2 if chunk2 is not None else chunk
        report.items.append(SynthItem(f"synth-{len(report.items) + 1}", question, gold.source, [answer], kind, answer,
                                      sentence2 if chunk2 is not None else sentence, gold.id, gold.text, filters,
                                      model.name))
        report.kept[kind] += 1
        emit(len(report.items), n)
    if n_unans:
        _unanswerable(report, chunks, n_unans, rng, embedder, kept_vecs, dedupe)
        emit(len(report.items), n)
    report.seconds = time.perf_counter() - t0
    return report


def _pick(kind: str, chunk, chunks, rng: random.Random):
    """(sentence, answer, second sentence, second chunk) for one attempt of ``kind``, or None."""
    sents = _sentences(chunk.text)
    rng.shuffle(sents)
    if kind == "quantity":
        for s in sents:
            a = _quantity(s)
            if a:
                return s, a, None, None
        return None
    if kind == "factoid":
        for s in sents:
            names = [x for x in _names(s) if len(x) > 3]
            if names:
                return s, max(names, key=len), None, None
        return None
    # multi-hop: a name of this chunk that another chunk also mentions; the answer comes from the other one
    for s in sents:
        for name in _names(s):
            if len(name) < 4:
                continue
            others = [c for c in chunks if c.id != chunk.id and name in c.text]
            rng.shuffle(others)
            for other in others:
                for s2 in _sentences(other.text):
                    if name not in s2:
                        continue
                    cands = [x for x in _names(s2) if x != name and len(x) > 3 and x not in s] + (
                        [q] if (q := _quantity(s2)) else [])
                    if cands:
                        return s, cands[0], s2, other
    return None


def _unanswerable(report: SynthReport, chunks, n: int, rng: random.Random, embedder, kept_vecs, dedupe) -> None:
    """Questions of kept items with one name swapped for a name no chunk mentions."""
    import numpy as np

    corpus = "\n".join(c.text for c in chunks).lower()
    absent = [f for f in FICTIONAL if f.lower() not in corpus]
    base = [it for it in report.items]
    rng.shuffle(base)
    made = 0
    for it in base:
        if made >= n or not absent:
            break
        names = [x for x in _names(it.question) if x.lower() in corpus and x not in it.answer]
        if not names:
            continue
        report.generated["unanswerable"] += 1
        name = max(names, key=len)
        new = rng.choice(absent)
        # swap the first word of a longer name ("Varga Hill Observatory" -> "Brannoch Hill Observatory"):
        # the question stays on the corpus's topic while the thing it asks about exists in no document
        q = it.question.replace(name, " ".join([new] + name.split()[1:]))
        filters = {"absent": new.lower() not in corpus}
        v = np.asarray(embedder.embed([q])[0], dtype=np.float32)
        filters["unique"] = float(max(np.stack(kept_vecs) @ v)) < dedupe if kept_vecs else True
        if not all(filters.values()):
            report.dropped["absent" if not filters["absent"] else "unique"] += 1
            continue
        kept_vecs.append(v)
        absent.remove(new)
        made += 1
        report.items.append(SynthItem(f"synth-{len(report.items) + 1}", q, None, [], "unanswerable", "", "",
                                      None, "", filters, report.model))
        report.kept["unanswerable"] += 1
