"""Read model file headers without loading weights: GGUF and safetensors only.

Pickle-based formats (.bin, .pt, .pth, .ckpt, .pkl) are refused outright:
loading them can run arbitrary code (OWASP LLM03).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import UnsupportedModelFormat

__all__ = ["GGUFInfo", "read_gguf", "read_safetensors_header", "check_format", "GGUF_FILE_TYPES"]

GGUF_MAGIC = b"GGUF"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib"}

# llama_ftype (llama.h) -> the name users know
GGUF_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}

# GGUF metadata value types
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GGUFInfo:
    path: Path
    version: int
    metadata: dict[str, Any]
    n_params: int
    n_tensors: int
    #: for arrays longer than this only the length is kept (the vocabulary, say)
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def context_length(self) -> int | None:
        v = self.arch_value("context_length")
        return int(v) if v is not None else None

    @property
    def quantization(self) -> str:
        ft = self.metadata.get("general.file_type")
        return GGUF_FILE_TYPES.get(ft, f"type {ft}") if ft is not None else "unknown"

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated file")
    return struct.unpack(fmt, data)[0]


def _read_str(f: BinaryIO) -> str:
    n = _read(f, "<Q")
    if n > 1 << 26:
        raise ValueError("string length out of range")
    data = f.read(n)
    if len(data) != n:
        raise ValueError("truncated file")
    return data.decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, vtype: int, keep_array: bool):
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == _STRING:
        return _read_str(f)
    if vtype == _ARRAY:
        etype, n = _read(f, "<I"), _read(f, "<Q")
        if n > 1 << 28:
            raise ValueError("array length out of range")
        if etype in _SCALARS and not keep_array:
            f.seek(struct.calcsize(_SCALARS[etype]) * n, 1)
            return n
        items = [_read_value(f, etype, keep_array) for _ in range(n)]
        return items if keep_array else n
    raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf(path: str | Path, *, keep_arrays_up_to: int = 64) -> GGUFInfo:
    """Parse the GGUF header: metadata and tensor shapes, not the weights."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise UnsupportedModelFormat(f"{path} is not a GGUF file (bad magic bytes)")
            version = _read(f, "<I")
            if version < 2:
                raise UnsupportedModelFormat(f"{path}: GGUF version {version} is too old (need 2 or later)")
            n_tensors, n_kv = _read(f, "<Q"), _read(f, "<Q")
            meta: dict[str, Any] = {}
            lengths: dict[str, int] = {}
            for _ in range(n_kv):
                key = _read_str(f)
                vtype = _read(f, "<I")
                if vtype == _ARRAY:
                    pos = f.tell()
                    etype, n = _read(f, "<I"), _read(f, "<Q")
                    f.seek(pos)
                    keep = n <= keep_arrays_up_to
                    value = _read_value(f, vtype, keep)
                    if not keep:
                        lengths[key] = value
                        continue
                    meta[key] = value
                else:
                    meta[key] = _read_value(f, vtype, True)
            n_params = 0
            for _ in range(n_tensors):
                _read_str(f)
                n_dims = _read(f, "<I")
                if n_dims > 8:
                    raise ValueError("tensor rank out of range")
                count = 1
                for _ in range(n_dims):
                    count *= _read(f, "<Q")
                _read(f, "<I")  # ggml type
                _read(f, "<Q")  # offset
                n_params += count
    except UnsupportedModelFormat:
        raise
    except (OSError, ValueError, struct.error) as exc:
        raise UnsupportedModelFormat(f"cannot read GGUF header of {path}: {exc}") from None
    return GGUFInfo(path, version, meta, n_params, n_tensors, lengths)


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file (tensor names, dtypes, shapes)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            n = _read(f, "<Q")
            if n > 100 * 1024 * 1024:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as exc:
        raise UnsupportedModelFormat(f"cannot read safetensors header of {path}: {exc}") from None
    if not isinstance(header, dict):
        raise UnsupportedModelFormat(f"{path}: safetensors header is not an object")
    return header


def check_format(path: str | Path) -> str:
    """Return "gguf" or "safetensors"; refuse anything else, pickle above all."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise UnsupportedModelFormat(
            f"{path.name}: pickle-based model files are never loaded (they can run code); "
            "convert it to GGUF or safetensors"
        )
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise UnsupportedModelFormat(f"cannot open {path}: {exc.strerror or exc}") from None
    if head == GGUF_MAGIC:
        return "gguf"
    if suffix == ".safetensors":
        read_safetensors_header(path)
        return "safetensors"
    raise UnsupportedModelFormat(f"{path.name}: not a GGUF or safetensors file; only those formats are loaded")
