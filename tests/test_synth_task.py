"""genstack synth task: labelled examples with checks, on the scripted fake model and embedder."""

import json

import pytest

from genstack.cli import run
from genstack.embeddings.fake import FakeEmbedder
from genstack.errors import InvalidParameter
from genstack.models.fake import FakeChatModel
from genstack.synth.task import synth_task

pytestmark = pytest.mark.unit

SEEDS = [("my parcel is late again delivery courier", "delivery"), ("the courier lost my parcel", "delivery"),
         ("I was charged twice on my invoice billing", "billing"), ("refund the invoice charge please", "billing")]


def writer(replies_by_label):
    """A fake writer that answers from the label named in the prompt."""
    state = {}

    def respond(req):
        prompt = " ".join(m.content for m in req.messages)
        lab = next(l for l in replies_by_label if f'some {l} texts' in prompt)
        i = state.get(lab, 0)
        state[lab] = i + 1
        return replies_by_label[lab][i % len(replies_by_label[lab])]
    return respond


def test_checks_drop_copies_wrong_labels_duplicates_and_junk_and_count_them(home):
    replies = {"delivery": ["the courier left my parcel at the wrong door delivery",  # kept
                            "my parcel is late again delivery courier",              # a seed: not novel
                            "the courier left my parcel at the wrong door delivery",  # duplicate of a kept one
                            "ok"],                                                    # not well-formed
               "billing": ["my invoice shows a double charge billing refund",        # kept
                           "the courier parcel delivery late again box"]}             # reads as delivery: label
    model = FakeChatModel(responder=writer(replies))
    rep = synth_task("classify", labels=["delivery", "billing"], seeds=SEEDS, n=10, model=model,
                     embedder=FakeEmbedder(), max_attempts=8, temperature=0.0)
    texts = [it.text for it in rep.items]
    assert texts == ["the courier left my parcel at the wrong door delivery", "my invoice shows a double charge billing refund"]
    assert rep.dropped == {"novel": 1, "label": 2, "unique": 2, "wellformed": 1}
    assert sum(rep.generated.values()) == 8 and rep.kept == {"delivery": 1, "billing": 1}
    it = rep.items[0]
    assert it.label == "delivery" and it.messages[-1] == {"role": "assistant", "content": "delivery"}
    assert it.messages[1]["content"] == it.text and "delivery, billing" in it.messages[0]["content"]
    # every request showed seed examples of the label it asked for
    assert all("- " in r.messages[-1].content for r in model.requests)


def test_bad_calls_are_clear_errors(home):
    with pytest.raises(InvalidParameter, match="must be one of"):
        synth_task("poetry", model=FakeChatModel(["x"]), embedder=FakeEmbedder())
    with pytest.raises(InvalidParameter, match="none for: other"):
        synth_task("classify", labels=["delivery", "other"], seeds=SEEDS, model=FakeChatModel(["x"]), embedder=FakeEmbedder())


def test_synth_task_cli_writes_rows_eval_task_reads(home, tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in SEEDS))
    out = tmp_path / "out.jsonl"
    code = run(["synth", "task", "classify", "--labels", "delivery,billing", "--seeds", str(seeds), "--n", "2",
                "--model", "fake:the courier dropped my parcel in the rain delivery", "-o", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert report["items"] == len(rows) == 1 and rows[0]["label"] == "delivery" and rows[0]["labels"] == ["delivery", "billing"]
    from genstack.evaluation.tasks import load_task_set

    assert load_task_set("classify", out)[0]["text"] == rows[0]["text"]
    assert run(["synth", "task", "classify", "-o", str(out)]) != 0
    assert "needs --labels" in capsys.readouterr().err
