"""Named choices that several layers accept, defined once (this module imports nothing).

- ``RETRIEVAL_MODES``: how chunks are found: ``dense`` (cosine), ``bm25`` (keywords), ``hybrid`` (both, fused by RRF).
- ``CHUNK_SIZE``, ``CHUNK_OVERLAP``: the splitter's default chunk size and overlap, in tokens.
- ``SOURCE_MODES``: what happens to sentences of retrieved sources that give orders to the model
  (OWASP LLM01, indirect): ``strip`` removes them from what the model sees, ``flag`` only reports them,
  ``off`` does neither.
- ``REDACT_MODES``: what is redacted from user text and answers (OWASP LLM02): ``off``, ``secrets``
  (keys, tokens, passwords) or ``all`` (every PII kind).
"""

RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
SOURCE_MODES = ("strip", "flag", "off")
REDACT_MODES = ("off", "secrets", "all")

#: the splitter's defaults, in the embedder's tokens: chosen on SciFact's train queries, where 128/0
#: beat the earlier 200/32 in dense and hybrid nDCG@10 and ingested faster (benchmarks/RESULTS.md)
CHUNK_SIZE = 128
CHUNK_OVERLAP = 0
