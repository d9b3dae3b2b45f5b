import json

import pytest

from genstack.cli import run

pytestmark = pytest.mark.integration


def test_models_info_reads_the_bundled_gguf(capsys):
    assert run(["models", "info", "smollm2-135m-instruct", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["architecture"] == "llama"
    assert d["parameters"] == 134_515_008
    assert d["context_length"] == 8192
    assert d["quantization"] == "Q4_1"
    assert d["chat_template"] is True
    assert d["file_size"] == 98_362_432
    assert d["sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert d["sha256_verified"] is True


def test_models_info_reads_the_embedder_folder(capsys):
    assert run(["models", "info", "minilm-l6-v2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "safetensors"
    assert d["embedding_dimensions"] == 384
    assert d["layers"] == 6
    assert 22_000_000 < d["parameters"] < 23_000_000


def test_models_info_on_a_plain_path(capsys):
    from genstack.models.registry import REGISTRY, spec_paths
    from genstack import load_settings

    path, _ = spec_paths(REGISTRY["smollm2-135m-instruct"], load_settings())
    assert run(["models", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not in the registry" in out and "Q4_1" in out


def test_generate_command_answers_offline_and_repeatably(capsys):
    args = ["generate", "What is the capital of France?", "--greedy", "--max-tokens", "16"]
    assert run(args) == 0
    first = capsys.readouterr().out
    assert run(args) == 0
    assert capsys.readouterr().out == first and first.strip()
