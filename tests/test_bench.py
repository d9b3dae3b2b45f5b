"""The benchmark harness against a fake model whose log-probabilities are known."""

import json
import math

import pytest

from genstack.cli import run
from genstack.errors import InvalidParameter
from genstack.evaluation.bench import Example, Task, evaluate_task, file_task, get_task, mc_scores
from genstack.evaluation.bench.harness import mc2_score
from genstack.models.fake import FakeChatModel

pytestmark = pytest.mark.unit


class KnownLogprobs(FakeChatModel):
    """loglikelihood() from a table: {continuation: logprob}; records the contexts it saw."""

    def __init__(self, table, greedy=()):
        super().__init__(["x"])
        self.table, self.greedy, self.contexts = table, set(greedy), []

    def loglikelihood(self, prompt, continuations):
        self.contexts.append(prompt)
        return [(self.table[c], c in self.greedy) for c in continuations]


def test_acc_and_acc_norm_follow_the_harness_definitions():
    # " short" (6 chars) -2.0 -> -0.333/char; " a much longer answer" (21 chars) -3.0 -> -0.143/char
    s = mc_scores([-2.0, -3.0], ["short", "a much longer answer"], gold=1)
    assert s == {"acc": 0, "acc_norm": 1}
    assert mc_scores([-1.0, -3.0], ["short", "a much longer answer"], gold=0) == {"acc": 1, "acc_norm": 0}


def test_mc2_is_the_normalised_true_mass():
    lps = [math.log(0.5), math.log(0.3), math.log(0.2)]
    assert mc2_score(lps, [1, 0, 1]) == pytest.approx(0.7)


def make_task(examples, kind="mc"):
    return Task("toy", kind, lambda p: examples, "toy.jsonl", prompt=lambda ex: f"Question: {ex.context}\nAnswer:",
                preset=examples)


def test_evaluate_task_scores_and_stderr():
    exs = [Example("A?", ["yes", "no"], 0), Example("B?", ["left", "right"], 1), Example("C?", ["up", "down"], 0)]
    model = KnownLogprobs({" yes": -1.0, " no": -2.0, " left": -0.5, " right": -3.0, " up": -0.1, " down": -4.0})
    res = evaluate_task(model, make_task(exs))
    assert res["metrics"]["acc"]["value"] == pytest.approx(2 / 3)
    # sample stderr of [1, 0, 1]: sqrt(var / n) with var = 1/3
    assert res["metrics"]["acc"]["stderr"] == pytest.approx(math.sqrt((1 / 3) / 3))
    assert res["rows"][1]["logprobs"] == [-0.5, -3.0] and res["examples"] == 3
    assert model.contexts[0] == "Question: A?\nAnswer:"  # each context evaluated once for all choices


def test_few_shot_examples_are_seeded_and_never_the_question():
    exs = [Example(f"Q{i}?", ["a", "b"], 0) for i in range(10)]
    table = {" a": -1.0, " b": -2.0}
    m1, m2, m3 = KnownLogprobs(table), KnownLogprobs(table), KnownLogprobs(table)
    evaluate_task(m1, make_task(exs), shots=2, seed=7)
    evaluate_task(m2, make_task(exs), shots=2, seed=7)
    evaluate_task(m3, make_task(exs), shots=2, seed=8)
    assert m1.contexts == m2.contexts != m3.contexts
    first = m1.contexts[0]
    assert first.count("Question:") == 3 and first.endswith("Question: Q0?\nAnswer:")
    assert "Question: Q0?\nAnswer: a" not in first  # the asked example is not its own shot


def test_cloze_accuracy_and_perplexity():
    exs = [Example("The cat sat on the", [" mat"], 0, target="mat"), Example("Once upon a", [" time"], 0, target="time")]
    model = KnownLogprobs({" mat": -2.0, " time": -0.5}, greedy={" time"})
    res = evaluate_task(model, make_task(exs, kind="cloze"))
    assert res["metrics"]["acc"]["value"] == 0.5
    assert res["metrics"]["perplexity"]["value"] == pytest.approx(math.exp(1.25))


def test_builtin_tasks_load(tmp_path):
    from genstack.evaluation.bench.common import DATA_DIR

    if not DATA_DIR.is_dir():
        pytest.skip(f"shared evaluation data not found at {DATA_DIR}")
    arc = get_task("arc_easy").examples()
    assert len(arc) == 2376 and len(arc[0].choices) == 4 and arc[0].context.startswith("Question:")
    mc2 = get_task("truthfulqa_mc2").examples()
    assert len(mc2) == 817 and sum(mc2[0].labels) == 3
    assert get_task("lambada").examples()[0].target == "signs"
    with pytest.raises(InvalidParameter, match="unknown task"):
        get_task("hellaswag9")
    with pytest.raises(InvalidParameter, match="not found"):
        get_task("piqa").examples(tmp_path)


def test_task_file_without_code(tmp_path, home, capsys):
    f = tmp_path / "capitals.jsonl"
    lines = [{"genstack_task": {"name": "capitals", "prompt": "Q: capital of {country}?\nA:", "choices": "options", "gold": "answer"}},
             {"country": "France", "options": ["Paris", "Rome"], "answer": 0},
             {"country": "Italy", "options": ["Paris", "Rome"], "answer": 1}]
    f.write_text("\n".join(json.dumps(x) for x in lines))
    t = file_task(f)
    assert t.name == "capitals" and t.examples()[1].context == "Q: capital of Italy?\nA:"
    out = tmp_path / "out"
    assert run(["eval", "bench", "--task-file", str(f), "--model", "fake", "--output", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res[0]["task"] == "capitals" and res[0]["examples"] == 2 and 0 <= res[0]["metrics"]["acc"]["value"] <= 1
    assert (out / "summary.md").read_text().startswith("| task |")
    rows = json.loads((out / "capitals-fake.json").read_text())["rows"]
    assert len(rows) == 2 and len(rows[0]["logprobs"]) == 2


@pytest.mark.parametrize("lines, fragment", [
    ([{"query": "q", "choices": ["a"], "gold": 0}], "at least two strings"),
    ([{"query": "q", "choices": ["a", "b"], "gold": 5}], "index of the right choice"),
    ([{"choices": ["a", "b"], "gold": 0}], "lacks field"),
])
def test_malformed_task_files(tmp_path, capsys, lines, fragment):
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines))
    assert run(["eval", "bench", "--task-file", str(f), "--model", "fake"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_cli_errors(capsys):
    assert run(["eval", "bench", "nope", "--model", "fake"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert run(["eval", "bench"]) == 2
    assert run(["eval", "perplexity"]) == 2
    assert "one of the two" in capsys.readouterr().err
