"""The checked task sets (genstack.evaluation.tasks) and their scoring, on the fake model and embedder."""

import json
from importlib import resources

import pytest

from genstack.cli import run
from genstack.errors import InvalidParameter
from genstack.evaluation.tasks import TASK_SETS, bullet_checks, evaluate_task_set, load_task_set
from genstack.models.fake import FakeChatModel

pytestmark = pytest.mark.unit


def test_each_built_in_set_has_at_least_30_items_and_sentiment_is_balanced_with_neutral():
    for kind in TASK_SETS:
        rows = load_task_set(kind)
        assert len(rows) >= 30, kind
        assert len({r["text"] for r in rows}) == len(rows), kind  # no duplicates
    counts = {}
    for r in load_task_set("sentiment"):
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    assert counts == {"positive": 14, "negative": 14, "neutral": 14}
    assert "The meeting is at 3pm." in {r["text"] for r in load_task_set("sentiment")}  # the example


def test_no_item_is_one_of_the_templates_examples():
    prompts = resources.files("genstack.prompts").joinpath("data")
    templates = "".join(prompts.joinpath(f).read_text() for f in ("tasks.toml", "summarize.toml"))
    for kind in TASK_SETS:
        for r in load_task_set(kind):
            assert r["text"] not in templates, (kind, r["text"])


def test_bullet_checks_format_code_and_grounding():
    src = "The pool reopens on 1 June. It has eight lanes. Adults pay 5 euros."
    ok = bullet_checks("- Pool reopens on 1 June\n- Eight lanes\n- Adults pay 5 euros", src)
    assert ok == {"bullets": 3, "format_ok": True, "grounded": 1.0, "all_grounded": True}
    para = bullet_checks("The pool reopens on 1 June with eight lanes.", src)
    assert not para["format_ok"] and para["bullets"] == 1
    code = bullet_checks("- Pool reopens\n```python\nprint(1)\n```\n- Eight lanes", src)
    assert not code["format_ok"]
    wrong_number = bullet_checks("- Pool reopens on 2 June\n- Eight lanes\n- Adults pay 5 euros", src)
    assert wrong_number["format_ok"] and not wrong_number["all_grounded"] and wrong_number["grounded"] == pytest.approx(2 / 3)
    invented = bullet_checks("- Pool reopens on 1 June\n- Free parking for bicycles nearby\n- Eight lanes", src)
    assert not invented["all_grounded"]


def test_sentiment_scores_accuracy_macro_f1_and_recall_per_class():
    rows = load_task_set("sentiment")
    res = evaluate_task_set("sentiment", rows, model=FakeChatModel(["positive"]))
    s = res.summary()
    assert s["items"] == 42 and s["accuracy"] == pytest.approx(1 / 3)
    assert s["recall"] == {"negative": 0.0, "neutral": 0.0, "positive": 1.0}
    assert s["macro_f1"] == pytest.approx((2 * (1 / 3) / (1 + 1 / 3)) / 3)
    assert all(r["prediction"] == "positive" for r in res.rows)


def test_translation_is_scored_by_chrf_against_the_reference():
    rows = load_task_set("translate")[:5]
    echo_ref = FakeChatModel(responder=lambda req: next(r["reference"] for r in rows if r["text"] in str(req.messages)))
    assert evaluate_task_set("translate", rows, model=echo_ref).summary()["chrf"] == pytest.approx(100.0)
    bad = evaluate_task_set("translate", rows, model=FakeChatModel(["Bonjour, merde."])).summary()
    assert bad["chrf"] < 30


def test_bullets_rate_format_grounding_and_rouge():
    rows = load_task_set("bullets")[:3]
    good = FakeChatModel(responder=lambda req: "\n".join(
        "- " + b for b in next(r["reference"] for r in rows if r["text"] in str(req.messages))))
    s = evaluate_task_set("bullets", rows, model=good).summary()
    assert s["format_ok"] == 1.0 and s["rougeLsum"] > 0.9 and s["grounded_bullets"] == 1.0
    # an unsupported paragraph is dropped and replaced by the text's own central sentences
    para = evaluate_task_set("bullets", rows, model=FakeChatModel(["This is a summary of the text."])).summary()
    assert para["dropped_per_item"] == 1.0 and para["extracted_per_item"] == 3.0 and para["acceptable"] == 1.0


def test_classify_by_embedding_needs_no_model():
    from genstack.embeddings.fake import FakeEmbedder

    rows = load_task_set("classify")[:4]
    s = evaluate_task_set("classify", rows, embedder=FakeEmbedder(), method="embedding").summary()
    assert s["items"] == 4 and 0.0 <= s["accuracy"] <= 1.0 and s["method"] == "embedding"
    with pytest.raises(InvalidParameter, match="needs a model"):
        evaluate_task_set("classify", rows, method="llm")


def test_a_bad_set_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidParameter, match="must be one of"):
        load_task_set("poetry")
    bad = tmp_path / "s.jsonl"
    bad.write_text('{"text": "fine", "label": "positive"}\n{"text": "x"}\n')
    with pytest.raises(InvalidParameter, match="line 2: \"label\""):
        load_task_set("sentiment", bad)
    wrong = tmp_path / "c.jsonl"
    wrong.write_text(json.dumps({"text": "t", "labels": ["a", "b"], "label": "c"}) + "\n")
    with pytest.raises(InvalidParameter, match="not one of its labels"):
        load_task_set("classify", wrong)


def test_eval_task_cli_prints_the_figures_and_rejects_bad_input(capsys, tmp_path):
    assert run(["eval", "task", "sentiment", "--method", "llm", "--model", "fake:neutral", "--limit", "6"]) == 0
    out = capsys.readouterr().out
    assert "sentiment: 6 items" in out and "accuracy 0.333" in out  # --limit spreads over the three classes
    assert run(["eval", "task", "sentiment", "--method", "llm", "--model", "fake:neutral", "--limit", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["gold"] for r in data["rows"]} == {"positive", "negative", "neutral"}
    assert run(["eval", "task", "poetry", "--model", "fake:x"]) != 0
    err = capsys.readouterr().err
    assert "must be one of" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert run(["eval", "task", "sentiment", "--dataset", str(tmp_path / "none.jsonl"), "--model", "fake:x"]) != 0
    assert "not found" in capsys.readouterr().err
