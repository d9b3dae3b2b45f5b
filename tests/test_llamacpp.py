"""The real bundled SmolLM2-135M through llama.cpp (about 90 tokens/s here)."""

import json
import subprocess
import sys

import pytest

from genstack import ContextLengthExceeded, InvalidParameter, Message, get_model

pytestmark = pytest.mark.integration

Q = [Message("user", "What is the capital of France?")]


def test_greedy_is_repeatable_in_process(smol):
    a = smol.chat(Q, greedy=True, max_tokens=16)
    smol.chat([Message("user", "Something else entirely, please.")], greedy=True, max_tokens=8)
    b = smol.chat(Q, greedy=True, max_tokens=16)
    assert a.text and a.text == b.text


def test_seeded_sampling_is_repeatable_and_seed_matters(smol):
    runs = [smol.chat(Q, seed=s, temperature=1.0, max_tokens=24).text for s in (11, 11, 12, 13)]
    assert runs[0] == runs[1]
    assert len(set(runs[1:])) > 1


def _cli(*args):
    p = subprocess.run(
        [sys.executable, "-m", "genstack", *args], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_same_seed_same_text_across_processes():
    args = ("generate", "Write one sentence about rivers.", "--seed", "123", "--temperature", "0.9",
            "--max-tokens", "24", "--json")
    first, second = json.loads(_cli(*args)), json.loads(_cli(*args))
    assert first["text"] and first["text"] == second["text"]
    assert first["seed"] == 123


def test_streaming_yields_pieces_that_join_to_the_text(smol):
    stream = smol.stream(messages=Q, greedy=True, max_tokens=20)
    pieces = list(stream)
    assert len(pieces) >= 5
    assert "".join(pieces) == stream.completion.text


def test_usage_and_length_finish(smol):
    c = smol.chat(Q, greedy=True, max_tokens=5)
    assert c.finish_reason == "length"
    assert c.usage.completion_tokens == 5
    assert c.usage.prompt_tokens == smol.count_tokens(smol.render_chat(Q))


def test_natural_end_is_stop(smol):
    c = smol.chat([Message("user", "Reply with just the word yes.")], greedy=True, max_tokens=64)
    assert c.finish_reason == "stop"
    assert c.usage.completion_tokens < 64


def test_stop_sequence_is_honoured(smol):
    full = smol.chat(Q, greedy=True, max_tokens=24).text
    word = full.split()[2]
    c = smol.chat(Q, greedy=True, max_tokens=24, stop=[word])
    assert c.finish_reason == "stop"
    assert word not in c.text
    assert full.startswith(c.text)


def test_chat_template_comes_from_the_gguf(smol):
    prompt = smol.render_chat([Message("system", "Be brief."), *Q])
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # the template adds its default system prompt when none is given
    assert "You are a helpful AI assistant named SmolLM" in smol.render_chat(Q)


def test_special_tokens_are_single_tokens(smol):
    assert smol.count_tokens("<|im_start|>") == 1


def test_context_overflow_is_an_error_not_a_crash():
    small = get_model("smollm2-135m-instruct", n_ctx=64)
    with pytest.raises(ContextLengthExceeded, match="context window of 64"):
        small.chat(Q, max_tokens=60)
    long = "word " * 200
    with pytest.raises(ContextLengthExceeded, match="shorten the prompt"):
        small.generate(long, max_tokens=1)
    c = small.chat(Q, greedy=True, max_tokens=60, on_overflow="clamp")
    assert c.finish_reason in ("stop", "length")
    assert c.usage.total_tokens <= 64


def test_empty_raw_prompt_is_rejected(smol):
    with pytest.raises(InvalidParameter, match="empty"):
        smol.generate("", max_tokens=4)


def test_unicode_streams_without_broken_characters(smol):
    c = smol.chat([Message("user", "Write the word café three times.")], greedy=True, max_tokens=24)
    assert "\ufffd" not in c.text


def test_requantized_weights_are_made_once_and_work(tmp_path):
    from genstack import load_settings

    settings = load_settings(data_dir=tmp_path, weights="q8_0")
    model = get_model("smollm2-135m-instruct", settings=settings, n_ctx=512)
    derived = list((tmp_path / "models" / "derived").glob("*-q8_0.gguf"))
    assert [model.path] == derived
    assert model.info.quantization == "Q8_0"
    stamp = derived[0].stat().st_mtime_ns
    again = get_model("smollm2-135m-instruct", settings=settings, n_ctx=512)
    assert again.path == derived[0] and derived[0].stat().st_mtime_ns == stamp
    c = model.chat(Q, greedy=True, max_tokens=8)
    assert c.usage.completion_tokens >= 1 and c.text.strip()
    assert not list((tmp_path / "models" / "derived").glob("*.partial"))


def test_original_policy_loads_the_shipped_file(tmp_path):
    from genstack import load_settings

    model = get_model("smollm2-135m-instruct", settings=load_settings(data_dir=tmp_path, weights="original"))
    assert model.path == model.source_path and model.info.quantization == "Q4_1"
    assert not (tmp_path / "models").exists()


def test_auto_policy_reencodes_q4_1_to_q8_0(smol):
    assert smol.source_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smol.weights == "q8_0" and smol.info.quantization == "Q8_0"


def test_a_script_that_loads_the_model_exits_without_a_traceback(home, tmp_path):
    (tmp_path / "ferry.md").write_text("The ferry leaves the harbour at 08:15 every day.")
    code = ("import sys\n"
            "from genstack.ingestion import ingest\n"
            "from genstack.rag import Asker\n"
            "ingest([sys.argv[1]], 'kb')\n"
            "a = Asker('kb', min_similarity=0)\n"  # a global holding the model until interpreter exit
            "print(a.ask('When does the ferry leave?').text)\n")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr


def test_first_impression_names_paris():
    """The first line make demo prints: generate on the bundled chat model, with its default system prompt."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "genstack", "generate", "What is the capital of France?", "--greedy",
                        "--max-tokens", "32"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Paris" in p.stdout
