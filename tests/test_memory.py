import pytest

from genstack import InvalidParameter, estimate_memory
from genstack.models.memory import parse_count

pytestmark = pytest.mark.unit

GB = 1e9


@pytest.mark.parametrize("text, n", [("135M", 135_000_000), ("1B", 10**9), ("7.5b", 7_500_000_000), ("1e9", 10**9), ("500k", 500_000), (1000, 1000)])
def test_parse_count(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize("bad", ["", "lots", "-1B", "0"])
def test_parse_count_rejects_nonsense(bad):
    with pytest.raises(InvalidParameter):
        parse_count(bad)


@pytest.mark.parametrize("dtype, gb", [("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1), ("int4", 0.5)])
def test_weights_by_dtype(dtype, gb):
    assert estimate_memory("1B", dtype).parts["weights"] == pytest.approx(gb * GB)


def test_full_adam_training_is_16_bytes_per_param_plus_activations():
    for dtype in ("fp32", "bf16"):
        est = estimate_memory("1B", dtype, training="full")
        states = est.parts["weights"] + est.parts["gradients"] + est.parts["optimizer"]
        assert states == pytest.approx(16 * GB)
        assert est.parts["activations"] > 0
        assert est.parts["kv_cache"] == 0
        assert est.total == pytest.approx(16 * GB + est.parts["activations"] + est.parts["logits"] + est.parts["runtime"])


def test_kv_cache_hand_computed_for_smollm2_shape():
    # SmolLM2-135M: 30 layers, hidden 576, 9 heads, 3 KV heads -> kv_dim 192.
    est = estimate_memory("135M", "fp16", context=2048, layers=30, hidden=576, heads=9, kv_heads=3, vocab=49152)
    assert est.parts["kv_cache"] == 2 * 30 * 2048 * 192 * 2  # 47,185,920 bytes
    assert not est.shape.guessed


def test_training_activations_follow_korthikanti():
    est = estimate_memory("1B", "bf16", context=1024, training="full", layers=16, hidden=2048, heads=32)
    s, h, a, L = 1024, 2048, 32, 16
    assert est.parts["activations"] == pytest.approx(L * s * h * (34 + 5 * a * s / h))


def test_fp32_training_doubles_activations_and_counts_the_logits():
    shape = dict(layers=30, hidden=576, heads=9, kv_heads=3, vocab=49152)
    f32 = estimate_memory("135M", "fp32", context=512, batch=4, training="lora", **shape)
    b16 = estimate_memory("135M", "bf16", context=512, batch=4, training="lora", **shape)
    assert f32.parts["activations"] == pytest.approx(2 * b16.parts["activations"])
    assert f32.parts["logits"] == 3 * 4 * 512 * 49152 * 4
    # measured peak RSS of genstack tune sft on SmolLM2 (benchmarks/RESULTS.md): 6.70 GB at 4 x 512 tokens,
    # 2.45 GB at 2 x 256; the issue asks for the estimate within 25%
    assert abs(f32.total - 6.70 * GB) / (6.70 * GB) < 0.25
    small = estimate_memory("135M", "fp32", context=256, batch=2, training="lora", **shape)
    assert abs(small.total - 2.45 * GB) / (2.45 * GB) < 0.25


def test_lora_trains_far_fewer_states_than_full():
    full = estimate_memory("1B", "bf16", training="full", layers=16, hidden=2048, heads=32)
    lora = estimate_memory("1B", "bf16", training="lora", layers=16, hidden=2048, heads=32, lora_rank=8)
    assert lora.parts["weights"] == full.parts["weights"]
    trainable = 16 * 4 * 2 * 8 * 2048
    assert lora.parts["gradients"] == trainable * 4
    assert lora.parts["optimizer"] == trainable * 12
    assert lora.total < full.total


def test_assumptions_are_stated():
    est = estimate_memory("1B", "fp32")
    text = " ".join(est.assumptions)
    assert "shape guessed" in text and "KV cache" in text


@pytest.mark.parametrize("kwargs", [{"dtype": "fp8"}, {"training": "qlora"}, {"context": 0}, {"heads": 8, "kv_heads": 3}])
def test_bad_input(kwargs):
    with pytest.raises(InvalidParameter):
        estimate_memory("1B", **{"dtype": "fp16", **kwargs})
