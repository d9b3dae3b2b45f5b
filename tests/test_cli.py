import json
import subprocess
import sys

import pytest

from genstack.cli import run

pytestmark = pytest.mark.unit


def test_generate_json_with_fake_model(capsys):
    code = run(["generate", "hi", "--model", "fake:hello there", "--greedy", "--json", "--system", ""])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["text"] == "hello there"
    assert data["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_generate_streams_text_and_shows_prompt_on_stderr(capsys):
    assert run(["generate", "hi", "-m", "fake:a b c", "--greedy", "--show-prompt", "--system", "S"]) == 0
    out, err = capsys.readouterr()
    assert out == "a b c\n"
    assert "<|system|>\nS\n<|user|>\nhi\n<|assistant|>" in err


def test_generate_gives_chat_models_a_short_default_system_prompt(capsys, monkeypatch):
    from genstack import load_settings

    default = load_settings().system_prompt
    assert default and "briefly" in default
    assert run(["generate", "hi", "-m", "fake:a", "--show-prompt"]) == 0
    assert f"<|system|>\n{default}\n<|user|>\nhi" in capsys.readouterr().err
    assert run(["generate", "hi", "-m", "fake:a", "--show-prompt", "--system", ""]) == 0
    assert "<|system|>" not in capsys.readouterr().err  # "" sends none
    monkeypatch.setenv("GENSTACK_SYSTEM_PROMPT", "Be a pirate.")
    assert run(["generate", "hi", "-m", "fake:a", "--show-prompt"]) == 0
    assert "<|system|>\nBe a pirate.\n" in capsys.readouterr().err
    assert run(["generate", "hi", "-m", "fake:a", "--raw", "--show-prompt"]) == 0
    assert "pirate" not in capsys.readouterr().err  # raw prompts get nothing added


def test_generate_raw_sends_the_prompt_verbatim(capsys):
    assert run(["generate", "Once upon", "-m", "fake:x", "--raw", "--show-prompt", "--greedy"]) == 0
    assert "Once upon\n---" in capsys.readouterr().err


def test_generate_reads_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert run(["generate", "-", "-m", "fake", "--greedy"]) == 0
    assert capsys.readouterr().out == "You said: from stdin\n"


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["serve", "--api-key", ""], 2, "--api-key must not be empty"),
        (["serve", "--model", "openai:no-url"], 2, "openai:MODEL@"),
        (["serve", "--api-key", "ok", "--api-key", " :kb"], 2, "--api-key must not be empty"),
        (["generate", "hi", "-m", "fake", "--top-p", "1.5"], 2, "top_p must be in (0, 1]"),
        (["generate", "hi", "-m", "fake", "--temperature", "-1"], 2, "temperature must be in"),
        (["generate", "hi", "-m", "fake", "--max-tokens", "-3"], 2, "max_tokens must be >= 1"),
        (["generate", "   ", "-m", "fake"], 2, "the prompt is empty"),
        (["generate", "hi", "-m", "no-such-model"], 1, "unknown model 'no-such-model'"),
        (["generate", "hi", "-m", "fake", "--max-tokens", "5000"], 1, "exceeds the context window of 2048"),
        (["generate", "hi", "-m", "fake", "--top-k", "many"], 2, "Invalid value for '--top-k'"),
        (["generate", "hi", "-m", "fake", "--raw", "--system", "x"], 2, "--system needs a chat model"),
        (["no-such-command"], 2, "No such command"),
        (["models", "info", "nope"], 1, "unknown model 'nope'"),
        (["models", "memory", "--params", "lots"], 2, "cannot read a parameter count"),
        (["models", "memory", "--params", "1B", "--dtype", "fp8"], 2, "dtype must be one of"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(args, code, fragment, capsys):
    assert run(args) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err
    assert "Traceback" not in err


def test_memory_json(capsys):
    assert run(["models", "memory", "--params", "1B", "--dtype", "fp32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bytes"]["weights"] == 4e9


def test_memory_training_table(capsys):
    assert run(["models", "memory", "--params", "1B", "--dtype", "fp32", "--training", "full"]) == 0
    out = capsys.readouterr().out
    for part in ("weights", "kv cache", "activations", "gradients", "optimizer", "total", "assumptions"):
        assert part in out
    assert "4.00 GB" in out and "8.00 GB" in out


def test_models_list_json(capsys):
    assert run(["models", "list", "--json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    assert names == ["smollm2-135m-instruct", "minilm-l6-v2", "gemma3-270m"]


def test_config_show_reflects_env(monkeypatch, capsys):
    monkeypatch.setenv("GENSTACK_N_CTX", "777")
    assert run(["config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_ctx"] == 777


def test_bad_config_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("GENSTACK_N_CTX", "lots")
    assert run(["config", "show"]) == 2
    assert capsys.readouterr().err == "error: GENSTACK_N_CTX: n_ctx must be an integer, got 'lots'\n"


def test_chat_with_piped_input(monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n/exit\n"))
    assert run(["chat", "-m", "fake", "--greedy"]) == 0
    assert "You said: hello" in capsys.readouterr().out


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from genstack.cli import run; rc = run(['--help']);"
        "heavy = [m for m in ('llama_cpp', 'torch', 'numpy', 'jinja2') if m in sys.modules];"
        "print(heavy); sys.exit(rc)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    assert p.stdout.strip().splitlines()[-1] == "[]"
    assert "generate" in p.stdout and "models" in p.stdout


def test_console_script_error_has_no_traceback():
    p = subprocess.run(
        [sys.executable, "-m", "genstack", "generate", "hi", "--model", "/nonexistent/model.gguf"],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 1
    assert p.stderr.startswith("error: unknown model '/nonexistent/model.gguf'")
    assert "Traceback" not in p.stderr


def test_help_shows_no_type_for_on_off_flags(capsys):
    import os

    os.environ["COLUMNS"] = "100"
    assert run(["generate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--greedy" in out and "<bool>" not in out and "<float>" in out


def test_command_lists_show_each_commands_first_sentence():
    import typer

    from genstack.cli import _short_help, _without_flag_types, app

    assert _short_help("Serve it, e.g. as MCP.\nOver HTTP too.\n\nMore.") == "Serve it, e.g. as MCP."
    root = _without_flag_types(typer.main.get_command(app))

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            yield f"{path} {name}", sub
            yield from walk(sub, f"{path} {name}")

    for name, cmd in walk(root, "genstack"):
        short = cmd.short_help or ""
        assert short and "\n" not in short, name
        assert len(short) < 300, f"{name}: the command list shows {len(short)} characters"


def test_serve_accepts_a_configured_remote_model_name(tmp_path, monkeypatch, capsys):
    from genstack.models.registry import check_model_name
    from genstack import load_settings

    cfg = tmp_path / "config.toml"
    cfg.write_text('[models.big]\nbase_url = "http://gpu-box:8000/v1"\nmodel = "llama"\n')
    check_model_name("big", load_settings(cfg))  # a name from the config file is a model, checked without connecting
    monkeypatch.setenv("GENSTACK_CONFIG", str(cfg))
    assert run(["config", "show"]) == 0
    assert "gpu-box" in capsys.readouterr().out
