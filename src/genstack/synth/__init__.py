"""Synthetic data from the user's own corpus: checked question–answer sets (:func:`synth_qa`) for
``genstack eval rag`` and for tuning.

Names load on first use."""

import importlib as _importlib

_LAZY = {"synth_qa": "qa", "SynthItem": "qa", "SynthReport": "qa", "qa_messages": "qa", "write_jsonl": "qa",
         "KINDS": "qa", "FILTERS": "qa"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'genstack.synth' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
