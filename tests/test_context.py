import pytest

from genstack import ContextLengthExceeded, Message
from genstack.generation import check_context, fit_messages
from genstack.models.fake import FakeChatModel

pytestmark = pytest.mark.unit


def test_check_context_passes_when_it_fits():
    assert check_context(10, 20, 30) == 20


def test_check_context_raises_with_numbers_and_a_fix():
    with pytest.raises(ContextLengthExceeded) as info:
        check_context(100, 50, 120)
    msg = str(info.value)
    assert "100 tokens" in msg and "120" in msg and "at most 20" in msg


def test_clamp_lowers_max_tokens_to_what_fits():
    assert check_context(100, 50, 120, on_overflow="clamp") == 20


def test_a_prompt_that_fills_the_window_always_raises():
    with pytest.raises(ContextLengthExceeded):
        check_context(120, 1, 120, on_overflow="clamp")


def test_fake_model_overflow_raises_before_streaming():
    m = FakeChatModel(["x"], context_length=8)
    with pytest.raises(ContextLengthExceeded):
        m.stream("one two three four five six seven", max_tokens=4)
    assert len(m.requests) == 1


def test_fake_model_clamp_ends_with_length():
    m = FakeChatModel(["a b c d e f g h"], context_length=8)
    c = m.generate("one two three four five", max_tokens=100, on_overflow="clamp", greedy=True)
    assert c.finish_reason == "length"
    assert c.usage.completion_tokens == 3
    assert c.usage.prompt_tokens + c.usage.completion_tokens == 8


def words(msgs):
    return sum(len(m.content.split()) + 1 for m in msgs)


def test_fit_messages_keeps_everything_that_fits():
    msgs = [Message("user", "a b"), Message("assistant", "c")]
    assert fit_messages(msgs, words, 100) == msgs


def test_fit_messages_drops_oldest_turns_keeps_system_and_last():
    msgs = [
        Message("system", "be nice"),
        Message("user", "one one one one"),
        Message("assistant", "two two two two"),
        Message("user", "three three"),
        Message("assistant", "four"),
        Message("user", "five"),
    ]
    out = fit_messages(msgs, words, 10)
    assert out[0].role == "system"
    assert out[-1].content == "five"
    assert words(out) <= 10
    assert out[1].role == "user"  # never starts with a dangling assistant reply
    assert Message("user", "one one one one") not in out


def test_fit_messages_returns_minimum_when_nothing_fits():
    msgs = [Message("system", "s " * 50), Message("user", "hi"), Message("assistant", "yo"), Message("user", "q")]
    out = fit_messages(msgs, words, 5)
    assert [m.role for m in out] == ["system", "user"]
    assert out[-1].content == "q"
