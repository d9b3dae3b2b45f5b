"""What ``genstack models info`` shows: facts read from file headers, no weights loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import Settings
from .formats import read_gguf, read_safetensors_header
from .registry import REGISTRY, resolve_model_file, verify_sha256

__all__ = ["model_info"]

_ST_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "U8": 1, "F64": 8, "I64": 8, "I32": 4}


def _gguf_facts(path: Path) -> dict[str, Any]:
    info = read_gguf(path)
    md = info.metadata
    return {
        "format": "gguf",
        "architecture": info.architecture,
        "parameters": info.n_params,
        "context_length": info.context_length,
        "quantization": info.quantization,
        "chat_template": info.chat_template is not None,
        "layers": info.arch_value("block_count"),
        "hidden_size": info.arch_value("embedding_length"),
        "heads": info.arch_value("attention.head_count"),
        "kv_heads": info.arch_value("attention.head_count_kv"),
        "vocab_size": info.array_lengths.get("tokenizer.ggml.tokens") or info.arch_value("vocab_size"),
        "tokenizer": md.get("tokenizer.ggml.model"),
        "display_name": md.get("general.name"),
    }


def _safetensors_facts(folder: Path, weights: Path) -> dict[str, Any]:
    header = read_safetensors_header(weights)
    n = 0
    dtypes = set()
    for name, t in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for d in t.get("shape", []):
            count *= d
        n += count
        dtypes.add(t.get("dtype"))
    cfg: dict[str, Any] = {}
    for name in ("config.json", "sentence_bert_config.json"):
        p = folder / name
        if p.is_file():
            try:
                cfg.update(json.loads(p.read_text()))
            except ValueError:
                pass
    dims = cfg.get("hidden_size")
    return {
        "format": "safetensors",
        "architecture": (cfg.get("architectures") or [cfg.get("model_type", "unknown")])[0],
        "parameters": n,
        "context_length": cfg.get("max_seq_length") or cfg.get("max_position_embeddings"),
        "quantization": ",".join(sorted(d for d in dtypes if d)) or "unknown",
        "chat_template": False,
        "layers": cfg.get("num_hidden_layers"),
        "hidden_size": dims,
        "embedding_dimensions": dims,
        "heads": cfg.get("num_attention_heads"),
        "vocab_size": cfg.get("vocab_size"),
    }


def model_info(name_or_path: str, settings: Settings) -> dict[str, Any]:
    spec, path = resolve_model_file(name_or_path, settings)  # verifies the sha256
    weights = path / spec.weights if spec is not None and spec.weights else path
    facts = _gguf_facts(weights) if weights.suffix.lower() == ".gguf" or spec is None else _safetensors_facts(path, weights)
    digest = verify_sha256(weights, spec.sha256 if spec else None, settings.cache_dir / "model-hashes.json")
    out: dict[str, Any] = {
        "name": spec.name if spec else weights.name,
        "kind": spec.kind if spec else ("chat" if facts.get("chat_template") else "completion"),
        "path": str(weights),
        "file_size": weights.stat().st_size,
        "sha256": digest,
        "sha256_verified": spec is not None,
    }
    if spec is not None:
        out["package"] = spec.package
        out["description"] = spec.description
    out.update(facts)
    return out


def list_models(settings: Settings | None = None) -> list[dict[str, Any]]:
    """The registered models, then the ones ``genstack tune`` made (their base's kind, backend llama-cpp)."""
    from ..config import load_settings
    from .registry import is_installed
    from .tuned import list_tuned

    tuned = [
        {
            "name": m["name"],
            "kind": m.get("kind", "chat"),
            "installed": True,
            "package": "",
            "description": f"tuned: {m['method']} on {m['base']} ({m.get('quantization', '?')}, {m.get('train_rows', '?')} rows)",
            "tuned": True,
        }
        for m in list_tuned(settings or load_settings())
    ]
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "installed": is_installed(s),
            "package": s.package,
            "description": s.description,
        }
        for s in REGISTRY.values()
    ] + tuned
