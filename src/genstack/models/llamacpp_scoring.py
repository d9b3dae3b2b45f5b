"""How the llama.cpp model scores text: log-likelihoods of continuations (multiple-choice
benchmarks, ``score``), per-token log-probabilities of a sequence (perplexity) and of a prompt
(``echo``-style logprobs), each in batched ``llama_decode`` calls that keep logits only where
they are read.

:class:`Scoring` is a mixin of :class:`~genstack.models.llamacpp.LlamaCppModel`, apart only to keep
each file readable; it uses the model's ``llama``, ``_lock``, ``_n_ctx``, ``_llama_kwargs``,
``tokenize``, ``_wants_bos``, and the soft-prompt helpers ``_rewind`` and ``_n_soft`` (every score
is computed after the soft prompt, when there is one).
"""

from __future__ import annotations

import codecs
from contextlib import contextmanager
from typing import Sequence

from ..errors import GenstackError, InvalidParameter
from ..generation import TokenLogprob

__all__ = ["Scoring"]


class Scoring:
    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Summed log-probabilities of each continuation after ``prompt``."""
        return [lp for lp, _ in self.loglikelihood(prompt, continuations)]

    def loglikelihood(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, bool]]:
        """(summed log-probability, was every token the argmax) for each continuation.

        The prompt is evaluated once; each continuation is then fed from that
        point in one batch (the KV cache is rewound between continuations), so
        a context is shared by all its choices.
        """
        import numpy as np

        ctx_tokens = self.tokenize(prompt)
        if not ctx_tokens:
            raise InvalidParameter("the prompt is empty")
        llm = self.llama
        out: list[tuple[float, bool]] = []
        with self._lock:
            self._rewind(llm)
            if llm.n_tokens + len(ctx_tokens) > self._n_ctx:
                raise InvalidParameter("the prompt does not fit the context window")
            llm.eval(ctx_tokens)
            first = self._last_logprobs()
            base = llm.n_tokens
            n_vocab = llm.n_vocab()
            for cont in continuations:
                toks = llm.tokenize(cont.encode("utf-8"), add_bos=False, special=False)
                if not toks:
                    out.append((0.0, True))
                    continue
                if base + len(toks) > self._n_ctx:
                    raise InvalidParameter("prompt and continuation do not fit the context window")
                total = float(first[toks[0]])
                greedy = int(np.argmax(first)) == toks[0]
                if len(toks) > 1:
                    # feed all but the last token in one batch, with logits for every position
                    llm._ctx.kv_cache_seq_rm(-1, base, -1)
                    with _decoded(llm, toks[:-1], base, lambda j: True):
                        for j in range(1, len(toks)):
                            logits = _logits(llm, j - 1, n_vocab)
                            total += float(_log_softmax(logits)[toks[j]])
                            greedy = greedy and int(np.argmax(logits)) == toks[j]
                out.append((total, greedy))
            llm._ctx.kv_cache_seq_rm(-1, base, -1)
            self._rewind(llm)
        return out

    def sequence_logprobs(self, tokens: Sequence[int], score_from: int = 1) -> list[float]:
        """Log-probability of ``tokens[i]`` given ``tokens[:i]``, for i from ``score_from``.

        One fresh evaluation of the sequence (it must fit the window), in
        batches of ``n_batch``, with logits kept only where they are needed.
        """
        return [lp for lp, _ in self._scan(tokens, score_from, 0)]

    def _scan(self, tokens: Sequence[int], score_from: int, top: int) -> list[tuple[float, list[tuple[int, float]]]]:
        """(log P(tokens[i] | tokens[:i]), the ``top`` most likely (token, log-probability) there)
        for i from ``score_from``."""
        import numpy as np

        if len(tokens) + self._n_soft > self._n_ctx:
            raise InvalidParameter(f"{len(tokens)} tokens do not fit the {self._n_ctx - self._n_soft}-token window")
        llm = self.llama
        n_vocab = llm.n_vocab()
        step = int(self._llama_kwargs.get("n_batch") or 512)
        out: list[tuple[float, list[tuple[int, float]]]] = []
        with self._lock:
            at = self._rewind(llm)  # token i sits at position at + i, after the soft prompt if any
            llm._ctx.kv_cache_seq_rm(-1, at, -1)
            for start in range(0, len(tokens) - 1, step):
                chunk = tokens[start:min(len(tokens) - 1, start + step)]
                with _decoded(llm, chunk, at + start, lambda j, _s=start: (_s + j + 1) >= score_from):
                    for j in range(len(chunk)):
                        nxt = start + j + 1
                        if nxt >= score_from:
                            lps = _log_softmax(_logits(llm, j, n_vocab))
                            best: list[tuple[int, float]] = []
                            if top:
                                ids = np.argpartition(-lps, top)[:top] if top < n_vocab else np.arange(n_vocab)
                                best = sorted(((int(i), float(lps[i])) for i in ids), key=lambda t: -t[1])
                            out.append((float(lps[tokens[nxt]]), best))
            llm._ctx.kv_cache_seq_rm(-1, at, -1)
            self._rewind(llm)
        return out

    def prompt_logprobs(self, text: str, top: int = 0, *, continuation: str = "") -> list[TokenLogprob]:
        """Every token of ``text`` (then of ``continuation``, tokenized on its own) with its
        log-probability given the tokens before it (the BOS token too, when the model adds one, so
        the first text token is scored), and the ``top`` best."""
        tokens = self.tokenize(text)
        if not tokens:
            raise InvalidParameter("the text is empty")
        if continuation:
            tokens = tokens + self.llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
        n_bos = 1 if self._wants_bos(text) and tokens and tokens[0] == self.llama.token_bos() else 0
        scores = self._scan(tokens, 1, top) if len(tokens) > 1 else []
        llm = self.llama

        def piece(tid: int) -> str:
            return llm.detokenize([tid], special=True).decode("utf-8", errors="replace")

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out: list[TokenLogprob] = []
        offset = 0
        for k in range(n_bos, len(tokens)):
            t = decoder.decode(llm.detokenize([tokens[k]], special=True), final=k == len(tokens) - 1)
            lp, best = scores[k - 1] if k >= 1 else (None, [])
            alts: dict[str, float] = {}
            for tid, v in best:
                alts.setdefault(piece(tid), v)
            out.append(TokenLogprob(t, offset, lp, alts))
            offset += len(t)
        return out

    def _last_logprobs(self):
        llm = self.llama
        return _log_softmax(_logits(llm, -1, llm.n_vocab()))


def _logits(llm, i: int, n_vocab: int):
    """The logits of batch position ``i`` (-1: the last), as float64."""
    import numpy as np
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, i)
    return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64)


def _log_softmax(logits):
    import numpy as np

    m = logits.max()
    return logits - (m + np.log(np.exp(logits - m).sum()))


@contextmanager
def _decoded(llm, tokens: Sequence[int], start: int, wants_logits):
    """Decode ``tokens`` at positions ``start…`` of sequence 0 in one llama_batch (logits where
    ``wants_logits(j)``); read them inside the block, the batch is freed after."""
    import llama_cpp

    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
    try:
        batch.n_tokens = len(tokens)
        for j, t in enumerate(tokens):
            batch.token[j] = t
            batch.pos[j] = start + j
            batch.seq_id[j][0] = 0
            batch.n_seq_id[j] = 1
            batch.logits[j] = bool(wants_logits(j))
        rc = llama_cpp.llama_decode(llm._ctx.ctx, batch)
        if rc != 0:
            raise GenstackError(f"llama_decode failed ({rc})")
        yield
    finally:
        llama_cpp.llama_batch_free(batch)
