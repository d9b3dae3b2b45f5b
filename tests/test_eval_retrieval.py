import json
import math

import pytest

from genstack.cli import run
from genstack.evaluation.retrieval import load_beir, mrr_at_k, ndcg_at_k, recall_at_k

pytestmark = pytest.mark.unit


def test_ndcg_hand_computed_with_trec_eval_s_linear_gains():
    rels = {"a": 1, "b": 2, "n": -1}
    # trec_eval's ndcg_cut (what BEIR reports): the gain is the relevance level, negative counts as 0
    # ranking b, x, a: DCG = 2/log2(2) + 0 + 1/log2(4) = 2.5; ideal b, a: IDCG = 2 + 1/log2(3)
    assert ndcg_at_k(["b", "x", "a"], rels) == pytest.approx(2.5 / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["n", "b", "a"], rels) == pytest.approx((2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["b", "a"], rels) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], rels) == 0.0
    assert ndcg_at_k(["a"] + ["x"] * 20, {"a": 1}, k=10) == 1.0


def test_recall_and_mrr_hand_computed():
    rels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "x", "b"], rels, 2) == 0.5
    assert recall_at_k(["a", "x", "b"], rels, 100) == 1.0
    assert mrr_at_k(["x", "y", "b"], rels) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x"], rels) == 0.0  # judged but not relevant


@pytest.fixture
def beir(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    docs = [
        ("d1", "Cats", "Cats purr and chase mice."),
        ("d2", "Dogs", "Dogs bark and fetch sticks."),
        ("d3", "Fish", "Fish swim in water using fins."),
        ("d4", "Birds", "Birds fly and sing in the morning."),
    ]
    (d / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in docs))
    (d / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": t}) for q, t in [("q1", "which animal purrs"), ("q2", "fetch sticks"), ("q3", "unused")])
    )
    (d / "qrels").mkdir()
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nquery-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return d


def test_load_beir_layouts(beir):
    data = load_beir(beir)
    assert data.queries == {"q1": "which animal purrs", "q2": "fetch sticks"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_eval_retrieval_cli_end_to_end(beir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    args = ["eval", "retrieval", "--beir", str(beir), "--embedder", "fake", "--json"]
    assert run(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["queries"] == 2 and set(res["modes"]) == {"dense", "bm25", "hybrid"}
    assert res["modes"]["bm25"]["ndcg@10"] == 1.0
    assert res["modes"]["hybrid"]["recall@10"] == 1.0
    assert run(args) == 0  # the second run reuses the ingested corpus
    assert json.loads(capsys.readouterr().out)["modes"]["bm25"]["mrr@10"] == 1.0


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda d: (d / "corpus.jsonl").unlink(), "corpus.jsonl is missing"),
        (lambda d: (d / "qrels" / "test.tsv").unlink(), "no judgements for split 'test'"),
        (lambda d: (d / "qrels" / "test.tsv").write_text("h\th\th\nq9\td1\t1\n"), "judged queries are not in"),
        (lambda d: (d / "qrels" / "test.tsv").write_text("h\th\th\nq1\td1\tx\n"), "is not an integer"),
    ],
)
def test_bad_beir_folders_are_one_line_errors(beir, setup, fragment, capsys):
    setup(beir)
    assert run(["eval", "retrieval", "--beir", str(beir), "--embedder", "fake"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


@pytest.mark.unit
def test_ranked_documents_keeps_each_document_at_its_best_chunk():
    from types import SimpleNamespace

    from genstack.evaluation.retrieval import ranked_documents

    hits = [SimpleNamespace(id=i, metadata=m) for i, m in
            [("c1", {"_id": "d2"}), ("c2", {"_id": "d1"}), ("c3", {"_id": "d2"}), ("c4", {})]]
    assert ranked_documents(hits) == ["d2", "d1", "c4"]  # a chunk without a BEIR id stands for itself


def test_a_retrieved_document_with_the_query_s_id_is_dropped_as_beir_does(beir, tmp_path, monkeypatch, capsys):
    """ArguAna and Quora hold each query in the corpus under the query's id: BEIR ignores it."""
    with (beir / "corpus.jsonl").open("a") as f:
        f.write("\n" + json.dumps({"_id": "q1", "title": "q", "text": "which animal purrs"}))
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    assert run(["eval", "retrieval", "--beir", str(beir), "--embedder", "fake", "--mode", "bm25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["modes"]["bm25"]["ndcg@10"] == 1.0
