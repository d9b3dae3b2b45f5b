"""Synthetic QA on the fakes: the checks, the funnel counts, the eval-rag format, the CLI's errors."""

from __future__ import annotations

import json
import re

import pytest

from genstack.errors import InvalidParameter
from genstack.models.fake import FakeChatModel
from genstack.synth import FILTERS, qa_messages, synth_qa, write_jsonl
from tests._server import ingest_sample

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from genstack import load_settings

    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    s = load_settings(data_dir=tmp_path / "home", default_model="fake", default_embedder="fake")
    ingest_sample(s)
    return s


def _answer(request) -> str:
    text = request.prompt or request.messages[-1].content
    return re.findall(r'whose answer is exactly "([^"]+)"', text)[-1]


def good_writer():
    """Writes a question from the sentence it is given: the sentence's words before the answer."""
    def respond(request):
        text = request.messages[-1].content if request.messages else request.prompt
        sentence = re.findall(r"Sentence: (.+)", text)[-1]
        answer = _answer(request)
        words = [w for w in sentence.replace(answer, " ").split() if w.isalpha()][:8]
        lead = "How many" if any(c.isdigit() for c in answer) else "What"
        if re.fullmatch(r"\d{1,2}:\d\d", answer):
            lead = "At what time"
        elif re.fullmatch(r"(?:1[5-9]|20)\d\d", answer):
            lead = "In which year"
        return f" {lead} {' '.join(words)}?"
    return FakeChatModel(responder=respond)


def test_kept_items_pass_every_check_and_load_as_an_eval_rag_dataset(settings, tmp_path):
    from genstack.evaluation.rag import load_rag_dataset

    r = synth_qa("docs", n=8, model=good_writer(), settings=settings, seed=1, temperature=0)
    assert r.items, r.to_dict()
    answerable = [it for it in r.items if it.kind != "unanswerable"]
    for it in answerable:
        assert all(it.filters[f] for f in FILTERS) and it.answer in it.supporting_sentence
        assert it.chunk_id and it.answer in it.context and it.facts == [it.answer] and it.model == "fake"
    gen = sum(v for k, v in r.generated.items() if k != "unanswerable")
    assert gen == len(answerable) + sum(v for k, v in r.dropped.items() if k in FILTERS)
    out = tmp_path / "syn.jsonl"
    write_jsonl(r.items, out)
    items = load_rag_dataset(out)
    assert len(items) == len(r.items)
    assert any(not i.answerable for i in items) and any(i.answerable for i in items)
    sources = {it.source for it in answerable}
    assert len(sources) >= 3  # taken across documents, not from one


def test_unanswerable_items_name_something_no_chunk_mentions(settings):
    r = synth_qa("docs", n=8, model=good_writer(), settings=settings, seed=1, temperature=0)
    corpus = " ".join(h.text for h in __import__("genstack").open_collection("docs", settings).chunks()).lower()
    un = [it for it in r.items if it.kind == "unanswerable"]
    assert un
    for it in un:
        assert it.source is None and it.facts == [] and it.filters["absent"]
        assert any(w.strip("?").lower() not in corpus for w in it.question.split()[1:] if w[:1].isupper())


@pytest.mark.parametrize("reply, dropped_by", [
    ("no question mark here", "well_formed"),
    ("What is the answer to Quorvath Station?", "well_formed"),   # an entity the chunk never mentions
])
def test_bad_questions_are_dropped_by_the_right_check(settings, reply, dropped_by):
    r = synth_qa("docs", n=3, model=FakeChatModel([reply]), settings=settings, max_attempts=12, temperature=0,
                 kinds=["factoid"])
    assert r.items == [] and r.dropped[dropped_by] == sum(r.generated.values())


def test_a_question_that_gives_the_answer_away_is_dropped(settings):
    def leak(request):
        a = _answer(request)
        return f" Is it {a}, how many?" if any(c.isdigit() for c in a) else f" What is {a}?"
    r = synth_qa("docs", n=3, model=FakeChatModel(responder=leak), settings=settings, max_attempts=12, temperature=0,
                 kinds=["factoid", "quantity"])
    assert r.items == [] and r.dropped["not_leaked"] > 0


def test_the_same_question_twice_is_kept_once(settings):
    r = synth_qa("docs", n=4, model=FakeChatModel([" Who founded the Lindqvist Maritime Museum?"]),
                 settings=settings, kinds=["factoid"], max_attempts=16, temperature=0)
    assert len([it for it in r.items]) <= 1 and r.dropped["unique"] + r.dropped["supported"] + \
        r.dropped["retrievable"] + r.dropped["well_formed"] >= 1


def test_items_become_grounded_chat_examples():
    d = {"question": "Who founded it?", "answer": "Astrid", "source": "a.md", "context": "Astrid founded it."}
    m = qa_messages(d)["messages"]
    assert "[1] Astrid founded it." in m[0]["content"] and m[1]["content"] == "Astrid [1]."
    assert qa_messages({**d, "source": None})["messages"][1]["content"] == "NOT FOUND."


def test_api_errors(settings):
    with pytest.raises(InvalidParameter, match="no collection named 'nope'"):
        synth_qa("nope", model=FakeChatModel(["x"]), settings=settings)
    with pytest.raises(InvalidParameter, match="kinds must be among"):
        synth_qa("docs", model=FakeChatModel(["x"]), settings=settings, kinds=["trivia"])
    with pytest.raises(InvalidParameter, match="made from answerable ones"):
        synth_qa("docs", model=FakeChatModel(["x"]), settings=settings, kinds=["unanswerable"])
    with pytest.raises(InvalidParameter, match="positive number"):
        synth_qa("docs", model=FakeChatModel(["x"]), settings=settings, n=0)


@pytest.mark.parametrize("args, message", [
    (["--collection", "nope"], "no collection named 'nope'"),
    (["--collection", "docs", "--kinds", "trivia"], "kinds must be among"),
    (["--collection", "docs", "--mode", "fuzzy"], "--mode must be one of"),
    (["--collection", "docs", "--n", "0"], "positive number"),
])
def test_cli_bad_input_is_one_line(settings, capsys, tmp_path, args, message):
    from genstack.cli import run

    assert run(["synth", "qa", "--output", str(tmp_path / "o.jsonl"), "--model", "fake:x", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_writes_the_file_and_the_funnel(settings, capsys, tmp_path, monkeypatch):
    from genstack.cli import run

    monkeypatch.setattr("genstack.models.registry.get_model", lambda *a, **k: good_writer())
    out = tmp_path / "o.jsonl"
    assert run(["synth", "qa", "--collection", "docs", "--output", str(out), "--n", "6", "--json", "-t", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == len(out.read_text().splitlines()) > 0
    assert set(report["dropped"]) <= set(FILTERS) | {"absent"}
    assert run(["synth", "qa", "--collection", "docs", "--output", str(tmp_path / "missing" / "o.jsonl")]) == 2
