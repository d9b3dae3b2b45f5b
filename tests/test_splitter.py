import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genstack import InvalidParameter
from genstack.documents import Document
from genstack.documents.splitter import Splitter, WordTokenizer

pytestmark = pytest.mark.unit

TOK = WordTokenizer()


def n_tokens(text):
    return len(TOK.offsets(text))


words = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
sentence = st.lists(words, min_size=1, max_size=25).map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=6).map(" ".join)
heading = st.tuples(st.integers(1, 3), words).map(lambda t: "#" * t[0] + " " + t[1])
block = st.one_of(paragraph, paragraph, heading, st.text(alphabet="xyz", min_size=30, max_size=400))
documents = st.lists(block, min_size=1, max_size=12).map("\n\n".join)


@settings(max_examples=200, deadline=None)
@given(text=documents, size=st.integers(8, 80), overlap_frac=st.floats(0, 0.49))
def test_chunk_properties(text, size, overlap_frac):
    overlap = min(int(size * overlap_frac), size // 2 - 1)
    sp = Splitter(TOK, chunk_size=size, overlap=overlap)
    chunks = sp.split(Document(text, {"source": "doc"}))
    spans = [(c.metadata["start"], c.metadata["end"]) for c in chunks]
    # in order
    assert spans == sorted(spans)
    assert all(b1 < b2 for (_, b1), (_, b2) in zip(spans, spans[1:]))
    # text is what the offsets say
    assert all(c.text == text[a:b] for c, (a, b) in zip(chunks, spans))
    # coverage: every non-space character is in a chunk
    covered = set()
    for a, b in spans:
        covered.update(range(a, b))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    # size
    assert all(n_tokens(c.text) <= size for c in chunks)
    # overlap never exceeds the setting
    for (a1, b1), (a2, b2) in zip(spans, spans[1:]):
        if a2 < b1:
            assert n_tokens(text[a2:b1]) <= overlap


def test_overlap_is_exactly_as_configured_on_plain_words():
    text = " ".join(f"w{i}" for i in range(200))
    chunks = Splitter(TOK, chunk_size=50, overlap=10).split(Document(text, {"source": "d"}))
    assert len(chunks) > 3
    for c1, c2 in zip(chunks, chunks[1:]):
        shared = text[c2.metadata["start"]: c1.metadata["end"]]
        assert n_tokens(shared) == 10
    assert all(c.metadata["n_tokens"] == 50 for c in chunks[:-1])


def test_metadata_heading_path_offsets_and_hash():
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun pip.\n\n### Linux\n\nUse apt.\n\n## Use\n\nCall it."
    chunks = Splitter(TOK, chunk_size=8, overlap=0).split(Document(text, {"source": "g.md", "title": "Guide"}))
    paths = [c.metadata["heading_path"] for c in chunks]
    assert paths == ["Guide", "Guide > Install", "Guide > Install > Linux", "Guide > Use"]
    for c in chunks:
        assert c.metadata["source"] == "g.md" and c.metadata["title"] == "Guide"
        assert len(c.metadata["content_hash"]) == 64
    assert [c.metadata["chunk_index"] for c in chunks] == [0, 1, 2, 3]


def test_paragraphs_are_preferred_to_sentences():
    p1 = "One two three. Four five six."
    p2 = "Seven eight nine. Ten eleven twelve."
    chunks = Splitter(TOK, chunk_size=10, overlap=0).split(Document(p1 + "\n\n" + p2, {"source": "d"}))
    assert [c.text for c in chunks] == [p1, p2]


def test_a_giant_word_is_cut_by_tokens():
    text = "-" * 100  # every dash is a token for the word tokenizer
    chunks = Splitter(TOK, chunk_size=16, overlap=0).split(Document(text, {"source": "d"}))
    assert "".join(c.text for c in chunks) == text
    assert all(c.metadata["n_tokens"] <= 16 for c in chunks)


@pytest.mark.parametrize("kwargs", [{"chunk_size": 4}, {"chunk_size": 64, "overlap": 32}, {"chunk_size": 64, "overlap": -1}])
def test_bad_settings(kwargs):
    with pytest.raises(InvalidParameter):
        Splitter(TOK, **kwargs)


def test_windowed_tokenization_gives_the_same_chunks_as_whole_text():
    import random

    from genstack.documents.splitter import Splitter

    rng = random.Random(3)
    words = "harbour ferry dawn tide gulls nets lighthouse".split()
    text = "\n\n".join(" ".join(rng.choices(words, k=rng.randint(5, 80))) + "." for _ in range(300))
    whole = Splitter(chunk_size=40, overlap=8).spans(text)
    small = Splitter(chunk_size=40, overlap=8)
    small.WINDOW = 97  # many windows, cut at whitespace
    assert small.spans(text) == whole and len(whole) > 50
