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
    if m.get("soft_prompt"):
        runs_on = result.dir / m["model"] if m.get("model") else f"{m['base']}'s GGUF"
        con.print(f"soft prompt: {result.dir / m['soft_prompt']} ({m['virtual_tokens']} vectors, decoded before "
                  f"every prompt on {runs_on})")
    elif result.model:
        runtime = f"; llama.cpp runtime adapter: {result.dir / m['lora_gguf']}" if m.get("lora_gguf") else ""
        con.print(f"model: {result.dir / m['model']} ({m['quantization']}){runtime}")
    if result.model:
        con.print(f"use it: genstack generate --model {result.name} \"...\"")
    else:
        con.print(f"no GGUF ({m.get('no_gguf', 'adapter only')}); load the adapter with PEFT")


@app.command("sft")
def sft(
    data: Path = typer.Option(..., "--data", "-d", help="JSONL of {\"messages\": [...]} or {\"prompt\", \"completion\"} "
                              "rows: genstack synth output, the web UI feedback export, or your own."),
    output: str = typer.Option(..., "--output", "-o", help="The tuned model's name (then --model NAME)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " [default: the default model]"),
    method: str = typer.Option("lora", "--method", help="lora, or prompt-tuning (soft prompts, run by llama.cpp before every prompt)."),
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
    pairs: Optional[Path] = typer.Option(None, "--pairs", "-p", help="JSONL of {\"prompt\", \"chosen\", \"rejected\"} rows, "
                                         "the web UI feedback export (a thumbs-up and a thumbs-down answer to one prompt "
                                         "make a pair) or genstack arena export's battles."),
    from_arena: bool = typer.Option(False, "--from-arena", help="Also the arena's voted battles: winner chosen, "
                                    "loser rejected, ties skipped."),
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
    result = _run(run_dpo, pairs=pairs, from_arena=from_arena, output=output, model=model, config=cfg, quantization=quant, export=export,
                  resume=resume, overwrite=overwrite, settings=_common.settings())
    _print_result(result, json_out)


@app.command("report")
def report(
    base: str = typer.Argument(..., help="The model before tuning (a name or a .gguf)."),
    tuned: str = typer.Argument(..., help="The tuned model (its name from tune sft / tune dpo)."),
    dataset: Optional[list[Path]] = typer.Option(None, "--dataset", help="A RAG question set (eval rag's format); "
                                                 "repeatable. [default: the built-in 44 questions]"),
    no_rag: bool = typer.Option(False, "--no-rag", help="Skip eval rag."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection the RAG questions are "
                                             "about. [default: the sample corpus, ingested as 'sample']"),
    task: Optional[list[str]] = typer.Option(None, "--task", help="An eval bench task (arc_easy, piqa, "
                                             "truthfulqa_mc1, truthfulqa_mc2, lambada); repeatable."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Items per bench task."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the bench tasks' data files."),
    text: Optional[Path] = typer.Option(None, "--text", help="A held-out text file: perplexity of both models."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the comparison as a PNG."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The same evaluations on BASE and TUNED, side by side: eval rag (key fact, citation precision,
    abstention, false abstention), the chosen eval bench tasks and perplexity on a held-out text."""
    from ..tune.report import plot_report, tune_report

    err = _common.console(stderr=True)
    rag = [] if no_rag else (list(dataset) if dataset else [None])
    res = tune_report(base, tuned, rag=rag, collection=collection, tasks=task or [], limit=limit, data_dir=data_dir,
                      text=text, settings=_common.settings(), progress=lambda msg: err.print(msg))
    if plot is not None:
        err.print(f"wrote {plot_report(res, plot)}")
    if json_out:
        _common.print_json(res)
        return
    from rich.table import Table

    t = Table(title=f"{base} → {tuned}", box=None)
    for col in ("eval", "metric", "base", "tuned", "change"):
        t.add_column(col, justify="left" if col in ("eval", "metric") else "right")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in res["rows"]:
        mark = {True: " better", False: " worse", None: ""}[r["better"]]
        t.add_row(r["eval"], r["metric"], fmt(r["base"]), fmt(r["tuned"]),
                  ("-" if r["delta"] is None else f"{r['delta']:+.3f}") + mark)
    _common.console().print(t)


@app.command("rag-data")
def rag_data(
    items: Path = typer.Option(..., "--items", help="Question-answer items: genstack synth qa output (question, "
                               "source, supporting_sentence; source null when unanswerable)."),
    collection: str = typer.Option(..., "--collection", "-c", help="The collection the tuned model will answer from."),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL of training rows for tune sft."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The model to be tuned (its context window "
                                        "decides how many sources fit). [default: the default model]"),
    k: Optional[int] = typer.Option(None, "--k", "-k", help="Chunks retrieved per question (as ask will use)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="dense, bm25 or hybrid (as ask will use)."),
    template: Optional[str] = typer.Option(None, "--template", help="Ask template (as ask will use)."),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Training rows for grounded answers in the pipeline's exact prompt: each question goes through
    the retrieval, screening, focus and fitting `genstack ask` runs, and the answer is its supporting
    sentence cited with the number its source got (NOT FOUND for unanswerable items). Rows whose answer
    the prompt does not show are skipped, counted by reason."""
    from ..tune.rag_data import rag_rows, write_rows

    if output.is_dir() or not output.parent.exists():
        from ..errors import InvalidParameter

        raise InvalidParameter(f"--output {output}: give a file in an existing folder")
    opts = {k2: v for k2, v in (("k", k), ("mode", mode), ("template", template)) if v is not None}
    rows = rag_rows(items, collection, model=model, settings=_common.settings(), **opts)
    write_rows(rows, output)
    if json_out:
        _common.print_json({**rows.to_dict(), "output": str(output)})
        return
    d = rows.to_dict()
    skipped = ", ".join(f"{why} {n}" for why, n in d["skipped"].items()) or "none"
    _common.console().print(f"{d['rows']} rows ({d['answer_rows']} answers, {d['abstain_rows']} abstentions) from "
                            f"{d['items']} items -> {output}; skipped: {skipped}")
