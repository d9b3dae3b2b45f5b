import pytest

from genstack.embeddings.fake import FakeEmbedder
from genstack.errors import InvalidParameter
from genstack.models.fake import FakeChatModel
from genstack.rag import classify, sentiment, summarize, translate

pytestmark = pytest.mark.unit


def test_sentiment_label_and_probability():
    res = sentiment("I love using Generative AI", FakeChatModel(["positive"]))
    assert res.label == "POSITIVE" and 0.5 < res.score <= 1
    assert set(res.scores) == {"POSITIVE", "NEGATIVE", "NEUTRAL"} and abs(sum(res.scores.values()) - 1) < 1e-9
    assert "I love using Generative AI" in res.prompt


def test_sentiment_falls_back_to_generation_without_logits():
    class NoLogits(FakeChatModel):
        def score(self, prompt, continuations):
            from genstack.errors import GenstackError

            raise GenstackError("no logits")

    res = sentiment("bad", NoLogits(["Negative."]))
    assert res.label == "NEGATIVE" and res.score is None


def test_classify_by_llm_and_by_embedding():
    res = classify("The striker scored twice", ["sports", "politics", "cooking"], model=FakeChatModel(["sports"]))
    assert res.label == "sports" and res.score > 0.5
    emb = classify("whisk eggs sugar cooking", ["sports", "cooking"], embedder=FakeEmbedder(), method="embedding")
    assert emb.label == "cooking" and abs(sum(emb.scores.values()) - 1) < 1e-6
    with pytest.raises(InvalidParameter, match="at least two labels"):
        classify("x", ["only"], model=FakeChatModel(["only"]))
    with pytest.raises(InvalidParameter, match="distinct"):
        classify("x", ["a", "A"], model=FakeChatModel(["a"]))


def test_translate_and_empty_text():
    out, prompt = translate("Good morning", "French", FakeChatModel(["Bonjour"]))
    assert out == "Bonjour" and "French" in prompt
    with pytest.raises(InvalidParameter, match="text is empty"):
        sentiment("  ", FakeChatModel(["x"]))
    with pytest.raises(InvalidParameter, match="target language"):
        translate("hi", " ", FakeChatModel(["x"]))


def test_summarize_map_reduce_fits_every_step():
    model = FakeChatModel(["- short partial summary of a piece"], context_length=420)
    text = "\n\n".join(f"Paragraph {i} says that the harbour opened in year {1900 + i} with many boats." for i in range(60))
    progress = []
    res = summarize(text, model, style="bullets", max_words=30, step_tokens=64,
                    progress=lambda stage, done, total: progress.append((stage, done, total)))
    assert res.pieces > 1 and res.steps == len(model.requests) and res.levels >= 1
    for req in model.requests:
        assert model.count_chat_tokens(req.messages) + req.params.max_tokens <= 420
    assert ("map", res.pieces, res.pieces) in progress and progress[-1][0] == "reduce"
    assert len(res.text.split()) <= 30


def test_summarize_limits_words_and_checks_input():
    model = FakeChatModel([" ".join(["word"] * 50) + "."])
    assert len(summarize("A short text.", model, style="paragraph", max_words=10).text.split()) <= 10
    with pytest.raises(InvalidParameter, match="style"):
        summarize("x", model, style="haiku")
    with pytest.raises(InvalidParameter, match="no text"):
        summarize(["", "  "], model)
