import pytest

from genstack import InvalidParameter, SamplingParams

pytestmark = pytest.mark.unit


def test_defaults_are_valid_and_not_greedy():
    p = SamplingParams()
    assert not p.is_greedy
    assert p.max_tokens == 256 and p.stop == ()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"temperature": -0.1}, "temperature must be in [0, 100]"),
        ({"temperature": float("nan")}, "temperature must be a number"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"top_k": -1}, "top_k must be >= 0"),
        ({"top_k": 2.5}, "top_k must be an integer"),
        ({"min_p": 1.2}, "min_p must be in [0, 1]"),
        ({"repeat_penalty": 0}, "repeat_penalty must be in (0, 10]"),
        ({"max_tokens": 0}, "max_tokens must be >= 1"),
        ({"max_tokens": -5}, "max_tokens must be >= 1"),
        ({"max_tokens": True}, "max_tokens must be an integer"),
        ({"seed": -1}, "seed must be in [0, 4294967295]"),
        ({"stop": ["ok", ""]}, "stop sequences must be non-empty"),
        ({"greedy": "yes"}, "greedy must be true or false"),
    ],
)
def test_invalid_values_raise_a_clear_error(kwargs, fragment):
    with pytest.raises(InvalidParameter) as info:
        SamplingParams(**kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_greedy_by_flag_or_zero_temperature():
    assert SamplingParams(greedy=True).is_greedy
    assert SamplingParams(temperature=0).is_greedy


def test_single_stop_string_becomes_a_tuple():
    assert SamplingParams(stop="END").stop == ("END",)


def test_with_seed_draws_once_and_keeps_an_explicit_seed():
    assert SamplingParams(seed=5).with_seed().seed == 5
    drawn = SamplingParams().with_seed()
    assert isinstance(drawn.seed, int) and 0 <= drawn.seed < 2**31


def test_replace_validates_again():
    with pytest.raises(InvalidParameter):
        SamplingParams().replace(top_p=2.0)
