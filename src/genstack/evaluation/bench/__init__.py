"""Multiple-choice and cloze benchmarks scored by log-likelihood (lm-evaluation-harness definitions)."""

from .common import TASKS, Example, Task
from .file_task import file_task
from .harness import evaluate_task, get_task, mc_scores, summary_markdown, write_outputs

__all__ = ["TASKS", "Task", "Example", "file_task", "evaluate_task", "get_task", "mc_scores", "summary_markdown",
           "write_outputs"]
