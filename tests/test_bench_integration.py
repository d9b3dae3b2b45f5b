"""Log-likelihood scoring on the real model: batched paths agree with token-by-token evaluation."""

import math

import pytest

pytestmark = pytest.mark.integration


def test_batched_loglikelihood_matches_token_by_token(smol):
    prompt = "Question: What do bees make?\nAnswer:"
    conts = [" honey", " a lot of very sweet golden honey", " bricks"]
    batched = smol.loglikelihood(prompt, conts)
    # reference: the whole sequence scored position by position
    for cont, (lp, _) in zip(conts, batched):
        ctx = smol.tokenize(prompt)
        full = ctx + smol.llama.tokenize(cont.encode(), add_bos=False, special=False)
        ref = smol.sequence_logprobs(full, score_from=len(ctx))
        # the same quantity through other batch shapes: llama.cpp's kernels round differently per batch
        # size and per CPU (AVX2, AVX-512), 1e-4 to 1e-3 nats; scoring the wrong token costs 0.5 or more
        assert lp == pytest.approx(sum(ref), abs=0.02)
    assert batched[0][0] > batched[2][0]


def test_greedy_flag(smol):
    prompt = "1, 2, 3, 4, 5, 6, 7,"
    (lp8, g8), (lp_x, g_x) = smol.loglikelihood(prompt, [" 8", " banana"])
    assert g8 and not g_x and lp8 > lp_x


def test_sliding_window_perplexity(smol):
    from genstack.evaluation.perplexity import perplexity

    text = ("The quick brown fox jumps over the lazy dog. " * 6 + "A journey of a thousand miles begins with a single step. ") * 4
    disjoint = perplexity(text, smol, context=64, stride=64)
    sliding = perplexity(text, smol, context=64, stride=16)
    assert 1 < sliding.perplexity < disjoint.perplexity  # more left context, lower perplexity
    n_tokens = len(smol.tokenize(text))
    assert sliding.tokens == n_tokens - 1 and disjoint.tokens < n_tokens - 1
    assert math.isclose(sliding.perplexity, math.exp(sliding.nll))


def test_bench_cli_on_a_few_examples(home, capsys):
    from genstack.cli import run
    from genstack.evaluation.bench.common import DATA_DIR

    if not (DATA_DIR / "piqa.jsonl").is_file():
        pytest.skip(f"shared evaluation data not found at {DATA_DIR}")
    import json

    assert run(["eval", "bench", "piqa", "lambada", "--limit", "8", "--json"]) == 0
    res = {r["task"]: r for r in json.loads(capsys.readouterr().out)}
    assert res["piqa"]["examples"] == 8 and 0 <= res["piqa"]["metrics"]["acc_norm"]["value"] <= 1
    assert res["lambada"]["metrics"]["perplexity"]["value"] > 1 and res["piqa"]["examples_per_s"] > 0
