import pytest
from hypothesis import given, strategies as st

from genstack.rag.citations import CitationFilter, check_citations

pytestmark = pytest.mark.unit


def test_invalid_citations_are_removed_and_reported():
    c = check_citations("Big [1]. Old [7]. Both [2, 9]. Again [Source 2].", 2)
    assert c.text == "Big [1]. Old . Both [2]. Again [2]."
    assert c.cited == [1, 2] and c.invalid == [7, 9]


def test_brackets_that_are_not_citations_stay():
    c = check_citations("Use a[i] and [x] or [12a].", 3)
    assert c.text == "Use a[i] and [x] or [12a]." and c.cited == [] and c.invalid == []


@given(st.lists(st.sampled_from(["Paris ", "[1]", "[", "3", "]", ", ", "[2, 5]", "x", "[Source ", "1]", ". "]), max_size=30),
       st.integers(1, 5))
def test_streaming_matches_whole_text_for_any_split(parts, cut):
    text = "".join(parts)
    whole = check_citations(text, 2)
    f = CitationFilter(2)
    out = "".join(f.feed(text[i:i + cut]) for i in range(0, len(text), cut)) + f.flush()
    assert out == whole.text and f.cited == whole.cited and f.invalid == whole.invalid
