import os
import re

import numpy as np
import pytest

from genstack import GenstackError, InvalidParameter
from genstack.embeddings import get_embedder
from genstack.embeddings.fake import FakeEmbedder


@pytest.mark.unit
def test_fake_embedder_is_deterministic_normalised_and_semantic():
    e = FakeEmbedder()
    a = e.embed(["the cat sat", "the cat sat", "quantum chromodynamics"])
    assert a.shape == (3, 64) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a[0], a[1])
    b = FakeEmbedder().embed(["a cat sat down"])[0]
    assert float(b @ a[0]) > float(b @ a[2])


@pytest.mark.unit
def test_get_embedder_names():
    assert get_embedder("fake:16").dim == 16
    with pytest.raises(InvalidParameter, match="unknown embedder"):
        get_embedder("nope")
    with pytest.raises(InvalidParameter, match="not an embedder"):
        get_embedder("smollm2-135m-instruct")
    with pytest.raises(InvalidParameter):
        get_embedder("fake:x")


@pytest.fixture(scope="module")
def minilm():
    e = get_embedder("minilm-l6-v2")
    e.warm_up()
    return e


@pytest.mark.integration
def test_minilm_embeds_batches_of_unit_vectors(minilm):
    v = minilm.embed(["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.6 > v[0] @ v[2]


@pytest.mark.integration
def test_minilm_tokenizer_offsets_are_wordpieces(minilm):
    text = "Tokenization splits unbelievable words."
    offs = minilm.offsets(text)
    assert len(offs) > len(text.split())  # word pieces, not words
    assert all(0 <= a < b <= len(text) for a, b in offs)


@pytest.mark.slow
def test_onnx_fp32_matches_sentence_transformers(minilm, tmp_path):
    pytest.importorskip("onnxruntime")
    from genstack.embeddings.onnx import OnnxEmbedder

    texts = ["short", "a somewhat longer sentence about retrieval", "word " * 400]
    ref = minilm.embed(texts)
    fp32 = OnnxEmbedder(minilm.path, quantize=False, cache_dir=tmp_path).embed(texts)
    assert np.allclose(fp32, ref, atol=1e-4)
    int8 = OnnxEmbedder(minilm.path, quantize=True, cache_dir=tmp_path).embed(texts)
    assert (int8 * ref).sum(1).min() > 0.97
    # the last layer left in fp32 is closer to fp32 than all-int8; static int8 calibrates and runs,
    # and with MinMax ranges (BERT's activation outliers) lands further from fp32 than dynamic int8
    keep = OnnxEmbedder(minilm.path, quantize="int8-keep1", cache_dir=tmp_path)
    assert (keep.embed(texts) * ref).sum(1).mean() > (int8 * ref).sum(1).mean()
    static = OnnxEmbedder(minilm.path, quantize="int8-static", cache_dir=tmp_path).embed(texts)
    assert 0.5 < (static * ref).sum(1).mean() < (int8 * ref).sum(1).mean()
    names = sorted(p.name for p in tmp_path.glob("*.onnx"))  # one cached file per variant, named by the weights' hash
    assert [re.sub(r"^.*-[0-9a-f]{16}-", "", n) for n in names] == ["fp32.onnx", "int8-keep1.onnx", "int8-static.onnx", "int8.onnx"]
    with pytest.raises(GenstackError, match="ONNX variant"):
        OnnxEmbedder(minilm.path, quantize="int4")


@pytest.mark.unit
def test_precision_suffix_and_the_default_spec(monkeypatch):
    from genstack import embeddings
    from genstack.config import Settings

    assert embeddings.split_precision("minilm-l6-v2@bf16") == ("minilm-l6-v2", "bf16")
    assert embeddings.split_precision("minilm-l6-v2") == ("minilm-l6-v2", "fp32")
    assert embeddings.split_precision("openai:e5@http://h:1/v1") == ("openai:e5@http://h:1/v1", "fp32")
    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: True)
    assert embeddings.default_embedder_spec(Settings()) == "minilm-l6-v2@bf16"
    assert embeddings.default_embedder_spec(Settings(embed_precision="fp32")) == "minilm-l6-v2"
    assert embeddings.default_embedder_spec(Settings(default_embedder="fake")) == "fake"
    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: False)
    assert embeddings.default_embedder_spec(Settings()) == "minilm-l6-v2"
    assert embeddings.default_embedder_spec(Settings(embed_precision="bf16")) == "minilm-l6-v2@bf16"
    msg = embeddings.mismatch("kb", "minilm-l6-v2@bf16", "minilm-l6-v2")
    assert "bf16 arithmetic" in msg and "leave --embedder out" in msg and "\n" not in msg
    with pytest.raises(InvalidParameter, match="not an embedder"):
        get_embedder("smollm2-135m-instruct@bf16")

@pytest.mark.integration
def test_bf16_arithmetic_is_within_2e_5_cosine_of_fp32(minilm):
    from genstack.embeddings import get_embedder

    bf16 = get_embedder("minilm-l6-v2@bf16")
    assert bf16.name == "minilm-l6-v2@bf16" and bf16.model_name == "minilm-l6-v2" and bf16.precision == "bf16"
    texts = ["A man is eating food.", "Tokenization splits unbelievable words.", "word " * 300,
             "Vitamin D deficiency is associated with an increased risk of fractures in older adults."]
    cos = (bf16.embed(texts) * minilm.embed(texts)).sum(1)
    assert cos.min() > 0.9999, cos


@pytest.mark.unit
def test_onednn_primitive_cache_is_bounded_unless_the_user_chose(monkeypatch):
    from genstack.embeddings.sentence_transformers import ONEDNN_CACHE_CAPACITY, bound_onednn_cache

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    bound_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == ONEDNN_CACHE_CAPACITY == "16"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")
    bound_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "256"
