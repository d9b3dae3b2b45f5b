"""genstack tune without a model: data rows, the assistant-only loss mask, splits, run folders, the
tuned-model registry and the CLI's errors."""

import json

import pytest

from genstack.errors import InvalidParameter
from genstack.tune.data import IGNORE, load_pairs, load_sft_rows, mask_assistant

pytestmark = pytest.mark.unit


def _write(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def _chat(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_sft_rows_read_every_format_and_report_bad_lines_by_number(tmp_path):
    f = _write(tmp_path / "d.jsonl", [
        _chat("q1", "a1"),
        {"prompt": "q2", "completion": "a2"},
        "not json",
        {**_chat("q3", "a3"), "rating": 1},  # the feedback export: thumbs up
        {**_chat("q4", "a4"), "rating": -1},  # thumbs down: not a target
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
        [1, 2],
        "",
    ])
    rows = load_sft_rows(f)
    assert [r[-1]["content"] for r in rows.rows] == ["a1", "a2", "a3"]
    assert rows.rows[1] == [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    lines = dict(rows.skipped)
    assert set(lines) == {3, 5, 6, 7, 8}
    assert lines[3] == "not JSON" and "thumbs-down" in lines[5] and "assistant" in lines[6]
    assert "role" in lines[7] and "object" in lines[8]
    assert "3 rows" in rows.summary() and "line 3: not JSON" in rows.summary()


def test_an_empty_or_useless_file_is_one_clear_error(tmp_path):
    with pytest.raises(InvalidParameter, match="the file is empty"):
        load_sft_rows(_write(tmp_path / "e.jsonl", [""]))
    with pytest.raises(InvalidParameter, match=r"no usable training rows.*not JSON \(line 1\)"):
        load_sft_rows(_write(tmp_path / "b.jsonl", ["{oops", "nope"]))
    with pytest.raises(InvalidParameter, match="not found"):
        load_sft_rows(tmp_path / "missing.jsonl")


def test_pairs_come_from_rows_and_from_oppositely_rated_feedback(tmp_path):
    up = {**_chat("Capital of Italy?", "Rome."), "rating": 1}
    down = {**_chat("Capital of Italy?", "Milan, I think."), "rating": -1}
    lonely = {**_chat("Unpaired?", "yes"), "rating": 1}
    f = _write(tmp_path / "p.jsonl", [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
         "rejected": "go away"},
        {"prompt": "x", "chosen": "same", "rejected": "same"},
        up, lonely, down,
    ])
    pairs = load_pairs(f)
    assert {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5"} in pairs.rows
    assert {"prompt": [{"role": "user", "content": "Capital of Italy?"}], "chosen": "Rome.",
            "rejected": "Milan, I think."} in pairs.rows
    assert any(r["chosen"] == "Hello!" for r in pairs.rows) and len(pairs.rows) == 3
    skipped = dict(pairs.skipped)
    assert "same answer" in skipped[3] and "no oppositely rated" in skipped[5]


class CharTokenizer:
    """A chat-template tokenizer with one token per character (ChatML, like SmolLM2's template)."""

    chat_template = "chatml"

    def __init__(self, system=None):
        self.system = system

    def render(self, messages, add_generation_prompt):
        text = "".join(f"<{m['role']}>{m['content']}|" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False):
        return [ord(c) for c in self.render(messages, add_generation_prompt)]


def _labelled(enc):
    return "".join(chr(t) for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE)


def test_the_loss_is_masked_to_every_assistant_turn_and_its_end_marker():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "A1"}, {"role": "user", "content": "more"},
            {"role": "assistant", "content": "A2"}]
    enc = mask_assistant(CharTokenizer(), msgs, max_len=1000)
    assert _labelled(enc) == "A1|A2|"
    assert len(enc["input_ids"]) == len(enc["labels"]) == len(enc["attention_mask"])
    assert enc["labels"][: len("<system>S|<user>hi|<assistant>")] == [IGNORE] * len("<system>S|<user>hi|<assistant>")
    cut = mask_assistant(CharTokenizer(), msgs, max_len=33)
    assert len(cut["input_ids"]) == 33 and _labelled(cut) == "A1|"


def test_a_template_that_is_not_prefix_stable_cannot_be_masked():
    class Unstable(CharTokenizer):
        def render(self, messages, add_generation_prompt):  # numbers the turns from the end
            n = len(messages)
            return "".join(f"<{n - i}{m['role']}>{m['content']}|" for i, m in enumerate(messages)) + (
                "<assistant>" if add_generation_prompt else "")

    with pytest.raises(InvalidParameter, match="cannot be masked"):
        mask_assistant(Unstable(), [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], 100)


def test_split_is_seeded_and_holds_out_a_share_from_four_rows_up():
    from genstack.tune.sft import split_rows

    rows = list(range(20))
    train, held = split_rows(rows, 0.1, seed=3)
    assert len(held) == 2 and sorted(train + held) == rows and split_rows(rows, 0.1, seed=3) == (train, held)
    assert split_rows(rows, 0.1, seed=4) != (train, held)
    assert split_rows([1, 2, 3], 0.1, seed=0) == ([1, 2, 3], [])
    assert len(split_rows(list(range(5)), 0.1, seed=0)[1]) == 1
    assert split_rows(rows, 0.0, seed=0)[1] == []


def test_collate_pads_ids_labels_and_attention():
    pytest.importorskip("torch")
    from genstack.tune.sft import collate

    batch = collate(pad_id=0)([
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [IGNORE, 6, 7]},
        {"input_ids": [8], "attention_mask": [1], "labels": [8]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]


@pytest.mark.parametrize("bad", [dict(method="qlora"), dict(rank=0), dict(batch=-1), dict(max_len=8),
                                 dict(epochs=0), dict(eval_fraction=0.7), dict(lr=-1.0), dict(targets=())])
def test_bad_settings_are_refused(bad):
    from genstack.tune.sft import SFTConfig

    with pytest.raises(InvalidParameter):
        SFTConfig(**bad).check()


def test_run_folder_rules(tmp_path):
    from genstack.config import Settings
    from genstack.models.tuned import write_manifest
    from genstack.tune.run import RunFolder

    s = Settings(data_dir=tmp_path)
    cfg = {"kind": "sft", "rank": 16}
    with pytest.raises(InvalidParameter, match="nothing to resume"):
        RunFolder("m", s, resume=True, overwrite=False, config=cfg, rows=[1])
    run = RunFolder("m", s, resume=False, overwrite=False, config=cfg, rows=[1])
    assert not run.dir.exists()  # nothing is made until the model has loaded
    run.start()
    assert (run.dir / "run.json").is_file()
    with pytest.raises(InvalidParameter, match="unfinished run.*--resume"):
        RunFolder("m", s, resume=False, overwrite=False, config=cfg, rows=[1])
    with pytest.raises(InvalidParameter, match="data_sha256, rank differ"):
        RunFolder("m", s, resume=True, overwrite=False, config={**cfg, "rank": 8}, rows=[2])
    again = RunFolder("m", s, resume=True, overwrite=False, config=cfg, rows=[1])
    assert again.last_checkpoint() is None
    (run.checkpoints / "checkpoint-2").mkdir(parents=True)
    (run.checkpoints / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (run.checkpoints / "checkpoint-4").mkdir()  # killed while writing: no trainer_state.json yet
    assert again.last_checkpoint().endswith("checkpoint-2")
    write_manifest(run.dir, {"name": "m", "model": None})
    with pytest.raises(InvalidParameter, match="exists.*--overwrite"):
        RunFolder("m", s, resume=False, overwrite=False, config=cfg, rows=[1])
    with pytest.raises(InvalidParameter, match="cannot be combined"):
        RunFolder("m", s, resume=True, overwrite=True, config=cfg, rows=[1])
    RunFolder("m", s, resume=False, overwrite=True, config=cfg, rows=[1]).start()
    assert not (run.dir / "genstack-model.json").exists() and not run.checkpoints.exists()


@pytest.mark.parametrize("name", ["", "a/b", "../x", "openai:x", "-x", "x" * 65])
def test_tuned_names_are_plain(name):
    from genstack.models.tuned import check_name

    with pytest.raises(InvalidParameter):
        check_name(name)


def test_a_tuned_model_is_found_by_name_listed_and_checked(tmp_path):
    from genstack.config import Settings
    from genstack.errors import ModelIntegrityError, ModelNotFound
    from genstack.models.inspect import list_models
    from genstack.models.registry import check_model_name, resolve_model_file
    from genstack.models.tuned import tuned_dir, write_manifest
    from tests._gguf import write_gguf

    s = Settings(data_dir=tmp_path)
    folder = tuned_dir("mine", s)
    folder.mkdir(parents=True)
    write_gguf(folder / "model.gguf", {"general.architecture": "llama"}, {"w": (1,)})
    from genstack._files import sha256_file

    write_manifest(folder, {"name": "mine", "base": "smollm2-135m-instruct", "method": "lora", "model": "model.gguf",
                            "sha256": sha256_file(folder / "model.gguf"), "quantization": "Q8_0", "train_rows": 9})
    spec, path = resolve_model_file("mine", s)
    assert spec is None and path == folder / "model.gguf"
    check_model_name("mine", s)
    row = next(r for r in list_models(s) if r["name"] == "mine")
    assert row["kind"] == "chat" and "lora on smollm2-135m-instruct" in row["description"]
    write_manifest(folder, {"name": "mine", "model": "model.gguf", "sha256": "0" * 64, "method": "lora", "base": "b"})
    with pytest.raises(ModelIntegrityError):
        resolve_model_file("mine", s)
    write_manifest(folder, {"name": "mine", "model": None, "method": "lora", "base": "b"})
    with pytest.raises(ModelNotFound, match="no-export"):
        resolve_model_file("mine", s)


def test_a_soft_prompt_model_runs_on_its_bases_gguf_and_only_that_one(tmp_path):
    import numpy as np

    from genstack.config import Settings
    from genstack.errors import GenstackError, ModelIntegrityError, ModelNotFound
    from genstack.models.registry import resolve_model_file, soft_prompt_file
    from genstack.models.soft_prompt import load_soft_prompt
    from genstack.models.tuned import tuned_dir, write_manifest
    from genstack.models.registry import verify_sha256
    from tests._gguf import write_gguf

    s = Settings(data_dir=tmp_path)
    base = tmp_path / "base.gguf"
    write_gguf(base, {"general.architecture": "llama", "llama.embedding_length": 4}, {"w": (1,)})
    folder = tuned_dir("soft", s)
    folder.mkdir(parents=True)
    np.save(folder / "soft-prompt.npy", np.ones((3, 4), dtype=np.float32))
    manifest = {"name": "soft", "method": "prompt-tuning", "model": None, "soft_prompt": "soft-prompt.npy",
                "base": str(base), "base_sha256": verify_sha256(base, None, None)}
    write_manifest(folder, manifest)
    assert resolve_model_file("soft", s) == (None, base)
    assert soft_prompt_file("soft", s) == folder / "soft-prompt.npy" and soft_prompt_file(str(base), s) is None
    assert load_soft_prompt(folder / "soft-prompt.npy", 4).shape == (3, 4)
    with pytest.raises(GenstackError, match="tuned for another model"):
        load_soft_prompt(folder / "soft-prompt.npy", 8)
    np.save(tmp_path / "flat.npy", np.ones(4, dtype=np.float32))
    with pytest.raises(GenstackError, match="not a soft prompt"):
        load_soft_prompt(tmp_path / "flat.npy", 4)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(GenstackError, match="cannot read"):
        load_soft_prompt(tmp_path / "junk.npy", 4)
    write_manifest(folder, {**manifest, "base_sha256": "0" * 64})  # the base file is not the one it was tuned on
    with pytest.raises(ModelIntegrityError, match="another version"):
        resolve_model_file("soft", s)
    write_manifest(folder, {**manifest, "base": str(tmp_path / "gone.gguf")})
    with pytest.raises(ModelNotFound, match="which is gone"):
        resolve_model_file("soft", s)


def test_cli_tune_bad_input_is_one_line_and_creates_nothing(tmp_path, home, capsys):
    from genstack.cli import run

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases = [
        (["tune", "sft", "--data", str(tmp_path / "nope.jsonl"), "--output", "x"], "not found"),
        (["tune", "sft", "--data", str(empty), "--output", "x"], "no usable training rows"),
        (["tune", "sft", "--data", str(empty), "--output", "a/b"], "model name must be"),
        (["tune", "sft", "--data", str(empty), "--output", "x", "--method", "full"], "method must be one of"),
        (["tune", "sft", "--data", str(empty), "--output", "x", "--quant", "q2_k"], "quantization must be one of"),
        (["tune", "dpo", "--pairs", str(empty), "--output", "x"], "no usable preference pairs"),
    ]
    for argv, message in cases:
        assert run(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (home / "models" / "tuned").exists()


def test_rag_rows_are_the_pipelines_own_prompt_with_a_cited_supported_answer(home, tmp_path):
    from genstack import load_settings
    from genstack.ingestion import ingest
    from genstack.rag.checks import NOT_FOUND
    from genstack.rag.pipeline import Asker, RagRequest
    from genstack.tune.rag_data import rag_rows

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry to Isle Brann leaves the harbour at 08:15 every day except Sunday.")
    (docs / "museum.md").write_text("# Museum\n\nThe museum ticket costs 14 euros. Children enter free.")
    settings = load_settings()
    ingest([docs], "kb", settings=settings, embedder="fake")
    items = _write(tmp_path / "items.jsonl", [
        {"id": "a", "question": "When does the ferry to Isle Brann leave the harbour?", "source": str(docs / "ferry.md"),
         "supporting_sentence": "The ferry to Isle Brann leaves the harbour at 08:15 every day except Sunday."},
        {"id": "u", "question": "How much does the museum ticket cost for Quorvath?", "source": None},
        {"id": "x", "question": "When does the ferry to Isle Brann leave the harbour?", "source": "ferry.md",
         "supporting_sentence": "A sentence no document holds."},
    ])
    out = rag_rows(items, "kb", model="fake", settings=settings, min_similarity=0.05)
    assert out.to_dict() == {"items": 3, "rows": 2, "answer_rows": 1, "abstain_rows": 1,
                             "skipped": {"answer not among the shown sources": 1}}
    answer, abstain = out.rows
    asker = Asker("kb", model="fake", settings=settings, min_similarity=0.05)
    run = asker.prepare(RagRequest("When does the ferry to Isle Brann leave the harbour?"))
    assert answer["messages"][:-1] == [{"role": m.role, "content": m.content} for m in run.messages]
    n = next(s.n for s in run.sources if s.hit.source.endswith("ferry.md"))
    assert answer["messages"][-1] == {"role": "assistant",
                                      "content": f"The ferry to Isle Brann leaves the harbour at 08:15 every day except Sunday [{n}]."}
    assert abstain["messages"][-1]["content"] == NOT_FOUND and abstain["meta"]["answer"] == "abstain"


def test_report_rows_know_which_way_is_better_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from genstack.tune.report import _row, plot_report

    assert _row("rag", "fact", 0.5, 0.6)["better"] is True
    assert _row("rag", "false_abstention", 0.1, 0.2)["better"] is False
    assert _row("ppl", "perplexity", 20.0, 15.0)["better"] is True
    assert _row("rag", "fact", 0.5, 0.5)["better"] is None and _row("rag", "fact", None, 0.5)["delta"] is None
    png = plot_report({"base": "a", "tuned": "b", "rows": [_row("rag", "fact", 0.5, 0.6),
                                                            _row("ppl", "perplexity", 20.0, 15.0)]}, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_refuses_bad_input_before_loading_anything(tmp_path, home, capsys):
    from genstack.cli import run

    assert run(["tune", "report", "smollm2-135m-instruct", "no-such-model"]) == 1
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert run(["tune", "report", "fake", "fake", "--no-rag"]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    assert run(["tune", "report", "fake", "fake", "--no-rag", "--text", str(tmp_path / "none.txt")]) == 2
    assert "not a file" in capsys.readouterr().err


def test_pairs_from_arena_votes_and_from_its_export(tmp_path):
    from genstack.arena.store import ArenaDB
    from genstack.config import Settings
    from genstack.tune.data import arena_pairs

    s = Settings(data_dir=tmp_path)
    with pytest.raises(InvalidParameter, match="no usable preference pairs"):
        arena_pairs(s)
    db = ArenaDB.for_settings(s)
    won_b = db.add_battle(prompt="Capital of Italy?", model_a="x", model_b="y", answer_a="Milan.", answer_b="Rome.",
                          params={})
    tie = db.add_battle(prompt="Hi", model_a="x", model_b="y", answer_a="Hello", answer_b="Hey", params={})
    db.add_battle(prompt="unvoted", model_a="x", model_b="y", answer_a="1", answer_b="2", params={})
    blank = db.add_battle(prompt="Capital of Spain?", model_a="x", model_b="y", answer_a=" ", answer_b="Paris.",
                          params={})
    db.vote(won_b, "b")
    db.vote(tie, "tie")
    db.vote(blank, "a")  # a vote for no answer
    exported = list(db.export())
    db.close()
    pairs = arena_pairs(s)
    assert pairs.rows == [{"prompt": [{"role": "user", "content": "Capital of Italy?"}], "chosen": "Rome.",
                           "rejected": "Milan."}]
    assert len(pairs.skipped) == 2 and "not a preference" in pairs.skipped[0][1]
    assert "chosen answer is empty" in pairs.skipped[1][1]
    f = _write(tmp_path / "battles.jsonl", exported)
    from_file = load_pairs(f)
    assert from_file.rows == pairs.rows and len(from_file.skipped) == 2
