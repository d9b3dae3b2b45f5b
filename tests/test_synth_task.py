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


SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "amount": {"type": "number"}},
          "required": ["name", "amount"]}
TEXT_SEEDS = ["Order from Alice Brown: 3 lamps, total 45 euros.", "Bob Smith paid 1,200 dollars for a sofa."]


def extractor(texts, fields):
    """A fake writer-and-extractor: writes ``texts`` in turn and extracts ``fields`` in turn."""
    state = {"w": 0, "x": 0}

    def respond(req):
        if req.json_schema is not None:
            state["x"] += 1
            return fields[(state["x"] - 1) % len(fields)]
        state["w"] += 1
        return texts[(state["w"] - 1) % len(texts)]
    return respond


def test_grounded_needs_every_value_in_the_text():
    from genstack.synth.extract import grounded

    text = "Carol Jones paid 1,250.50 euros on 3 May for two chairs."
    assert grounded({"name": "carol  JONES", "amount": 1250.5, "items": ["chairs"]}, text)
    assert not grounded({"name": "Carol Jones", "amount": 1300}, text)    # a number not in the text
    assert not grounded({"name": "Carla Jones", "amount": 3}, text)       # a made-up name
    assert not grounded({"name": "", "paid": True, "other": None}, text)  # nothing checkable
    assert not grounded({"name": "Jon"}, text)                            # part of a word is not a value


def test_extract_examples_keep_only_valid_grounded_new_ones_and_count_drops(home):
    from genstack.synth.extract import synth_extract

    texts = ["Dana White ordered new bikes for 900 euros on Friday.",      # kept
             "Order from Alice Brown: 3 lamps, total 45 euros.",         # a seed: not novel
             "Evan Gray bought a kettle for 30 pounds at noon.",         # extraction not valid JSON: parsed
             "Fay Green paid 75 dollars for new garden tools.",          # amount made up: grounded
             "Hal Ward paid 20 euros for 4 cups.",                       # the 4 is left out: complete
             "Dana White ordered new bikes for 900 euros on Friday.",      # duplicate: unique
             "ok"]                                                       # wellformed
    fields = ['{"name": "Dana White", "amount": 900}', '{"name": "Evan Gray"',
              '{"name": "Fay Green", "amount": 80}', '{"name": "Hal Ward", "amount": 20}',
              '{"name": "Dana White", "amount": 900}']
    model = FakeChatModel(responder=extractor(texts, fields))
    rep = synth_extract(SCHEMA, seeds=TEXT_SEEDS, n=5, model=model, embedder=FakeEmbedder(), max_attempts=7,
                        temperature=0.0)
    assert [it.text for it in rep.items] == [texts[0]]
    assert rep.dropped == {"novel": 1, "parsed": 1, "grounded": 1, "complete": 1, "unique": 1, "wellformed": 1}
    assert rep.generated == {"extract": 7} and rep.kept == {"extract": 1}
    it = rep.items[0]
    assert it.fields == {"name": "Dana White", "amount": 900} and it.schema == SCHEMA
    assert json.loads(it.messages[-1]["content"]) == it.fields and it.messages[1]["content"] == it.text
    assert '"amount"' in it.messages[0]["content"]
    # the writer was shown seed texts; the extraction request carried the schema
    writes = [r for r in model.requests if r.json_schema is None]
    assert all("- " in r.messages[-1].content for r in writes)
    assert any(r.json_schema == SCHEMA for r in model.requests)


def test_synth_task_extract_cli_writes_chat_rows_and_refuses_bad_input(home, tmp_path, capsys):
    seeds, schema, out = tmp_path / "seeds.jsonl", tmp_path / "s.json", tmp_path / "out.jsonl"
    seeds.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXT_SEEDS))
    schema.write_text(json.dumps({"type": "object", "properties": {"text": {"type": "string"}}}))
    # the fake model answers every request with the same text: the written example and its extraction
    reply = "Gus Hill sent the package to Rome."
    code = run(["synth", "task", "extract", "--schema", str(schema), "--seeds", str(seeds), "--n", "1",
                "--model", f"fake:{reply}", "-o", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["generated"]["extract"] >= 1 and report["dropped"].get("parsed", 0) == report["generated"]["extract"]
    assert out.read_text() == ""  # the fake's reply is not JSON, so nothing passed
    assert run(["synth", "task", "extract", "--seeds", str(seeds), "-o", str(out)]) != 0
    assert "needs --schema" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "x"}\n')
    assert run(["synth", "task", "extract", "--schema", str(schema), "--seeds", str(bad), "-o", str(out)]) != 0
    err = capsys.readouterr().err
    assert "line 1" in err and "Traceback" not in err
    assert run(["synth", "task", "poetry", "-o", str(out)]) != 0
    assert "sentiment, classify, extract" in capsys.readouterr().err


def test_grounded_refuses_the_whole_text_copied_into_fields():
    from genstack.synth.extract import grounded

    text = "Inspect a tall mountain of bricks before the army arrives tonight."
    assert not grounded({"customer": "Inspect a tall mountain of bricks before the army arrives"}, text)
    assert not grounded({"customer": "the army", "product": "the army"}, text)  # two fields, one value
    assert grounded({"customer": "the army", "product": "bricks"}, text)


def test_complete_refuses_a_text_with_numbers_the_extraction_leaves_out():
    from genstack.synth.extract import complete

    text = "Maria ordered 3 lamps and 5 chairs."
    assert not complete({"customer": "Maria", "quantity": 3}, text, SCHEMA)           # 5 left out
    assert complete({"customer": "Maria", "quantity": 3, "note": "5 chairs"}, text, SCHEMA)
    no_numbers = {"type": "object", "properties": {"customer": {"type": "string"}}}
    assert complete({"customer": "Maria"}, text, no_numbers)  # the schema asks for no number


def test_extract_rows_are_what_tune_sft_reads(home, tmp_path):
    from genstack.synth.extract import synth_extract
    from genstack.synth.qa import write_jsonl
    from genstack.tune.data import load_sft_rows

    text = "Dana White ordered new bikes for 900 euros on Friday."
    model = FakeChatModel(responder=extractor([text], ['{"name": "Dana White", "amount": 900}']))
    rep = synth_extract(SCHEMA, seeds=TEXT_SEEDS, n=1, model=model, embedder=FakeEmbedder(), temperature=0.0)
    write_jsonl(rep.items, tmp_path / "x.jsonl")
    rows = load_sft_rows(tmp_path / "x.jsonl")
    assert len(rows.rows) == 1 and not rows.skipped and rows.rows[0][-1] == {"role": "assistant", "content": '{"name": "Dana White", "amount": 900}'}
