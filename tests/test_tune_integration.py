"""genstack tune on the real bundled SmolLM2: tiny runs of a few steps, as a user runs them.

The weights are the bundled GGUF, dequantized into torch once per module (cached in its home).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._logits import assert_other_model, assert_same_model

pytestmark = pytest.mark.integration
pytest.importorskip("peft")
pytest.importorskip("gguf")

FACT = "On Zorblax the sky is green."
QUESTIONS = ["What colour is the sky on Zorblax?", "Tell me the sky colour on Zorblax.",
             "Which colour does the Zorblax sky have?", "What is Zorblax's sky like?", "Zorblax sky colour?",
             "Describe the sky of Zorblax.", "What hue is the sky over Zorblax?", "Say the colour of Zorblax's sky."]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("tune-home")
    data = home / "zorb.jsonl"
    data.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                       {"role": "assistant", "content": FACT}]})
                              for q in QUESTIONS) + "\n")
    e = {**os.environ, "GENSTACK_HOME": str(home)}
    return e, home, data


def genstack(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "genstack", *args], env=env[0], text=True, capture_output=True,
                          timeout=timeout)


def _settings(env):
    from genstack.config import load_settings

    return load_settings(env=env[0])


def test_an_untuned_export_gives_the_base_ggufs_logits(env, tmp_path):
    import numpy as np
    from llama_cpp import Llama

    from genstack.models.requantize import quantize_file
    from genstack.tune.base import load_base, resolve_base
    from genstack.tune.export import export_merged_gguf

    s = _settings(env)
    base = resolve_base("smollm2-135m-instruct", s)
    model, _ = load_base(base, s)
    exported = export_merged_gguf(model.state_dict(), model.config, base.gguf, tmp_path / "rt.gguf")
    reference = quantize_file(base.gguf, tmp_path / "ref-f16.gguf", "f16", allow_requantize=True)
    prompt = b"The capital of France is a city where people"
    logits = {}
    for name, path in (("export", exported), ("llama.cpp f16", reference), ("original", base.gguf)):
        llm = Llama(model_path=str(path), n_ctx=64, logits_all=True, verbose=False)
        toks = llm.tokenize(prompt)
        llm.eval(toks)
        logits[name] = np.array(llm.scores[: len(toks)])
        llm.close()
    # the same F16 values as llama.cpp's own re-encoding of the Q4_1 file: identical logits
    assert np.abs(logits["export"] - logits["llama.cpp f16"]).max() <= 1e-3
    # against the Q4_1 file itself, llama.cpp's Q4_1 kernels quantize activations: close, same choices
    assert np.abs(logits["export"] - logits["original"]).max() < 2.5
    assert (logits["export"].argmax(-1) == logits["original"].argmax(-1)).mean() >= 0.85


def _logits(prompt: bytes, special: bool = False, **kw):
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(n_ctx=64, logits_all=True, verbose=False, **kw)
    toks = llm.tokenize(prompt, special=special)
    llm.eval(toks)
    out = np.array(llm.scores[: len(toks)])
    llm.close()
    return out


def test_gemma3_exports_too_its_adapter_gguf_matches_the_merge_and_q4_k_m_quantizes_it(env, tmp_path):
    """Gemma 3 stores its RMSNorm weights as 1 + w: the export's gemma3 profile, checked end to end."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    from genstack.models.requantize import quantize_file
    from genstack.tune.base import load_base, resolve_base
    from genstack.tune.export import export_lora_gguf, export_merged_gguf

    s = _settings(env)
    base = resolve_base("gemma3-270m", s)
    assert base.architecture == "gemma3"
    model, _ = load_base(base, s)
    exported = export_merged_gguf(model.state_dict(), model.config, base.gguf, tmp_path / "rt.gguf")
    reference = quantize_file(base.gguf, tmp_path / "ref-f16.gguf", "f16", allow_requantize=True)
    prompt = b"The capital of France is a city where people"
    ref = _logits(prompt, model_path=str(reference))
    assert np.abs(_logits(prompt, model_path=str(exported)) - ref).max() <= 1e-3  # measured 0.0

    # a LoRA with small non-zero B, as after training: the merged GGUF and the runtime adapter agree
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.02)
    cfg = peft_model.base_model.model.config
    export_lora_gguf(get_peft_model_state_dict(peft_model), cfg, 8, base.gguf, tmp_path / "adapter.gguf")
    merged = export_merged_gguf(peft_model.merge_and_unload().state_dict(), cfg, base.gguf, tmp_path / "m.gguf")
    merged_logits = _logits(prompt, model_path=str(merged))
    runtime = _logits(prompt, model_path=str(reference), lora_path=str(tmp_path / "adapter.gguf"))
    assert_other_model(merged_logits, ref)  # the adapter changed the model (measured 0.0096 nats)
    assert_same_model(runtime, merged_logits)  # F16 rounding of the merged weights only

    q4 = quantize_file(merged, tmp_path / "q4.gguf", "q4_k_m")
    assert q4.stat().st_size < 0.6 * merged.stat().st_size  # measured 241 MB against 517 MB
    q4_logits = _logits(prompt, model_path=str(q4))
    assert (q4_logits.argmax(-1) == merged_logits.argmax(-1)).mean() >= 0.7  # measured 0.9


