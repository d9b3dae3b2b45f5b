"""Tuned weights back into GGUF, for llama.cpp: the merged model, and the LoRA adapter on its own.

The merged model is written with the ``gguf`` package, using the base GGUF as the template: every
metadata key (tokenizer, chat template, rope settings) and the tensor list are copied from it, and
each tensor's data comes from the tuned torch weights, mapped by ``gguf``'s own name table and
with the query/key rows permuted back into llama.cpp's rope layout (the inverse of what
transformers' GGUF loader undoes). Matrices are written as F16, norms as F32; llama.cpp's
quantizer (through llama-cpp-python) then makes the Q8_0 or Q4_K_M file. A round-trip test checks
that an un-tuned export gives the base GGUF's logits.

The adapter GGUF is the format llama.cpp's ``convert_lora_to_gguf.py`` writes
(``general.type = adapter``, ``adapter.lora.alpha``, ``<tensor>.lora_a`` / ``.lora_b``), which
llama.cpp applies at load time (``Llama(lora_path=...)``) without a merge.

Each exported architecture has a profile saying how its GGUF stores what transformers holds:
llama (SmolLM2, Llama, Mistral-style) permutes the query/key rows for llama.cpp's rope; Gemma 3
stores every RMSNorm weight as ``1 + w`` (transformers' GGUF loader subtracts the 1, so the
export adds it back) and keeps its rows in order. Any other architecture is refused: its GGUF may
store other tensors transformed, and a wrong export would load and answer badly rather than fail.
Their adapters are still saved. The round-trip tests check each profile: an un-tuned export gives
llama.cpp's own F16 re-encoding's logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import GenstackError
from .base import gguf_reader

__all__ = ["EXPORTABLE", "check_exportable", "export_merged_gguf", "export_lora_gguf"]


@dataclass(frozen=True)
class _Profile:
    gguf_arch: str  # gguf.MODEL_ARCH member
    permute_qk: bool  # llama.cpp's rope row order for the query/key projections
    norm_shift: float  # added to every norm weight on the way out


_PROFILES = {
    "llama": _Profile("LLAMA", permute_qk=True, norm_shift=0.0),
    "gemma3": _Profile("GEMMA3", permute_qk=False, norm_shift=1.0),
}
EXPORTABLE = tuple(_PROFILES)


def check_exportable(architecture: str) -> _Profile:
    if architecture not in _PROFILES:
        raise GenstackError(
            f"GGUF export supports {', '.join(EXPORTABLE)}-architecture models, not {architecture!r}; "
            "tune with --no-export to keep only the adapter"
        )
    return _PROFILES[architecture]


def _permute(w, n_head: int, n_head_kv: int | None = None):
    """llama.cpp's rope row order for q/k (``convert_hf_to_gguf.py``'s LlamaModel.permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_names(names, n_blocks: int, profile: _Profile) -> dict[str, str]:
    import gguf

    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH[profile.gguf_arch], n_blocks)
    out = {}
    for hf in names:
        g = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if g is not None:
            out[hf] = g
    return out


def _copy_metadata(reader, writer, file_type: int | None) -> None:
    import gguf

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name in (gguf.Keys.General.FILE_TYPE, gguf.Keys.General.QUANTIZATION_VERSION):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    if file_type is not None:
        writer.add_file_type(file_type)


def export_merged_gguf(state: Mapping[str, Any], config: Any, template: Path, out: Path) -> Path:
    """Write the merged model (a transformers state dict) as an F16 GGUF shaped like ``template``."""
    import gguf
    import numpy as np

    reader = gguf_reader(Path(template))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    profile = check_exportable(arch)
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    names = _gguf_names(state, config.num_hidden_layers, profile)
    tensors: dict[str, Any] = {}
    for hf, g in names.items():
        w = state[hf].detach().to("cpu").float().numpy()
        if profile.permute_qk and hf.endswith("q_proj.weight"):
            w = _permute(w, n_head, n_head)
        elif profile.permute_qk and hf.endswith("k_proj.weight"):
            w = _permute(w, n_head, n_kv)
        elif profile.norm_shift and hf.endswith("norm.weight"):
            w = w + profile.norm_shift
        tensors.setdefault(g, w)  # a tied lm_head maps to output.weight, which the template may lack
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    writer = gguf.GGUFWriter(str(tmp), arch)
    _copy_metadata(reader, writer, gguf.LlamaFileType.MOSTLY_F16)
    for t in reader.tensors:
        if t.name not in tensors:
            raise GenstackError(f"the tuned model has no weight for the base GGUF's tensor {t.name}")
        w = tensors[t.name]
        expected = tuple(int(d) for d in reversed(t.shape))  # GGUF lists dims innermost first
        if tuple(w.shape) != expected:
            raise GenstackError(f"tensor {t.name}: tuned shape {tuple(w.shape)} is not the base's {expected}")
        writer.add_tensor(t.name, np.ascontiguousarray(w.astype(np.float16 if w.ndim == 2 else np.float32)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out


def export_lora_gguf(adapter_state: Mapping[str, Any], config: Any, alpha: float, template: Path, out: Path) -> Path:
    """Write a PEFT LoRA adapter's A/B matrices as a llama.cpp adapter GGUF."""
    import gguf
    import numpy as np

    from ..models.formats import read_gguf

    # only the architecture is needed: genstack's header reader skips the vocabulary, which
    # gguf.GGUFReader maps element by element (9 s for Gemma 3's 262k tokens)
    arch = read_gguf(template).architecture
    profile = check_exportable(arch)
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    pairs: dict[str, dict[str, Any]] = {}
    for key, t in adapter_state.items():
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                base = key.split(marker)[0].removeprefix("base_model.model.") + ".weight"
                pairs.setdefault(base, {})[part] = t.detach().to("cpu").float().numpy()
    if not pairs:
        raise GenstackError("the adapter has no LoRA matrices to export")
    names = _gguf_names(pairs, config.num_hidden_layers, profile)
    tmp = out.with_name(f".{out.name}.partial")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for hf, ab in sorted(pairs.items()):
        if hf not in names:
            raise GenstackError(f"no GGUF tensor for the adapted weight {hf}")
        a, b = ab["lora_A"], ab["lora_B"]  # (r, in) and (out, r): llama.cpp's lora_a / lora_b as stored
        if profile.permute_qk and hf.endswith("q_proj.weight"):
            b = _permute(b, n_head, n_head)
        elif profile.permute_qk and hf.endswith("k_proj.weight"):
            b = _permute(b, n_head, n_kv)
        writer.add_tensor(f"{names[hf]}.lora_a", np.ascontiguousarray(a.astype(np.float32)))
        writer.add_tensor(f"{names[hf]}.lora_b", np.ascontiguousarray(b.astype(np.float32)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
