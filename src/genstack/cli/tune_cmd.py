"""genstack tune: fine-tune the small model on your data (LoRA, soft prompts, DPO), on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from . import _common

app = typer.Typer(help="Fine-tune a model on your own data on CPU (LoRA, soft prompts, DPO); the result is a "
                  "local model for --model.", no_args_is_help=True)

_MODEL_HELP = "The model to tune: a registered name, a tuned model, a .gguf file or a transformers safetensors folder."
_QUANT_HELP = "The merged GGUF's type: q8_0, q4_k_m or f16 (llama.cpp's quantizer)."


def _progress():
    """A rich progress bar on stderr (loss, tokens/s, ETA) or plain lines when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = _common.console(stderr=True)
    bar = Progress(TextColumn("[bold]tuning"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeRemainingColumn(), console=err, transient=False, disable=not err.is_terminal)
    task = bar.add_task("tune", total=None, info="")

    def report(e: dict[str, Any]) -> None:
        if "message" in e:
            err.print(e["message"])
            return
        info = f"tokens/s {e['tokens_per_second']:.0f}"
        if "loss" in e:
            info = f"loss {e['loss']:.3f}  " + info
        if "eval_loss" in e:
            info += f"  eval loss {e['eval_loss']:.3f}"
        bar.update(task, total=e["max_steps"], completed=e["step"], info=info)
        if not err.is_terminal and ("loss" in e or "eval_loss" in e):
            eta = f", ETA {e['eta_seconds']:.0f}s" if e.get("eta_seconds") is not None else ""
            err.print(f"step {e['step']}/{e['max_steps']}: {info}{eta}")

    return bar, report


def _run(fn, **kw):
    bar, report = _progress()
    with bar:
        return fn(progress=report, **kw)


def _print_result(result, json_out: bool) -> None:
    if json_out:
        _common.print_json(result.to_dict())
        return
    m = result.manifest
    con = _common.console()
    loss = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    con.print(f"tuned {m['method']} on {m['base']}: {m['train_rows']} rows, {m['steps']} steps, "
              f"{m['tokens']} tokens in {m['seconds']:.0f} s ({m.get('tokens_per_second') or 0:.0f} tokens/s), "
              f"peak memory {_common.human_bytes(m['peak_rss_bytes'])}")
    if m.get("eval_rows"):
        con.print(f"held-out loss ({m['eval_rows']} rows): {loss(m.get('eval_loss_before'))} before, "
                  f"{loss(m.get('eval_loss_after'))} after")
    con.print(f"adapter: {result.dir / m['adapter']}")
    if result.model:
        con.print(f"model: {result.dir / m['model']} ({m['quantization']}); "
                  f"llama.cpp runtime adapter: {result.dir / m['lora_gguf']}")
        con.print(f"use it: genstack generate --model {result.name} \"...\"")
    else:
        con.print("no GGUF: llama.cpp cannot run soft prompts; load the adapter with PEFT")


@app.command("sft")
def sft(
    data: Path = typer.Option(..., "--data", "-d", help="JSONL of {\"messages\": [...]} or {\"prompt\", \"completion\"} "
                              "rows: genstack synth output, the web UI feedback export, or your own."),
    output: str = typer.Option(..., "--output", "-o", help="The tuned model's name (then --model NAME)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " [default: the default model]"),
    method: str = typer.Option("lora", "--method", help="lora, or prompt-tuning (soft prompts; adapter only)."),
    rank: int = typer.Option(16, "--rank", help="LoRA rank."),
    alpha: float = typer.Option(32.0, "--alpha", help="LoRA alpha (the update is scaled by alpha/rank)."),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", "--targets", help="Comma-separated modules LoRA adapts."),
    virtual_tokens: int = typer.Option(16, "--virtual-tokens", help="Soft-prompt length, with --method prompt-tuning."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate. [default: 2e-4 LoRA, 3e-2 prompt tuning]"),
    epochs: float = typer.Option(2.0, "--epochs", help="Passes over the training rows."),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after this many optimizer steps (overrides --epochs)."),
    batch: int = typer.Option(4, "--batch", help="Rows per step."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Steps whose gradients are summed per update."),
    max_len: int = typer.Option(512, "--max-len", help="Tokens per row (longer rows are cut)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the data order and the adapter's init."),
    eval_fraction: float = typer.Option(0.1, "--eval-fraction", help="Rows held out for the eval loss."),
    save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every this many steps (for --resume)."),
    quant: str = typer.Option("q8_0", "--quant", help=_QUANT_HELP),
    export: bool = typer.Option(True, "--export/--no-export", help="Merge and write the GGUF (LoRA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of --output from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model or run of that name."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Supervised fine-tuning in the model's own chat template, the loss on the assistant turns only.

    Loads the model's weights into torch from the GGUF genstack runs (dequantized once, cached),
    trains a PEFT adapter with transformers' Trainer, holds out --eval-fraction for an eval loss,
    checkpoints every --save-steps, then merges, exports GGUF and quantizes (LoRA). About 200
    tokens/s on 2 cores for the 135M model (benchmarks/RESULTS.md). Bad rows are skipped and reported
    by line number.
    """
    from ..tune.sft import SFTConfig, sft as run_sft

    cfg = SFTConfig(method=method, rank=rank, alpha=alpha, targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
                    virtual_tokens=virtual_tokens, lr=lr, epochs=epochs, max_steps=max_steps, batch=batch,
                    grad_accum=grad_accum, max_len=max_len, seed=seed, eval_fraction=eval_fraction,
                    save_steps=save_steps)
    result = _run(run_sft, data=data, output=output, model=model, config=cfg, quantization=quant, export=export,
                  resume=resume, overwrite=overwrite, settings=_common.settings())
    _print_result(result, json_out)


@app.command("dpo")
def dpo(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="JSONL of {\"prompt\", \"chosen\", \"rejected\"} rows, or the web "
                               "UI feedback export (a thumbs-up and a thumbs-down answer to one prompt make a pair)."),
    output: str = typer.Option(..., "--output", "-o", help="The tuned model's name (then --model NAME)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " Usually the SFT model. "
                                        "[default: the default model]"),
    beta: float = typer.Option(0.1, "--beta", help="DPO's beta: how far the policy may move from the reference."),
    rank: int = typer.Option(16, "--rank", help="LoRA rank."),
    alpha: float = typer.Option(32.0, "--alpha", help="LoRA alpha."),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", "--targets", help="Comma-separated modules LoRA adapts."),
    lr: float = typer.Option(5e-5, "--lr", help="Learning rate."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the pairs."),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after this many optimizer steps (overrides --epochs)."),
    batch: int = typer.Option(2, "--batch", help="Pairs per step."),
    max_len: int = typer.Option(512, "--max-len", help="Tokens per prompt + answer."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the data order."),
    eval_fraction: float = typer.Option(0.1, "--eval-fraction", help="Pairs held out for the eval loss and reward accuracy."),
    save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every this many steps (for --resume)."),
    quant: str = typer.Option("q8_0", "--quant", help=_QUANT_HELP),
    export: bool = typer.Option(True, "--export/--no-export", help="Merge and write the GGUF."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of --output."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model or run of that name."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Preference tuning (DPO, TRL's DPOTrainer) with a LoRA adapter; the reference is the model
    itself with the adapter off. Merged, exported and registered like tune sft's models."""
    from ..tune.dpo import DPOConfig, dpo as run_dpo

    cfg = DPOConfig(beta=beta, rank=rank, alpha=alpha, targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
                    lr=lr, epochs=epochs, max_steps=max_steps, batch=batch, max_len=max_len, seed=seed,
                    eval_fraction=eval_fraction, save_steps=save_steps)
    result = _run(run_dpo, pairs=pairs, output=output, model=model, config=cfg, quantization=quant, export=export,
                  resume=resume, overwrite=overwrite, settings=_common.settings())
    _print_result(result, json_out)
