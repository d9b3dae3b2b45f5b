import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genstack.generation import StopMatcher

pytestmark = pytest.mark.unit


def feed_all(stops, pieces):
    m = StopMatcher(stops)
    out = "".join(m.feed(p) for p in pieces)
    return out + m.flush(), m.stopped


def test_stop_split_across_pieces_never_leaks():
    out, stopped = feed_all(["</s>"], ["Hello </", "s> more"])
    assert out == "Hello " and stopped


def test_partial_stop_prefix_is_released_at_the_end():
    out, stopped = feed_all(["STOP"], ["it ends with ST"])
    assert out == "it ends with ST" and not stopped


def test_earliest_of_several_stops_wins():
    out, _ = feed_all(["b", "ab"], ["xxab"])
    assert out == "xx"


def test_held_back_text_is_not_emitted_early():
    m = StopMatcher(["###"])
    assert m.feed("abc#") == "abc"
    assert m.feed("#") == ""
    assert m.feed("x") == "##x"


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab#c ", max_size=40),
    stops=st.lists(st.text(alphabet="ab#", min_size=1, max_size=4), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_any_split_gives_text_up_to_the_first_stop(text, stops, cuts):
    bounds = sorted({c for c in cuts if c <= len(text)} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    expected = text[: min(hits)] if hits else text
    out, stopped = feed_all(stops, pieces)
    assert out == expected
    assert stopped == bool(hits)
