"""What ``tune sft`` and ``tune dpo`` share: the run folder, resuming, progress, and the outputs.

A run lives in ``<data dir>/models/tuned/NAME/``: ``run.json`` (the settings and data it started
with), ``checkpoints/`` (transformers' Trainer checkpoints: adapter, optimizer, scheduler, RNG
states), then the outputs and, written last, the manifest that makes NAME a model. ``--resume``
continues from the newest complete checkpoint and refuses if the data or settings changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Settings
from ..errors import GenstackError, InvalidParameter
from ..models.tuned import MANIFEST, tuned_dir, write_manifest

__all__ = ["TuneResult", "RunFolder", "progress_callback", "quiet", "peak_rss", "finish"]

Progress = Callable[[dict[str, Any]], None]


@dataclass
class TuneResult:
    """What a tune did: the model's name and folder, its manifest, and the losses."""

    name: str
    dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        """The name to pass as ``--model`` (None when the tune left only a PEFT adapter)."""
        return self.name if self.manifest.get("model") or self.manifest.get("soft_prompt") else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dir": str(self.dir), **self.manifest}


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def _sha256_text(rows: Any) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RunFolder:
    """The folder of one tuning run, with the rules for starting, resuming and overwriting it."""

    def __init__(self, name: str, settings: Settings, *, resume: bool, overwrite: bool, config: dict[str, Any],
                 rows: Any):
        if resume and overwrite:
            raise InvalidParameter("--resume and --overwrite cannot be combined")
        self.name = name
        self.dir = tuned_dir(name, settings)
        self.checkpoints = self.dir / "checkpoints"
        self.config = {**config, "data_sha256": _sha256_text(rows)}
        run_file = self.dir / "run.json"
        self.resume, self.overwrite = resume, overwrite
        self.run_file = self.dir / "run.json"
        if (self.dir / MANIFEST).is_file() and not overwrite:
            raise InvalidParameter(f"a tuned model named {name!r} exists ({self.dir}); pass --overwrite to replace it")
        if resume:
            if not self.run_file.is_file():
                raise InvalidParameter(f"nothing to resume: no unfinished run named {name!r} in {self.dir}")
            started = json.loads(self.run_file.read_text())
            changed = sorted(k for k in set(started["config"]) | set(self.config)
                             if started["config"].get(k) != self.config.get(k))
            if changed:
                raise InvalidParameter(
                    f"cannot resume {name!r}: {', '.join(changed)} differ from the interrupted run's; "
                    "give the same data and settings, or --overwrite to start again"
                )
            self.state = started
        else:
            if not overwrite and self.dir.exists() and any(self.dir.iterdir()):
                raise InvalidParameter(
                    f"an unfinished run named {name!r} is in {self.dir}: --resume to continue it, --overwrite to start again"
                )
            self.state = {"config": self.config, "started": time.time()}

    def start(self) -> None:
        """Create (or, with overwrite, empty) the folder: called once the model has loaded, so a
        run that fails before training leaves nothing behind."""
        if self.resume:
            return
        if self.overwrite and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.save()

    def save(self) -> None:
        tmp = self.dir / "run.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(tmp, self.run_file)

    def last_checkpoint(self) -> str | None:
        """The newest checkpoint the Trainer finished writing (its trainer_state.json is written last)."""
        if not self.checkpoints.is_dir():
            return None
        done = [p for p in self.checkpoints.glob("checkpoint-*")
                if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
        return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def progress_callback(report: Progress | None):
    """A transformers TrainerCallback that reports step, loss, tokens/s and ETA to ``report``."""
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def __init__(self):
            self.t0 = None
            self.tokens0 = 0
            self.step0 = 0
            self.history: list[dict[str, Any]] = []

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.monotonic()
            self.tokens0 = state.num_input_tokens_seen
            self.step0 = state.global_step

        def on_log(self, args, state, control, logs=None, **kw):
            logs = dict(logs or {})
            elapsed = time.monotonic() - (self.t0 or time.monotonic())
            done = state.global_step - self.step0
            rate = (state.num_input_tokens_seen - self.tokens0) / elapsed if elapsed > 0 else 0.0
            eta = elapsed / done * (state.max_steps - state.global_step) if done else None
            event = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
                     "tokens": state.num_input_tokens_seen, "tokens_per_second": rate, "eta_seconds": eta,
                     **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
            self.history.append(event)
            if report is not None:
                report(event)

    return _Report()


def quiet(trainer) -> Any:
    """Drop the Trainer's own printing of every log dict (genstack reports progress itself)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def finish(run: RunFolder, *, peft_model: Any, tokenizer: Any, base: Any, method: str, quant: str, export: bool,
           extra: dict[str, Any], report: Progress | None) -> TuneResult:
    """Save the adapter; for LoRA, merge, export to GGUF and quantize, and write the adapter GGUF;
    then the manifest, which makes the name a model."""
    from ..models.requantize import QUANT_TYPES, quantize_file
    from .convert import MISSING, convert_adapter, convert_folder, converter_dir
    from .export import check_exportable, export_lora_gguf, export_merged_gguf

    if quant not in QUANT_TYPES:
        raise InvalidParameter(f"quantization must be one of {', '.join(QUANT_TYPES)}, got {quant!r}")
    say = (lambda msg: report({"message": msg})) if report else (lambda msg: None)
    adapter_dir = run.dir / "adapter"
    peft_model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    from ..models.registry import REGISTRY

    spec = REGISTRY.get(base.name)
    manifest: dict[str, Any] = {
        "name": run.name, "base": base.name, "base_sha256": base.sha256, "method": method,
        "kind": spec.kind if spec is not None else "chat",  # a tuned base (completion) model stays one
        "adapter": "adapter", "model": None, "lora_gguf": None, "config": run.config,
        "created": time.time(), **extra,
    }
    if method == "prompt-tuning":
        return _finish_soft_prompt(run, peft_model, base, manifest, quant=quant, export=export, say=say)
    if not export:
        manifest["no_gguf"] = "it was tuned with --no-export; tune again without it"
    elif base.gguf is None and converter_dir() is None:
        manifest["no_gguf"] = MISSING
    if export and method in ("lora", "dpo") and (base.gguf is not None or converter_dir() is not None):
        f16 = run.dir / "model-f16.gguf"
        lora_gguf: str | None = "adapter.gguf"
        if base.gguf is not None:
            check_exportable(base.architecture)
            cfg = peft_model.base_model.model.config
            lora_cfg = next(iter(peft_model.peft_config.values()))
            from peft import get_peft_model_state_dict

            say("writing the adapter as GGUF (llama.cpp applies it at load time)")
            export_lora_gguf(get_peft_model_state_dict(peft_model), cfg, lora_cfg.lora_alpha, base.gguf,
                             run.dir / "adapter.gguf")
            say("merging the adapter and exporting the model to GGUF")
            merged = peft_model.merge_and_unload()
            export_merged_gguf(merged.state_dict(), cfg, base.gguf, f16)
        else:  # a safetensors folder: llama.cpp's own converters
            say("writing the adapter as GGUF with llama.cpp's convert_lora_to_gguf.py")
            try:
                convert_adapter(adapter_dir, base.folder, run.dir / "adapter.gguf")
            except GenstackError as exc:  # the merged model below is still usable
                lora_gguf = None
                manifest["no_lora_gguf"] = str(exc)
            say("merging the adapter and converting the model with llama.cpp's convert_hf_to_gguf.py")
            merged_dir = run.dir / "merged"
            peft_model.merge_and_unload().save_pretrained(str(merged_dir))
            tokenizer.save_pretrained(str(merged_dir))
            try:
                convert_folder(merged_dir, f16)
            finally:
                shutil.rmtree(merged_dir, ignore_errors=True)
        if quant == "f16":
            final = run.dir / "model.gguf"
            f16.replace(final)
        else:
            say(f"quantizing to {quant.upper()} with llama.cpp")
            final = quantize_file(f16, run.dir / "model.gguf", quant)
            f16.unlink()
        from .._files import sha256_file

        manifest.update(model=final.name, sha256=sha256_file(final), quantization=quant.upper(),
                        lora_gguf=lora_gguf)
    manifest["peak_rss_bytes"] = peak_rss()
    write_manifest(run.dir, manifest)
    return TuneResult(run.name, run.dir, manifest)


def _finish_soft_prompt(run: RunFolder, peft_model: Any, base: Any, manifest: dict[str, Any], *, quant: str,
                       export: bool, say: Callable[[str], None]) -> TuneResult:
    """A soft prompt runs on its base's GGUF (genstack.models.soft_prompt): save the learned
    vectors; a safetensors-folder base is converted to a GGUF once, here, for it to run on."""
    import numpy as np

    from .._files import sha256_file
    from ..models.requantize import quantize_file
    from .convert import MISSING, convert_folder, converter_dir

    vectors = peft_model.get_prompt_embedding_to_save(adapter_name="default").detach().float().cpu().numpy()
    np.save(run.dir / "soft-prompt.npy", vectors)
    manifest.update(soft_prompt="soft-prompt.npy", virtual_tokens=int(vectors.shape[0]))
    if base.gguf is not None:
        manifest["quantization"] = _quant_of(base.gguf)
    elif not export:
        manifest.update(soft_prompt=None, no_gguf="it was tuned with --no-export on a safetensors folder; tune "
                                                  "again without it")
    elif converter_dir() is None:
        manifest.update(soft_prompt=None, no_gguf=MISSING)
    else:
        say("converting the base model with llama.cpp's convert_hf_to_gguf.py (the soft prompt runs on it)")
        f16 = run.dir / "model-f16.gguf"
        convert_folder(base.folder, f16)
        if quant == "f16":
            final = f16.replace(run.dir / "model.gguf")
        else:
            say(f"quantizing to {quant.upper()} with llama.cpp")
            final = quantize_file(f16, run.dir / "model.gguf", quant)
            f16.unlink()
        manifest.update(model=final.name, sha256=sha256_file(final), quantization=quant.upper())
    manifest["peak_rss_bytes"] = peak_rss()
    write_manifest(run.dir, manifest)
    return TuneResult(run.name, run.dir, manifest)


def _quant_of(path: Path) -> str:
    from ..models.formats import read_gguf

    return read_gguf(path).quantization


def check_common(cfg: Any, ints: tuple[str, ...]) -> None:
    """The checks ``tune sft`` and ``tune dpo`` share: ``ints`` are positive integers, and epochs (or
    max_steps), eval_fraction and lr are in range; names are given as their CLI options."""
    for name in ints:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidParameter(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")
    if not (cfg.epochs > 0 or cfg.max_steps > 0):
        raise InvalidParameter("epochs must be positive (or give max-steps)")
    if not 0 <= cfg.eval_fraction < 0.5:
        raise InvalidParameter(f"eval-fraction must be in [0, 0.5), got {cfg.eval_fraction}")
    if cfg.lr is not None and not cfg.lr > 0:
        raise InvalidParameter(f"lr must be positive, got {cfg.lr}")


def run_figures(trainer: Any, report: Any, *, seconds: float, checkpoint: str | None, rss_libs: int,
                rss_train: int) -> dict[str, Any]:
    """What every tune's manifest records of the run itself: steps, tokens, time, speed, memory."""
    return {
        "steps": trainer.state.global_step, "tokens": trainer.state.num_input_tokens_seen,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(report.history[-1]["tokens_per_second"], 1) if report.history else None,
        "resumed_from": checkpoint, "rss_before_load_bytes": rss_libs, "train_peak_rss_bytes": rss_train,
    }


def loss_or_none(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
