"""The model to tune, as torch weights: from a GGUF genstack runs, or a safetensors folder.

A GGUF is dequantized by transformers' own GGUF loader (with the ``gguf`` package) once and kept
as a safetensors folder in the cache, named by the GGUF's sha256, so a second tune loads in
seconds. Nothing is downloaded: the weights are the file genstack already has.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import GenstackError, InvalidParameter

__all__ = ["BaseModel", "resolve_base", "load_base", "require", "gguf_reader"]


def require(*modules: str) -> None:
    """Tuning's libraries are the ``tune`` extra; say so instead of an ImportError."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise GenstackError(f"tuning needs {', '.join(missing)}: pip install 'genstack[tune]'")


@dataclass(frozen=True)
class BaseModel:
    name: str  # what the user gave
    gguf: Path | None  # the GGUF the weights come from (None for a safetensors folder)
    folder: Path | None  # a safetensors folder given directly
    sha256: str  # of the GGUF, or "" for a folder
    architecture: str


def resolve_base(model: str, settings: Settings) -> BaseModel:
    """A registry name, a tuned model's name, a ``.gguf`` path or a transformers safetensors folder."""
    from ..models.formats import read_gguf
    from ..models.registry import REGISTRY, resolve_model_file, verify_sha256

    p = Path(model).expanduser()
    if model not in REGISTRY and p.is_dir():
        if not (p / "config.json").is_file() or not any(p.glob("*.safetensors")):
            raise InvalidParameter(f"{p} is not a transformers model folder (config.json and *.safetensors)")
        import json

        arch = json.loads((p / "config.json").read_text()).get("model_type", "unknown")
        return BaseModel(model, None, p, "", arch)
    spec, path = resolve_model_file(model, settings)
    if spec is not None and spec.kind == "embedding":
        raise InvalidParameter(f"{model!r} is an embedding model; tune a generator")
    digest = verify_sha256(path, None, settings.cache_dir / "model-hashes.json")
    return BaseModel(model, path, None, digest, read_gguf(path).architecture or "unknown")


def _threads(settings: Settings) -> None:
    import torch

    torch.set_num_threads(max(1, settings.threads()[1]))


def load_base(base: BaseModel, settings: Settings) -> tuple[Any, Any]:
    """(the transformers causal LM in float32, its tokenizer)."""
    require("torch", "transformers", "peft", "gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    _threads(settings)
    folder = base.folder or _converted(base, settings)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def gguf_reader(path: Path):
    """A read-only ``gguf.GGUFReader`` of ``path``, kept while the file is unchanged: gguf-py maps the
    vocabulary element by element (9 s for Gemma 3's 262k tokens), and a tune reads its base GGUF
    several times (the conversion for torch, then the export)."""
    st = path.stat()
    return _cached_reader(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=2)
def _cached_reader(path: str, mtime_ns: int, size: int):
    from gguf.gguf_reader import GGUFReader  # the class itself, also while _converted redirects gguf.GGUFReader

    return GGUFReader(path)


def _converted(base: BaseModel, settings: Settings) -> Path:
    """The GGUF dequantized into a safetensors folder, made once (atomically) and reused."""
    target = settings.cache_dir / "torch-weights" / base.sha256[:16]
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert base.gguf is not None
    import tqdm.auto

    import gguf

    # transformers parses the GGUF once for the tokenizer, once for the config and once for the
    # weights: the three (and the export that follows) share gguf_reader's one read-only reader
    real_reader = gguf.GGUFReader
    gguf.GGUFReader = lambda path, *a, **k: gguf_reader(Path(path)) if not a and not k else real_reader(path, *a, **k)
    try:
        tqdm_class = tqdm.auto.tqdm  # transformers' GGUF loader draws a bar per tensor; keep quiet
        tqdm.auto.tqdm = lambda it=None, *a, **k: it  # type: ignore[assignment]
        import transformers.modeling_gguf_pytorch_utils as gguf_utils

        gguf_utils.tqdm = tqdm.auto.tqdm
        tok = AutoTokenizer.from_pretrained(base.gguf.parent, gguf_file=base.gguf.name)
        model = AutoModelForCausalLM.from_pretrained(base.gguf.parent, gguf_file=base.gguf.name, dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise GenstackError(
            f"transformers cannot load {base.gguf.name} ({base.architecture}) for training: {exc}"
        ) from None
    finally:
        tqdm.auto.tqdm = tqdm_class
        gguf_utils.tqdm = tqdm_class
        gguf.GGUFReader = real_reader
    # the weights are dequantized float32 now: save them as a plain model, not a "GGUF-quantized" one
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target
