"""Make the small model better at the user's job: fine-tune it on their data, on CPU.

``genstack tune sft`` (supervised, LoRA or soft prompts), ``tune dpo`` (preference pairs) and
``tune report`` (the same evaluation on the base and the tuned model). Results are local models:
``--model NAME`` anywhere. The libraries (torch, transformers, peft, trl, gguf) are the ``tune``
extra and load only when a tune runs.
"""

from __future__ import annotations

from .._lazy import lazy_names

# the functions are genstack.tune_sft and genstack.tune_dpo (here they would collide with their modules)
__all__ = ["SFTConfig", "DPOConfig", "TuneResult", "tune_report", "load_sft_rows", "load_pairs", "arena_pairs"]

__getattr__, __dir__ = lazy_names(__name__, {
    "SFTConfig": "sft", "DPOConfig": "dpo", "TuneResult": "run",
    "tune_report": "report", "load_sft_rows": "data", "load_pairs": "data", "arena_pairs": "data",
})
