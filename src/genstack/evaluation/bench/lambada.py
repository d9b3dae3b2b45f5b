"""LAMBADA (OpenAI version): predict the last word of a passage.

Scored as in lm-evaluation-harness's ``lambada_openai``: the continuation is
`` {word}``; ``acc`` is whether greedy decoding would produce every one of its
tokens, and perplexity is exp(-mean log-likelihood of the continuations).
"""

from .common import Example, Task, read_jsonl, register


def load(path):
    return [Example(r["context"], [" " + r["continuation"].strip()], 0, target=r["continuation"].strip())
            for r in read_jsonl(path)]


TASK = register(Task("lambada", "cloze", load, "lambada_openai.jsonl", prompt=lambda ex: ex.context,
                     answer=lambda ex: ex.target or "", fewshot_separator="\n\n",
                     description="LAMBADA (OpenAI): last-word accuracy and perplexity"))
