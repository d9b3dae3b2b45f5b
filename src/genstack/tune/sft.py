"""Supervised fine-tuning on CPU: PEFT (LoRA, or soft-prompt tuning) and transformers' Trainer.

genstack writes no training loop: it tokenizes with the model's own chat template, masks the loss
to the assistant tokens (:func:`genstack.tune.data.mask_assistant`), holds out a split for an eval
loss, and hands the rest to ``transformers.Trainer``, which owns optimisation, checkpoints and
resuming (RNG, optimizer and scheduler state included, so a resumed run reaches the same loss).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..errors import InvalidParameter
from .data import IGNORE, load_sft_rows, mask_assistant
from .run import (Progress, RunFolder, TuneResult, check_common, finish, loss_or_none, peak_rss, progress_callback,
                  quiet, run_figures)

__all__ = ["SFTConfig", "sft", "split_rows", "collate"]

METHODS = ("lora", "prompt-tuning")
#: the modules LoRA adapts by default (what ``genstack models memory --training lora`` assumes)
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class SFTConfig:
    """The knobs of ``genstack tune sft``, with CPU-friendly defaults for a 135M model."""

    method: str = "lora"
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    targets: tuple[str, ...] = DEFAULT_TARGETS
    virtual_tokens: int = 16  # prompt tuning: soft-prompt length
    lr: float | None = None  # None: 2e-4 for LoRA, 3e-2 for prompt tuning
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    batch: int = 4
    grad_accum: int = 1
    max_len: int = 512
    seed: int = 0
    eval_fraction: float = 0.1
    save_steps: int = 50
    warmup_ratio: float = 0.0  # a fraction of the steps (transformers' warmup_steps < 1)

    def check(self) -> None:
        if self.method not in METHODS:
            raise InvalidParameter(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        check_common(self, ("rank", "batch", "grad_accum", "max_len", "save_steps", "virtual_tokens"))
        if self.max_len < 16:
            raise InvalidParameter(f"max-len must be at least 16 tokens, got {self.max_len}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise InvalidParameter("targets must name at least one module (e.g. q_proj,v_proj)")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.method == "lora" else 3e-2)


def split_rows(rows: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held-out): a seeded shuffle; at least one held-out row from 4 rows up (none below)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = 0 if fraction == 0 or len(rows) < 4 else max(1, round(len(rows) * fraction))
    held = sorted(order[:n_eval])
    keep = sorted(order[n_eval:])
    return [rows[i] for i in keep], [rows[i] for i in held]


def collate(pad_id: int):
    """Right-pad a batch: ids with ``pad_id``, labels with IGNORE, attention 0."""
    import torch

    def fn(features):
        n = max(len(f["input_ids"]) for f in features)
        out = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            pad = n - len(f["input_ids"])
            out["input_ids"].append(f["input_ids"] + [pad_id] * pad)
            out["attention_mask"].append(f["attention_mask"] + [0] * pad)
            out["labels"].append(f["labels"] + [IGNORE] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}

    return fn


def _encode(tokenizer, conversations, max_len: int) -> tuple[list[dict[str, list[int]]], int]:
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidParameter("the model has no chat template, so chat rows cannot be rendered for it")
    out, empty = [], 0
    for msgs in conversations:
        enc = mask_assistant(tokenizer, msgs, max_len)
        if all(x == IGNORE for x in enc["labels"]):
            empty += 1  # the answer starts beyond max_len: nothing to learn
            continue
        out.append(enc)
    return out, empty


def _peft_config(cfg: SFTConfig):
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType

    if cfg.method == "lora":
        return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=list(cfg.targets), task_type=TaskType.CAUSAL_LM)
    return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=cfg.virtual_tokens,
                              prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB)


def training_args(run: RunFolder, cfg: SFTConfig, has_eval: bool, **more: Any):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(run.checkpoints), per_device_train_batch_size=cfg.batch,
        per_device_eval_batch_size=cfg.batch, gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio, seed=cfg.seed, data_seed=cfg.seed, logging_steps=1,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2,
        eval_strategy="epoch" if has_eval else "no", report_to=[], use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True, include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False, log_level="error", **more,
    )


def sft(
    data: str | Path,
    *,
    output: str,
    model: str | None = None,
    config: SFTConfig | None = None,
    quantization: str = "q8_0",
    export: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Fine-tune ``model`` (default: the default chat model) on the conversations in ``data`` and
    register the result as the local model ``output``.

    LoRA results are merged, exported to GGUF and quantized (``quantization``: q8_0, q4_k_m or
    f16), and the adapter is also written as a GGUF llama.cpp applies at load time. A soft prompt
    (``prompt-tuning``) is saved as its vectors and runs on the base's GGUF, decoded before every
    prompt (:mod:`genstack.models.soft_prompt`).
    """
    settings = settings or load_settings()
    cfg = config or SFTConfig()
    cfg.check()
    from ..models.requantize import QUANT_TYPES
    from ..models.tuned import check_name

    check_name(output)
    if quantization not in QUANT_TYPES:
        raise InvalidParameter(f"quantization must be one of {', '.join(QUANT_TYPES)}, got {quantization!r}")
    rows = load_sft_rows(data)
    from .base import load_base, require, resolve_base

    require("torch", "transformers", "peft", "gguf")

    base = resolve_base(model or settings.default_model, settings)
    if export and cfg.method == "lora" and base.gguf is not None:
        from .export import check_exportable

        check_exportable(base.architecture)
    settings_used = {**cfg.__dict__, "targets": list(cfg.targets)}
    run = RunFolder(output, settings, resume=resume, overwrite=overwrite,
                    config={"kind": "sft", "base_sha256": base.sha256, "base": base.name, **settings_used},
                    rows=rows.rows)
    say = progress or (lambda e: None)
    say({"message": rows.summary()})
    rss_libs = peak_rss()  # the interpreter and libraries, before the weights
    hf_model, tok = load_base(base, settings)
    train_rows, eval_rows = split_rows(rows.rows, cfg.eval_fraction, cfg.seed)
    train, cut = _encode(tok, train_rows, cfg.max_len)
    held, _ = _encode(tok, eval_rows, cfg.max_len)
    if not train:
        raise InvalidParameter(f"no training row has an answer within max-len {cfg.max_len} tokens")
    if cut:
        say({"message": f"{cut} rows skipped: their answer starts after max-len {cfg.max_len} tokens"})

    from peft import get_peft_model
    from transformers import Trainer, set_seed

    set_seed(cfg.seed)  # the adapter's initial weights come from the seed too, not the process's RNG
    peft_model = get_peft_model(hf_model, _peft_config(cfg))
    report = progress_callback(progress)
    run.start()
    trainer = quiet(Trainer(model=peft_model, args=training_args(run, cfg, bool(held)),
                            train_dataset=train, eval_dataset=held or None,
                            data_collator=collate(tok.pad_token_id), callbacks=[report]))
    if held and "eval_loss_before" not in run.state:
        with peft_model.disable_adapter():
            run.state["eval_loss_before"] = trainer.evaluate()["eval_loss"]
        run.save()
    checkpoint = run.last_checkpoint() if resume else None
    if resume and checkpoint is None:
        say({"message": "no complete checkpoint yet: starting from the beginning"})
    t0 = time.monotonic()
    out = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.monotonic() - t0
    rss_train = peak_rss()  # before the merge and export, which need a second copy of the weights
    after = trainer.evaluate()["eval_loss"] if held else None
    extra = {
        "train_rows": len(train), "eval_rows": len(held), "skipped_rows": len(rows.skipped),
        "train_loss": loss_or_none(out.training_loss), "final_loss": _last_loss(report.history),
        "eval_loss_before": loss_or_none(run.state.get("eval_loss_before")), "eval_loss_after": loss_or_none(after),
        "data": str(data),
        **run_figures(trainer, report, seconds=seconds, checkpoint=checkpoint, rss_libs=rss_libs, rss_train=rss_train),
    }
    return finish(run, peft_model=peft_model, tokenizer=tok, base=base, method=cfg.method, quant=quantization,
                  export=export, extra=extra, report=progress)


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    for e in reversed(history):
        if "loss" in e:
            return float(e["loss"])
    return None
