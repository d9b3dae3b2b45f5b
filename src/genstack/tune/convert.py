"""A tuned model whose base is a safetensors folder, into GGUF: llama.cpp's own converters.

A base given as a transformers folder has no GGUF to serve as the export's template (see
:mod:`genstack.tune.export`), so the merged model is saved as a folder and converted by
``convert_hf_to_gguf.py``, and the adapter by ``convert_lora_to_gguf.py``: llama.cpp's scripts,
which know every architecture llama.cpp runs. They are not on PyPI as a package; they ship inside
llama-cpp-python's source distribution (``vendor/llama.cpp``), the same llama.cpp as the installed
wheel. ``make install`` unpacks them (with their ``gguf-py`` and ``conversion`` package) into
``<venv>/llama.cpp-convert``; elsewhere point ``GENSTACK_LLAMA_CONVERT`` at a folder holding
``convert_hf_to_gguf.py``. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import GenstackError

__all__ = ["converter_dir", "convert_folder", "convert_adapter", "MISSING"]

MISSING = ("llama.cpp's converter (convert_hf_to_gguf.py) is not installed: run `make install`, or set "
           "GENSTACK_LLAMA_CONVERT to a folder holding it (vendor/llama.cpp of llama-cpp-python's sdist)")


def converter_dir() -> Path | None:
    """The folder holding llama.cpp's converter scripts, or None."""
    given = os.environ.get("GENSTACK_LLAMA_CONVERT")
    folder = Path(given).expanduser() if given else Path(sys.prefix) / "llama.cpp-convert"
    if folder.is_file():
        folder = folder.parent
    return folder if (folder / "convert_hf_to_gguf.py").is_file() else None


def _run(script: str, args: list[str], what: str) -> None:
    folder = converter_dir()
    if folder is None:
        raise GenstackError(MISSING)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder / "gguf-py"), str(folder)]))
    env.pop("NO_LOCAL_GGUF", None)
    proc = subprocess.run([sys.executable, str(folder / script), *args], capture_output=True, text=True, env=env,
                          cwd=folder)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise GenstackError(f"{what} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")


def convert_folder(folder: Path, out: Path, outtype: str = "f16") -> Path:
    """``folder`` (a transformers model with its tokenizer) as a GGUF file ``out``."""
    _run("convert_hf_to_gguf.py", [str(folder.resolve()), "--outtype", outtype, "--outfile", str(out.resolve())],
         "llama.cpp's convert_hf_to_gguf.py")
    return out


def convert_adapter(adapter: Path, base: Path, out: Path, outtype: str = "f16") -> Path:
    """The PEFT LoRA adapter folder ``adapter`` of the base folder ``base`` as a GGUF adapter."""
    _run("convert_lora_to_gguf.py", [str(adapter.resolve()), "--base", str(base.resolve()), "--outtype", outtype,
          "--outfile", str(out.resolve())],
         "llama.cpp's convert_lora_to_gguf.py")
    return out
