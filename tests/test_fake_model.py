import pytest

from genstack import Completion, GenerationRequest, InvalidParameter, Message, SamplingParams
from genstack.models.fake import FakeChatModel

pytestmark = pytest.mark.unit


def test_streams_pieces_and_reports_usage(fake_model):
    stream = fake_model.stream("What is it?", greedy=True)
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces) == "The answer is 42."
    c = stream.completion
    assert isinstance(c, Completion)
    assert c.text == "The answer is 42." and c.finish_reason == "stop"
    assert c.usage.prompt_tokens == 3 and c.usage.completion_tokens == 4
    assert c.usage.total_tokens == 7


def test_max_tokens_gives_length(fake_model):
    c = fake_model.generate("q", greedy=True, max_tokens=2)
    assert c.text == "The answer" and c.finish_reason == "length"


def test_stop_sequence_cuts_and_is_not_emitted(fake_model):
    c = fake_model.generate("q", greedy=True, stop=["is"])
    assert c.text == "The answer " and c.finish_reason == "stop"


def test_same_seed_same_text_different_seed_different_text():
    m = FakeChatModel(["a b c d e f g h i j"])
    first = m.generate("q", seed=1).text
    assert m.generate("q", seed=1).text == first
    assert {m.generate("q", seed=s).text for s in range(2, 8)} - {first}


def test_unseeded_sampling_records_the_seed_it_drew():
    m = FakeChatModel(["a b c d e f g h"])
    c = m.generate("q")
    assert c.seed is not None
    assert m.generate("q", seed=c.seed).text == c.text


def test_chat_messages_reach_the_backend_and_prompt_is_rendered():
    m = FakeChatModel()
    c = m.chat([{"role": "system", "content": "S"}, {"role": "user", "content": "hello there"}])
    assert c.text.split() and "hello" in c.text and "there" in c.text
    assert c.prompt == "<|system|>\nS\n<|user|>\nhello there\n<|assistant|>\n"
    assert m.requests[-1].messages[0] == Message("system", "S")


def test_request_needs_exactly_one_of_prompt_or_messages():
    with pytest.raises(InvalidParameter):
        GenerationRequest()
    with pytest.raises(InvalidParameter):
        GenerationRequest(prompt="a", messages=(Message("user", "b"),))
    with pytest.raises(InvalidParameter):
        GenerationRequest(messages=())


def test_bad_message_role_is_rejected():
    with pytest.raises(InvalidParameter):
        Message("robot", "hi")


def test_replies_cycle_in_order():
    m = FakeChatModel(["one", "two"])
    assert [m.generate("q", greedy=True).text for _ in range(3)] == ["one", "two", "one"]


def test_params_object_and_overrides_combine(fake_model):
    c = fake_model.generate("q", params=SamplingParams(greedy=True), max_tokens=1)
    assert c.text == "The" and c.usage.completion_tokens == 1
