from pathlib import Path

import pytest

from genstack.errors import InvalidParameter
from genstack.evaluation.rag import contains_fact, evaluate_rag, load_rag_dataset, sample_corpus

pytestmark = pytest.mark.unit


def test_builtin_dataset_is_consistent_with_the_corpus():
    items = load_rag_dataset()
    assert len(items) >= 40
    answerable = [i for i in items if i.answerable]
    assert 10 <= len(items) - len(answerable) and len(answerable) >= 30
    files = {p.name: p.read_text() for p in Path(sample_corpus()).glob("*.md")}
    for it in answerable:
        assert it.source in files, it.id
        assert contains_fact(files[it.source], it.facts), it.id  # the gold document holds the fact
    assert len({i.id for i in items}) == len(items)


def test_bad_dataset(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"question": "q", "source": "a.md"}\n')
    with pytest.raises(InvalidParameter, match="line 1"):
        load_rag_dataset(f)
    with pytest.raises(InvalidParameter, match="not found"):
        load_rag_dataset(tmp_path / "none.jsonl")


def test_metrics_on_a_scripted_model(home, tmp_path):
    from genstack import load_settings
    from genstack.ingestion import ingest
    from genstack.models.fake import FakeChatModel
    from genstack.rag import Asker
    from genstack.evaluation.rag import RagItem

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("The ferry to Isle Brann leaves at 08:15.")
    (docs / "cafe.md").write_text("The cafe sells waffles.")
    settings = load_settings()
    ingest([docs], "kb", settings=settings, embedder="fake")
    items = [RagItem("1", "When does the ferry to Isle Brann leave?", "ferry.md", ("08:15",)),
             RagItem("2", "What does the cafe sell?", "cafe.md", ("waffles",)),
             RagItem("3", "Who wrote Hamlet?", None, ())]
    replies = {"ferry": "It leaves at 08:15 [1].", "cafe": "NOT FOUND", "Hamlet": "NOT FOUND"}

    def reply(req):
        q = req.messages[-1].content.rsplit("Question:", 1)[1]
        return next(v for k, v in replies.items() if k in q)

    asker = Asker("kb", model=FakeChatModel(responder=reply), settings=settings, min_similarity=0.0, k=2)
    s = evaluate_rag(asker, items, hit_k=2)["summary"]
    assert s["hit@2"] == 1.0 and s["fact"] == 0.5 and s["abstention"] == 1.0 and s["false_abstention"] == 0.5
    assert s["citation_precision"] == 1.0 and s["citations"] == 1
