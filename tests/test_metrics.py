import json

import pytest

from genstack.cli import run
from genstack.errors import InvalidParameter
from genstack.evaluation.metrics import compute, normalize_answer

pytestmark = pytest.mark.unit


def test_squad_normalisation_and_em_f1_by_hand():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    # pred tokens {cat, sat}; ref {cat, sat, on, mat}: P = 1, R = 1/2, F1 = 2/3
    assert compute("f1", ["the cat sat"], ["a cat sat on the mat"])["f1"] == pytest.approx(2 / 3)
    assert compute("em", ["The cat."], ["cat"])["em"] == 1.0
    # best over references, then the mean over examples: (1 + 0) / 2
    assert compute("em", ["Paris", "Rome"], [["London", "paris"], "Milan"])["em"] == 0.5
    assert compute("f1", ["", "x"], ["", "y"])["f1"] == 0.5  # empty vs empty counts as a match


def test_accuracy_is_exact_after_strip():
    assert compute("accuracy", [" yes", "No", "maybe"], ["yes", "no", ["maybe", "perhaps"]])["accuracy"] == pytest.approx(2 / 3)


def test_bleu_by_hand():
    # 1- to 4-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths so no brevity penalty
    res = compute("bleu", ["the cat sat on the mat"], ["the cat sat on a mat"])
    assert res["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=0.01)
    assert compute("bleu", ["a b c d"], ["a b c d"])["bleu"] == pytest.approx(100)


def test_rouge_by_hand():
    res = compute("rouge", ["the cat sat"], ["the cat ran"])
    assert res["rouge1"] == pytest.approx(2 / 3) and res["rouge2"] == pytest.approx(0.5)
    assert compute("rouge", ["running dogs"], ["the dog runs"])["rouge1"] == pytest.approx(0.8)  # stemmed


def test_errors():
    with pytest.raises(InvalidParameter, match="2 predictions but 1 references"):
        compute("em", ["a", "b"], ["a"])
    with pytest.raises(InvalidParameter, match="metric must be"):
        compute("meteor", ["a"], ["a"])


def test_cli(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("the cat sat\nParis\n")
    (tmp_path / "r.jsonl").write_text(json.dumps(["a cat sat on the mat"]) + "\n" + json.dumps({"answers": ["paris"]}) + "\n")
    assert run(["eval", "metrics", "--pred", str(tmp_path / "p.txt"), "--ref", str(tmp_path / "r.jsonl"),
                "--metric", "em", "--metric", "f1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["examples"] == 2 and out["em"]["em"] == 0.5 and out["f1"]["f1"] == pytest.approx((2 / 3 + 1) / 2)
    (tmp_path / "short.txt").write_text("one\n")
    assert run(["eval", "metrics", "--pred", str(tmp_path / "p.txt"), "--ref", str(tmp_path / "short.txt"),
                "--metric", "em"]) == 2
    assert "2 predictions but 1 references" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    assert run(["eval", "metrics", "--pred", str(tmp_path / "p.txt"), "--ref", str(tmp_path / "bad.jsonl"),
                "--metric", "em"]) == 2
    assert "line 1 is not valid JSON" in capsys.readouterr().err


def test_eval_generate_scores_model_outputs(home, tmp_path, capsys):
    f = tmp_path / "d.jsonl"
    f.write_text('{"input": "Say the cat sat.", "reference": "the cat sat"}\n{"input": "Again.", "reference": ["x", "the cat sat"]}\n')
    assert run(["eval", "generate", "--dataset", str(f), "--metric", "rouge", "--metric", "em",
                "--model", "fake:The cat sat.", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["metrics"]["em"]["em"] == 1.0 and res["metrics"]["rouge"]["rouge1"] == pytest.approx(1.0)
    assert res["outputs"][0]["output"] == "The cat sat."
    f.write_text('{"input": "x"}\n')
    assert run(["eval", "generate", "--dataset", str(f), "--model", "fake"]) == 2
    assert "line 1" in capsys.readouterr().err


def test_builtin_generation_set():
    from genstack.evaluation.generate import load_generation_dataset

    rows = load_generation_dataset()
    assert len(rows) == 8 and all(r["input"].startswith("Summarize") for r in rows)
