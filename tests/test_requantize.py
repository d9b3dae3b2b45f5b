import pytest

from genstack import InvalidParameter
from genstack.models.requantize import choose_weights

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "policy, file_type, chosen",
    [
        ("auto", "Q4_1", "q8_0"),
        ("auto", "Q5_1", "q8_0"),
        ("auto", "Q4_K_M", "original"),
        ("auto", "Q4_0", "original"),
        ("auto", "F16", "original"),
        ("original", "Q4_1", "original"),
        ("f16", "Q4_K_M", "f16"),
        ("q8_0", "Q4_0", "q8_0"),
    ],
)
def test_choose_weights(policy, file_type, chosen):
    assert choose_weights(policy, file_type) == chosen


def test_lossy_targets_are_not_offered():
    with pytest.raises(InvalidParameter, match="weights must be one of"):
        choose_weights("q4_0", "Q4_1")
