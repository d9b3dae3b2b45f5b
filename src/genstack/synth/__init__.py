"""Synthetic data from the user's own corpus: checked question–answer sets (:func:`synth_qa`) for
``genstack eval rag`` and for tuning, and checked labelled examples for a classic task (:func:`synth_task`).

Names load on first use."""

from .._lazy import lazy_names

_LAZY = {"synth_qa": "qa", "SynthItem": "qa", "SynthReport": "qa", "qa_messages": "qa", "write_jsonl": "qa",
         "KINDS": "qa", "FILTERS": "qa", "synth_task": "task", "TaskItem": "task",
         "TASK_FILTERS": "task", "synth_extract": "extract", "ExtractItem": "extract", "EXTRACT_FILTERS": "extract"}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
