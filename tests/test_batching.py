"""Continuous batching on the real SmolLM2: with a KV buffer per sequence ("split") the same greedy
and seeded text as one-at-a-time; in the default unified buffer, stops, seeded sampling, prefix reuse and
cancellation."""

from __future__ import annotations

import threading

import pytest

from genstack.generation import SamplingParams

pytestmark = pytest.mark.integration

PROMPTS = ["What is the capital of France?", "Name three colours.", "Count from one to five.",
           "Say hello in Spanish."]


@pytest.fixture(scope="module")
def models():
    from genstack.models.registry import get_model

    plain = get_model("smollm2-135m-instruct")
    batched = get_model("smollm2-135m-instruct")
    batched.enable_batching(4, kv="split")
    return plain, batched


@pytest.fixture(scope="module")
def unified():
    from genstack.models.registry import get_model

    m = get_model("smollm2-135m-instruct")
    m.enable_batching(4)  # the default: one KV buffer for every slot
    assert m.batcher.kv == "unified"
    return m


def test_batched_greedy_text_equals_the_unbatched_text(models):
    plain, batched = models
    p = SamplingParams(greedy=True, max_tokens=24)
    want = [plain.chat([{"role": "user", "content": q}], params=p) for q in PROMPTS]
    got = [None] * len(PROMPTS)

    def run(i):
        got[i] = batched.chat([{"role": "user", "content": PROMPTS[i]}], params=p)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert batched.batching
    for w, g in zip(want, got):
        assert g.text == w.text and g.finish_reason == w.finish_reason
        assert g.usage.prompt_tokens == w.usage.prompt_tokens and g.usage.completion_tokens == w.usage.completion_tokens


def test_batched_seeded_sampling_and_repeat_penalty_equal_the_unbatched_text(models):
    """Each sequence samples with llama.cpp's own chain, seeded as the unbatched path seeds it: the same
    seed gives the same text with and without batching (split KV: the same logits)."""
    plain, batched = models
    cases = [SamplingParams(temperature=0.9, top_p=0.9, seed=7, max_tokens=24),
             SamplingParams(temperature=1.2, top_k=20, min_p=0.0, seed=123, max_tokens=24),
             SamplingParams(greedy=True, repeat_penalty=1.3, max_tokens=24)]
    for params in cases:
        want = [plain.chat([{"role": "user", "content": q}], params=params).text for q in PROMPTS[:2]]
        got = [None, None]

        def run(i):
            got[i] = batched.chat([{"role": "user", "content": PROMPTS[i]}], params=params).text

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == want, params
    other = SamplingParams(temperature=0.9, top_p=0.9, seed=8, max_tokens=24)
    assert batched.chat([{"role": "user", "content": PROMPTS[0]}], params=other).text != \
        batched.chat([{"role": "user", "content": PROMPTS[0]}], params=cases[0]).text


def test_a_new_request_reuses_the_cached_prefix_of_a_finished_one(models):  # split: exact equality
    plain, batched = models
    p = SamplingParams(greedy=True, max_tokens=16)
    sched = batched._batcher
    msgs = [[{"role": "system", "content": "You answer briefly and politely."}, {"role": "user", "content": q}]
            for q in PROMPTS[:2]]
    want = [plain.chat(m, params=p).text for m in msgs]
    before = sched.reused_tokens
    got = [batched.chat(m, params=p).text for m in msgs + msgs]  # one after another; the same prompt again last
    system = len(batched.tokenize("You answer briefly and politely.", add_bos=False))
    assert got == want + want  # reading a prefix from the cache changes nothing in the answer
    assert sched.reused_tokens - before >= 3 * system  # the system prompt was not decoded again


def test_batched_stop_sequences_and_sampling_are_honoured(unified):
    batched = unified
    msgs = [{"role": "user", "content": "Count from one to ten, separated by commas."}]
    full = batched.chat(msgs, params=SamplingParams(greedy=True, max_tokens=40)).text
    word = full.split()[3]
    c = batched.chat(msgs, params=SamplingParams(greedy=True, max_tokens=40, stop=[word]))
    assert c.text == full[:full.index(word)] and c.finish_reason == "stop"
    a = batched.chat([{"role": "user", "content": "Tell me a story."}], params=SamplingParams(temperature=0.8, seed=7, max_tokens=16))
    b = batched.chat([{"role": "user", "content": "Tell me a story."}], params=SamplingParams(temperature=0.8, seed=7, max_tokens=16))
    assert a.text == b.text and a.usage.completion_tokens == 16  # seeded sampling is reproducible


def test_a_stream_closed_early_frees_its_slot(unified):
    batched = unified
    streams = [batched.stream(messages=[{"role": "user", "content": "Write a long story."}],
                              params=SamplingParams(greedy=True, max_tokens=200)) for _ in range(4)]
    for s in streams:  # all four slots busy, then abandoned after two pieces
        it = iter(s)
        next(it), next(it)
        s.close()
    c = batched.chat([{"role": "user", "content": "Say yes."}], params=SamplingParams(greedy=True, max_tokens=8))
    assert c.usage.completion_tokens >= 1


def test_unified_slots_reuse_a_shared_prefix_and_answer_concurrently(unified):
    p = SamplingParams(greedy=True, max_tokens=16)
    system = "You answer briefly and politely."
    sched = unified.batcher
    before = sched.reused_tokens
    got = [None] * len(PROMPTS)

    def run(i):
        got[i] = unified.chat([{"role": "system", "content": system}, {"role": "user", "content": PROMPTS[i]}], params=p)

    for _ in range(2):  # the second round finds the system prompt cached in the slots
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in got:
            assert c.text.strip() and c.finish_reason in ("stop", "length") and 1 <= c.usage.completion_tokens <= 16
    n_system = len(unified.tokenize(system, add_bos=False))
    assert sched.reused_tokens - before >= len(PROMPTS) * n_system
