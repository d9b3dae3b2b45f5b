"""The agent task set and its scoring (genstack.evaluation.agent), on the scripted fake model."""

import json

import pytest

from genstack.errors import InvalidParameter
from genstack.evaluation.agent import AgentTask, answer_ok, evaluate_agent, load_agent_tasks
from tests._tools import scripted

pytestmark = pytest.mark.unit


def test_the_built_in_set_has_30_plus_tasks_of_each_kind_with_checkable_answers():
    tasks = load_agent_tasks()
    assert len(tasks) >= 30 and len({t.id for t in tasks}) == len(tasks)
    assert {t.kind for t in tasks} == {"calculator", "lookup", "lookup+calculator"}
    from genstack.evaluation.rag import sample_corpus

    corpus = " ".join(p.read_text() for p in sample_corpus().glob("*.md"))
    for t in tasks:
        if t.kind == "lookup":  # a lookup's answer is written in the corpus
            assert any(str(a) in corpus for a in t.answers), t.id


def test_answers_match_as_numbers_or_as_facts_and_nothing_else():
    assert answer_ok("17 * 23 = 391.", [391])
    assert answer_ok("The answer is 14.700000000000001", [14.7])
    assert answer_ok("About 60,000 bees", [60000])
    assert not answer_ok("The answer is 3910", [391]) and not answer_ok("391.5", [391])
    assert not answer_ok("It was founded in 1923.", [1911])
    assert answer_ok("It means a DRY boil.", ["dry boil"]) and not answer_ok("It is fine", ["dry boil"])


def test_a_bad_task_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidParameter, match="task file not found"):
        load_agent_tasks(tmp_path / "none.jsonl")
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"task": "x", "answers": [1]}\n{"task": "y"}\n')
    with pytest.raises(InvalidParameter, match="line 2: \"answers\""):
        load_agent_tasks(bad)
    bad.write_text("\n")
    with pytest.raises(InvalidParameter, match="no tasks"):
        load_agent_tasks(bad)


def test_evaluation_scores_answers_tool_use_and_steps():
    model = scripted({"name": "calculator", "arguments": {"expression": "17*23"}}, "It is 391.",
                     "I think it is 400.")
    tasks = [AgentTask("a", "calculator", "What is 17 * 23?", (391,), ("calculator",)),
             AgentTask("b", "calculator", "What is 20 * 20?", (400,), ("calculator",))]
    res = evaluate_agent(model, tasks, tools=["calculator"], threshold=None)
    a, b = res.rows
    assert a["success"] and a["tools_used"] and a["steps"] == 2 and a["calls"][0]["name"] == "calculator"
    assert b["success"] and not b["tools_used"] and b["steps"] == 1  # right, but without the calculator
    s = res.summary()
    assert s["success"] == 1.0 and s["tools_used"] == 0.5 and s["mean_steps"] == 1.5
    assert s["by_kind"]["calculator"]["tasks"] == 2
    loop = scripted(*[{"name": "calculator", "arguments": {"expression": "17*23"}}] * 3)
    row, = evaluate_agent(loop, tasks[:1], tools=["calculator"], threshold=None, max_steps=2).rows
    assert row["stopped"] == "max_steps" and "391" in row["answer"] and not row["success"]  # no answer given


def test_eval_agent_cli_prints_json_and_a_clear_error(monkeypatch, tmp_path, capsys):
    from genstack.cli import run

    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path))
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"id": "x", "task": "Say 5", "answers": [5], "needs": []}) + "\n")
    assert run(["eval", "agent", "--tasks", str(f), "--tools", "calculator", "--model", "fake:It is 5.", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["success"] == 1.0 and out["rows"][0]["answer"] == "It is 5."
    assert run(["eval", "agent", "--tasks", str(f), "--tools", "calculator", "--model", "fake:x",
                "--call-threshold", "high"]) == 2
    err = capsys.readouterr().err
    assert "--call-threshold must be a number" in err and "Traceback" not in err
