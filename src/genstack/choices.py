"""Named choices that several layers accept, defined once (this module imports nothing).

- ``RETRIEVAL_MODES``: how chunks are found: ``dense`` (cosine), ``bm25`` (keywords), ``hybrid`` (both, fused by RRF).
- ``SOURCE_MODES``: what happens to sentences of retrieved sources that give orders to the model
  (OWASP LLM01, indirect): ``strip`` removes them from what the model sees, ``flag`` only reports them,
  ``off`` does neither.
"""

RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
SOURCE_MODES = ("strip", "flag", "off")
