"""Preference tuning with DPO (TRL's ``DPOTrainer``) and a LoRA adapter, on CPU.

The reference policy is the base model itself (the adapter switched off), so no second copy of
the weights is held. Pairs come from a JSONL, or from the web UI's feedback export (a thumbs-up and
a thumbs-down answer to the same prompt; see :func:`genstack.tune.data.load_pairs`). The result is
merged, exported and registered exactly like ``tune sft``'s, so the usual order is SFT, then DPO
with ``--model`` set to the SFT model's name.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import InvalidParameter
from .data import load_pairs
from .run import (Progress, RunFolder, TuneResult, check_common, finish, loss_or_none, peak_rss, progress_callback,
                  quiet, run_figures)
from .sft import DEFAULT_TARGETS, split_rows

__all__ = ["DPOConfig", "dpo"]


@dataclass
class DPOConfig:
    """The knobs of ``genstack tune dpo``: DPO's beta and the LoRA adapter's settings."""

    beta: float = 0.1
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    lr: float = 5e-5
    epochs: float = 1.0
    max_steps: int = -1
    batch: int = 2
    grad_accum: int = 1
    max_len: int = 512
    seed: int = 0
    eval_fraction: float = 0.1
    save_steps: int = 50

    def check(self) -> None:
        if not self.beta > 0:
            raise InvalidParameter(f"beta must be positive, got {self.beta}")
        check_common(self, ("rank", "batch", "grad_accum", "max_len", "save_steps"))


def _conversational(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list([
        {"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
         "rejected": [{"role": "assistant", "content": r["rejected"]}]}
        for r in rows
    ])


def dpo(
    pairs: str | Path | None = None,
    *,
    from_arena: bool = False,
    output: str,
    model: str | None = None,
    config: DPOConfig | None = None,
    quantization: str = "q8_0",
    export: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """DPO-tune ``model`` on the preference pairs in the file ``pairs`` and/or (``from_arena``) the arena's
    voted battles; register the result as ``output``."""
    settings = settings or load_settings()
    cfg = config or DPOConfig()
    cfg.check()
    from ..models.tuned import check_name

    check_name(output)
    if pairs is None and not from_arena:
        raise InvalidParameter("give a pairs file (--pairs) or --from-arena")
    from .data import Rows, arena_pairs

    parts = ([load_pairs(pairs)] if pairs is not None else []) + ([arena_pairs(settings)] if from_arena else [])
    rows = Rows(" + ".join(p.path for p in parts), [r for p in parts for r in p.rows],
                [x for p in parts for x in p.skipped])
    from .base import load_base, require, resolve_base

    require("torch", "transformers", "peft", "gguf", "trl", "datasets")
    base = resolve_base(model or settings.default_model, settings)
    if export and base.gguf is not None:
        from .export import check_exportable

        check_exportable(base.architecture)
    used = {**cfg.__dict__, "targets": list(cfg.targets)}
    run = RunFolder(output, settings, resume=resume, overwrite=overwrite,
                    config={"kind": "dpo", "base_sha256": base.sha256, "base": base.name, **used}, rows=rows.rows)
    say = progress or (lambda e: None)
    say({"message": rows.summary().replace(" rows ", " pairs ", 1)})
    rss_libs = peak_rss()  # the interpreter and libraries, before the weights
    hf_model, tok = load_base(base, settings)
    train, held = split_rows(rows.rows, cfg.eval_fraction, cfg.seed)

    from peft import LoraConfig, TaskType
    from transformers import set_seed
    from trl import DPOConfig as TRLConfig, DPOTrainer

    set_seed(cfg.seed)  # TRL wraps the model in the adapter before the Trainer seeds anything

    args = TRLConfig(
        output_dir=str(run.checkpoints), beta=cfg.beta, learning_rate=cfg.lr, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch, per_device_eval_batch_size=cfg.batch,
        gradient_accumulation_steps=cfg.grad_accum, max_length=cfg.max_len, seed=cfg.seed, data_seed=cfg.seed,
        logging_steps=1, save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2,
        eval_strategy="epoch" if held else "no", report_to=[], use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=True, include_num_input_tokens_seen="non_padding", log_level="error",
    )
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.targets),
                      task_type=TaskType.CAUSAL_LM)
    report = progress_callback(progress)
    run.start()
    trainer = quiet(DPOTrainer(model=hf_model, args=args, train_dataset=_conversational(train),
                               eval_dataset=_conversational(held) if held else None, processing_class=tok,
                               peft_config=lora, callbacks=[report]))
    checkpoint = run.last_checkpoint() if resume else None
    t0 = time.monotonic()
    out = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.monotonic() - t0
    rss_train = peak_rss()  # before the merge and export, which need a second copy of the weights
    metrics = trainer.evaluate() if held else {}
    extra = {
        "train_rows": len(train), "eval_rows": len(held), "skipped_rows": len(rows.skipped),
        "train_loss": loss_or_none(out.training_loss), "eval_loss_before": math.log(2) if held else None,  # the adapter starts at zero: policy = reference
        "eval_loss_after": loss_or_none(metrics.get("eval_loss")),
        "eval_reward_accuracy": loss_or_none(metrics.get("eval_rewards/accuracies")),
        "eval_reward_margin": loss_or_none(metrics.get("eval_rewards/margins")),
        "data": rows.path, "beta": cfg.beta,
        **run_figures(trainer, report, seconds=seconds, checkpoint=checkpoint, rss_libs=rss_libs, rss_train=rss_train),
    }
    return finish(run, peft_model=trainer.model, tokenizer=tok, base=base, method="dpo", quant=quantization,
                  export=export, extra=extra, report=progress)
