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


def test_embedding_sentiment_and_few_shot_classification_use_example_prototypes():
    emb = FakeEmbedder()
    examples = [("apples pears fruit", "food"), ("fruit apples salad", "food"), ("goal match striker", "sport")]
    res = classify("striker scored a goal in the match", ["food", "sport"], embedder=emb, method="embedding",
                   examples=examples)
    assert res.label == "sport" and abs(sum(res.scores.values()) - 1) < 1e-6
    with pytest.raises(InvalidParameter, match="labels that are not given: music"):
        classify("x y", ["food", "sport"], embedder=emb, method="embedding", examples=[("song", "music")])
    res = sentiment("anything at all", method="embedding", embedder=emb)  # the shipped anchors
    assert res.label in {"POSITIVE", "NEGATIVE", "NEUTRAL"} and set(res.scores) == {"POSITIVE", "NEGATIVE", "NEUTRAL"}
    with pytest.raises(InvalidParameter, match="method must be llm or embedding"):
        sentiment("x", FakeChatModel(["x"]), method="vibes")
    with pytest.raises(InvalidParameter, match="needs an embedder"):
        sentiment("x", method="embedding")


def test_load_examples_reports_the_bad_line(tmp_path):
    from genstack.rag.tasks import load_examples

    assert len(load_examples()) == 36
    bad = tmp_path / "ex.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(InvalidParameter, match="line 2"):
        load_examples(bad)


def test_a_base_model_gets_the_few_shot_completion_prompt_for_translation():
    base = FakeChatModel(["Bonjour tout le monde\nEnglish: more"])
    base.is_chat = False
    out, prompt = translate("Hello everyone", "French", base)
    assert out == "Bonjour tout le monde"  # stopped at the end of the line
    req = base.requests[-1]
    assert req.messages is None and req.prompt.endswith("English: Hello everyone\nFrench:")
    assert "English: Good morning, how are you?\nFrench: Bonjour, comment allez-vous ?" in req.prompt


def test_bullets_are_normalised_checked_and_topped_up():
    from genstack.rag.summaries import check_bullets

    src = "The pool reopens on 1 June. It has eight lanes and a cafe. Adults pay 5 euros. Children swim free."
    bullets, dropped, extracted = check_bullets(
        "Here are the bullet points:\n1. The pool reopens on 1 June\n* Adults pay 7 euros\n```\ncode\n```", src)
    assert bullets[0] == "The pool reopens on 1 June" and dropped == 1 and extracted == 2 and len(bullets) == 3
    assert all("7" not in b for b in bullets)
    para, dropped, extracted = check_bullets("The pool reopens on 1 June. Adults pay 5 euros. Children swim free.", src)
    assert para == ["The pool reopens on 1 June", "Adults pay 5 euros", "Children swim free"] and (dropped, extracted) == (0, 0)
    headed, _, _ = check_bullets("- ## Remote work\n- The pool reopens on 1 June\n- | a | b |", "## Remote work\n\n" + src)
    assert not any(b.startswith(("#", "|")) for b in headed) and headed[0] == "The pool reopens on 1 June"
    out = summarize(src, FakeChatModel(["- The pool reopens on 1 June\n- Lanes: eight\n- Free parking on Mars"]))
    assert out.text.startswith("- The pool reopens on 1 June") and out.dropped >= 1
    assert all(line.startswith("- ") for line in out.text.splitlines()) and "Mars" not in out.text


def test_a_bullets_number_must_stand_beside_its_words_in_the_source():
    """The 135M model wrote "holds the chosen temperature for 3 minutes" for a manual that says 30; the
    3 of a "3-year warranty" elsewhere (and of an error code E3) used to make the bullet pass."""
    from genstack.rag.summaries import bullet_supported

    src = ("- Keep-warm function: holds the chosen temperature for 30 minutes\n"
           "- Power: 2200 watts, 220–240 volts\n\n"
           "| E3 | Dry boil | Let it cool for 15 minutes |\n\n"
           "The Brewmaster K7 has a 3-year warranty from the date of purchase.")
    assert bullet_supported("Keep-warm function: holds the chosen temperature for 30 minutes", src)
    assert not bullet_supported("Keep-warm function: holds the chosen temperature for 3 minutes", src)
    assert bullet_supported("The Brewmaster K7 has a 3-year warranty", src)
    assert not bullet_supported("The Brewmaster K7 has a 30-year warranty", src)
    assert bullet_supported("Power: 220–240 volts", src)