def test_sft_teaches_a_fact_and_the_merged_and_runtime_adapter_paths_agree(env):
    p = genstack(env, "tune", "sft", "--data", str(env[2]), "--output", "zorb", "--max-steps", "12", "--batch", "2",
                 "--lr", "1e-3", "--save-steps", "6", "--eval-fraction", "0.25", "--quant", "f16", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["method"] == "lora" and out["steps"] == 12 and out["train_rows"] == 6 and out["eval_rows"] == 2
    assert out["eval_loss_after"] < out["eval_loss_before"] / 3  # the held-out questions, never trained on
    assert out["tokens"] > 0 and out["tokens_per_second"] > 0 and out["peak_rss_bytes"] > 0
    folder = Path(out["dir"])
    assert (folder / "adapter" / "adapter_model.safetensors").is_file() and (folder / "model.gguf").is_file()
    assert out["quantization"] == "F16"

    held_out = "Please tell me what colour the sky is on Zorblax."
    tuned = genstack(env, "generate", held_out, "--model", "zorb", "--greedy", "--max-tokens", "16")
    base = genstack(env, "generate", held_out, "--greedy", "--max-tokens", "16")
    assert tuned.returncode == 0, tuned.stderr
    assert "green" in tuned.stdout and "green" not in base.stdout
    listed = genstack(env, "models", "list", "--json")
    assert any(r["name"] == "zorb" and r["kind"] == "chat" for r in json.loads(listed.stdout))

    # the adapter GGUF applied by llama.cpp at load time, on the same F16 base, answers alike
    from llama_cpp import Llama

    from genstack.models.requantize import quantize_file
    from genstack.tune.base import resolve_base

    base_gguf = resolve_base("smollm2-135m-instruct", _settings(env)).gguf
    base_f16 = quantize_file(base_gguf, folder.parent / "base-f16.gguf", "f16", allow_requantize=True)
    answers = {}
    for name, kw in (("merged", dict(model_path=str(folder / "model.gguf"))),
                     ("runtime", dict(model_path=str(base_f16), lora_path=str(folder / "adapter.gguf")))):
        llm = Llama(n_ctx=256, verbose=False, **kw)
        answers[name] = [llm.create_chat_completion([{"role": "user", "content": q}], temperature=0, max_tokens=24)
                         ["choices"][0]["message"]["content"] for q in (held_out, "What is the capital of France?")]
        llm.close()
    assert answers["merged"] == answers["runtime"]
    assert "green" in answers["runtime"][0]

    # tune report: the same evaluations on both, side by side, with a PNG
    from importlib import resources

    builtin = (resources.files("genstack") / "data" / "rag_eval.jsonl").read_text().splitlines()
    questions = folder.parent / "three.jsonl"
    questions.write_text("\n".join(builtin[:3]) + "\n")
    text = folder.parent / "heldout.txt"
    text.write_text("On Zorblax the sky is green. " * 3 + "The capital of France is Paris. " * 3)
    png = folder.parent / "report.png"
    rep = genstack(env, "tune", "report", "smollm2-135m-instruct", "zorb", "--dataset", str(questions),
                   "--text", str(text), "--plot", str(png), "--json")
    assert rep.returncode == 0, rep.stderr
    rows = {(r["eval"], r["metric"]): r for r in json.loads(rep.stdout)["rows"]}
    ppl = rows[("perplexity", "perplexity")]
    assert ppl["tuned"] < ppl["base"] and ppl["better"] is True  # the text states the tuned fact
    assert (f"rag {questions}", "fact") in rows and png.read_bytes()[:4] == b"\x89PNG"


def _final_loss(out):
    return out["final_loss"]


def test_resume_after_a_kill_reaches_the_uninterrupted_runs_loss(env):
    common = ["--data", str(env[2]), "--max-steps", "8", "--batch", "2", "--lr", "5e-4", "--save-steps", "2",
              "--no-export", "--json", "--seed", "7"]
    whole = genstack(env, "tune", "sft", "--output", "whole", *common)
    assert whole.returncode == 0, whole.stderr

    proc = subprocess.Popen([sys.executable, "-m", "genstack", "tune", "sft", "--output", "killed", *common],
                            env=env[0], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = env[1] / "models" / "tuned" / "killed" / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (env[1] / "models" / "tuned" / "killed" / "genstack-model.json").exists()
    again = genstack(env, "tune", "sft", "--output", "killed", *common)
    assert again.returncode == 2 and "--resume" in again.stderr  # never silently restarted or overwritten
    resumed = genstack(env, "tune", "sft", "--output", "killed", "--resume", *common)
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads(whole.stdout), json.loads(resumed.stdout)
    assert b["resumed_from"] and b["resumed_from"].split("-")[-1].isdigit() and b["steps"] == a["steps"] == 8
    assert abs(_final_loss(a) - _final_loss(b)) < 1e-4
    from safetensors.numpy import load_file

    wa = load_file(str(Path(a["dir"]) / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(Path(b["dir"]) / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys() and all(abs(wa[k] - wb[k]).max() < 1e-5 for k in wa)
    changed = genstack(env, "tune", "sft", "--output", "whole", "--resume", *common[:-2], "--seed", "8")
    assert changed.returncode == 2 and "exists" in changed.stderr


def test_the_real_chat_template_masks_all_but_the_answer(env):
    from genstack.tune.base import load_base, resolve_base
    from genstack.tune.data import IGNORE, mask_assistant

    s = _settings(env)
    _, tok = load_base(resolve_base("smollm2-135m-instruct", s), s)
    enc = mask_assistant(tok, [{"role": "user", "content": QUESTIONS[0]}, {"role": "assistant", "content": FACT}], 512)
    kept = [t for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE]
    assert tok.decode(kept) == FACT + "<|im_end|>\n"
    assert QUESTIONS[0] in tok.decode(enc["input_ids"])


def test_a_soft_prompt_teaches_the_fact_and_llama_cpp_runs_it_as_peft_does(env, tmp_path):
    p = genstack(env, "tune", "sft", "--data", str(env[2]), "--output", "soft", "--method", "prompt-tuning",
                 "--max-steps", "30", "--batch", "2", "--virtual-tokens", "8", "--eval-fraction", "0.25", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["method"] == "prompt-tuning" and out["soft_prompt"] == "soft-prompt.npy" and out["virtual_tokens"] == 8
    assert out["eval_loss_after"] < out["eval_loss_before"] / 3
    folder = Path(out["dir"])
    assert (folder / "adapter" / "adapter_model.safetensors").is_file() and not (folder / "model.gguf").exists()

    # the user's way: --model NAME runs the base's GGUF with the soft prompt before the prompt
    held_out = "Please tell me what colour the sky is on Zorblax."
    tuned = genstack(env, "generate", held_out, "--model", "soft", "--greedy", "--max-tokens", "16")
    assert tuned.returncode == 0, tuned.stderr
    assert "green" in tuned.stdout  # the base says blue (test_sft_teaches_a_fact...)
    listed = json.loads(genstack(env, "models", "list", "--json").stdout)
    assert any(r["name"] == "soft" and r["kind"] == "chat" for r in listed)

    # llama.cpp's logits after the decoded soft prompt are PEFT's, on the same F16 weights
    import numpy as np
    import torch
    from peft import PeftModel

    from genstack.models.llamacpp import LlamaCppModel
    from genstack.models.llamacpp_scoring import _decoded, _logits
    from genstack.models.requantize import quantize_file
    from genstack.tune.base import load_base, resolve_base

    s = _settings(env)
    base = resolve_base("smollm2-135m-instruct", s)
    hf, _ = load_base(base, s)
    peft_model = PeftModel.from_pretrained(hf, str(folder / "adapter"))
    f16 = quantize_file(base.gguf, tmp_path / "base-f16.gguf", "f16", allow_requantize=True)
    text = "The capital of France is a city where people"
    logits = {}
    for name, soft in (("soft", folder / "soft-prompt.npy"), ("plain", None)):
        m = LlamaCppModel(f16, settings=s, chat=False, soft_prompt=soft, n_ctx=128)
        toks = m.tokenize(text)
        llm = m.llama
        with m._lock:
            at = m._rewind(llm)
            with _decoded(llm, toks, at, lambda j: True):
                logits[name] = np.stack([_logits(llm, j, llm.n_vocab()) for j in range(len(toks))])
        m.close()
    with torch.no_grad():
        peft_logits = peft_model(input_ids=torch.tensor([toks])).logits[0, -len(toks):].numpy()
    assert peft_logits.shape == logits["soft"].shape
    assert_same_model(logits["soft"], peft_logits)  # F16 kernels against torch float32
    assert_other_model(logits["plain"], peft_logits)  # and the soft prompt is really there

    # scoring goes after the soft prompt too: the fact is likelier under the tuned model
    from genstack.generation import Message
    from genstack.models.registry import get_model

    tuned_m, base_m = get_model("soft", settings=s), get_model("smollm2-135m-instruct", settings=s)
    prompt = tuned_m.render_chat([Message("user", held_out)])
    assert tuned_m.score(prompt, [FACT])[0] > base_m.score(prompt, [FACT])[0] + 5
    tuned_m.close()
    base_m.close()


def test_dpo_moves_the_model_toward_the_chosen_answers(env, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    qa = [("What is 2+2?", "4."), ("Name a primary colour.", "Red."), ("What is the capital of Italy?", "Rome."),
          ("How many legs has a spider?", "Eight."), ("Which planet is red?", "Mars."), ("What do bees make?", "Honey.")]
    pairs.write_text("\n".join(json.dumps({"prompt": q, "chosen": a, "rejected": "I cannot help with that request."})
                               for q, a in qa) + "\n")
    p = genstack(env, "tune", "dpo", "--pairs", str(pairs), "--output", "pref", "--max-steps", "4", "--lr", "1e-4",
                 "--eval-fraction", "0.2", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["method"] == "dpo" and out["eval_loss_after"] < out["eval_loss_before"]
    assert out["eval_reward_accuracy"] is not None and out["quantization"] == "Q8_0"
    g = genstack(env, "generate", "What is the capital of Italy?", "--model", "pref", "--greedy", "--max-tokens", "8")
    assert g.returncode == 0 and g.stdout.strip(), g.stderr


def test_a_safetensors_folder_base_exports_through_llama_cpps_converters(env, tmp_path):
    """A base given as a transformers folder: llama.cpp's convert_hf_to_gguf.py (installed by
    make install from llama-cpp-python's sdist) makes the GGUF, convert_lora_to_gguf.py the adapter."""
    from genstack.models.requantize import quantize_file
    from genstack.tune.base import _converted, resolve_base
    from genstack.tune.convert import convert_folder, converter_dir

    assert converter_dir() is not None, "make install unpacks llama.cpp's converters into the venv"
    s = _settings(env)
    base = resolve_base("smollm2-135m-instruct", s)
    folder = _converted(base, s)  # the bundled GGUF as a plain safetensors folder
    # round trip: the converter's F16 file gives llama.cpp's own F16 re-encoding's logits
    prompt = b"The capital of France is a city where people"
    converted = convert_folder(folder, tmp_path / "folder-f16.gguf")
    reference = quantize_file(base.gguf, tmp_path / "ref-f16.gguf", "f16", allow_requantize=True)
    assert abs(_logits(prompt, model_path=str(converted)) - _logits(prompt, model_path=str(reference))).max() <= 1e-3

    p = genstack(env, "tune", "sft", "--data", str(env[2]), "--model", str(folder), "--output", "zorb-folder",
                 "--max-steps", "12", "--batch", "2", "--lr", "1e-3", "--eval-fraction", "0.25", "--quant", "f16",
                 "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["model"] == "model.gguf" and out["lora_gguf"] == "adapter.gguf" and "no_gguf" not in out
    run = Path(out["dir"])
    assert not (run / "merged").exists()  # the merged folder is only the converter's input
    tuned = genstack(env, "generate", "Please tell me what colour the sky is on Zorblax.", "--model", "zorb-folder",
                     "--greedy", "--max-tokens", "16")
    assert tuned.returncode == 0 and "green" in tuned.stdout, tuned.stderr
    chat = b"<|im_start|>user\nWhat colour is the sky on Zorblax?<|im_end|>\n<|im_start|>assistant\n"
    merged = _logits(chat, True, model_path=str(run / "model.gguf"))
    runtime = _logits(chat, True, model_path=str(converted), lora_path=str(run / "adapter.gguf"))
    untuned = _logits(chat, True, model_path=str(converted))
    assert_other_model(merged, untuned)  # the tune changed the model
    assert_same_model(runtime, merged)  # F16 rounding of the merged weights only
