"""The RAG and task paths on the real bundled models."""

import json

import pytest

from genstack.prompts import parse_json

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"], "additionalProperties": False}


def test_sentiment_of_the_issue_example(smol):
    from genstack.rag import sentiment

    res = sentiment("I love using Generative AI", smol)
    assert res.label == "POSITIVE" and res.score >= 0.7


def test_scores_are_log_probabilities(smol):
    from genstack.generation import Message

    prompt = smol.render_chat([Message("user", "What is the capital of France? One word.")])
    paris, banana = smol.score(prompt, ["Paris", "banana"])
    assert banana < paris < 0
    # scoring leaves the model usable for generation
    assert smol.generate("Say hi.", greedy=True, max_tokens=4).usage.completion_tokens >= 1


@pytest.mark.parametrize("prompt", ["Give me a person as JSON.", "Write a poem about the sea.", "[[[{"])
def test_grammar_guarantees_schema_valid_json(smol, prompt):
    out = smol.generate(messages=[{"role": "user", "content": prompt}], json_schema=SCHEMA, greedy=True, max_tokens=96)
    assert out.finish_reason == "stop"
    value = parse_json(out.text, SCHEMA)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)


def test_extract_with_the_real_model(smol):
    from genstack.rag import extract

    value, _ = extract("Maria moved to Porto last year.", {"type": "object", "properties": {
        "name": {"type": "string"}, "city": {"type": "string"}}, "required": ["name", "city"]}, smol)
    assert value == {"name": "Maria", "city": "Porto"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from genstack import load_settings
    from genstack.evaluation.rag import sample_corpus
    from genstack.ingestion import ingest

    settings = load_settings(data_dir=tmp_path_factory.mktemp("rag"))
    ingest([sample_corpus()], "sample", settings=settings)
    return settings


def test_ask_answers_with_a_citation_and_abstains_off_topic(sample, smol):
    from genstack.rag import Asker

    a = Asker("sample", model=smol, settings=sample)
    ans = a.ask("What is the capacity of the Brewmaster K7 kettle?")
    assert not ans.abstained and "1.7" in ans.text
    assert ans.cited and all(s.hit.source.endswith("brewmaster-k7-kettle.md") for s in ans.cited_sources)
    off = a.ask("Who won the football World Cup in 2014?")
    assert off.abstained and off.reason == "weak-retrieval"
    a.close()


def test_structured_answer_with_an_unbounded_schema_finishes(sample, smol):
    """The issue's example: {"answer": {"type": "string"}} used to run to max_tokens and fail."""
    from genstack.rag import Asker, RagRequest

    a = Asker("sample", model=smol, settings=sample, answer_tokens=600)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    ans = a.ask(RagRequest("What is the capacity of the Brewmaster K7 kettle?", schema=schema))
    assert ans.schema == schema and [v.check for v in ans.checks][:2] == ["retrieval", "schema"]
    assert ans.checks[1].passed  # valid JSON, ended before the budget
    assert ans.abstained or "1.7" in ans.data["answer"]
    a.close()


def test_a_chat_follow_up_searches_for_what_was_asked_not_for_the_models_guess(sample, smol):
    """Issue 21: `chat --collection` answered a follow-up with a wrong instruction cited to an
    unrelated passage and the checks accepted it. Reproduced on the sample corpus: after "What do
    the error codes on the Brewmaster K7 mean?", SmolLM2's rewrite of "What should I do about E3?"
    was an answer ("... mean the manufacturer has a 3-year warranty"); the search found the
    warranty and the reply told the user about the 3-year warranty, cited and accepted. The
    search must keep the question (E3) and find the error-code table, not the warranty."""
    from genstack.rag import Asker, ChatSession

    chat = ChatSession.resume(Asker("sample", model=smol, settings=sample))
    chat.ask("What do the error codes on the Brewmaster K7 mean?")  # its answer is history, right or not
    follow = chat.ask("What should I do about E3?")
    assert "E3" in follow.query and "warranty" not in follow.query.lower(), follow.query
    assert follow.sources and follow.sources[0].hit.source.endswith("brewmaster-k7-kettle.md")
    assert "warranty" not in follow.text.lower(), follow.text
    # not asserted: that the reply is right. SmolLM2 has answered "E3 ... is not detected [2]" from
    # the error-code table (E2's meaning) and the checks accepted it; see the issue note
    assert all(s.hit.source.endswith("brewmaster-k7-kettle.md") for s in follow.cited_sources)
    # a second conversation: the follow-up alone would search for nothing in particular
    chat = ChatSession.resume(Asker("sample", model=smol, settings=sample))
    chat.ask("How do I descale the Brewmaster K7 kettle?")
    often = chat.ask("How often should I do that?")
    assert "descale" in often.query.lower() and often.sources[0].hit.source.endswith("brewmaster-k7-kettle.md")
    assert all(s.hit.source.endswith("brewmaster-k7-kettle.md") for s in often.cited_sources)
    chat.close()
