"""The arena's ratings against FastChat's own (fschat on PyPI, fastchat/serve/monitor/elo_analysis.py),
on the same simulated battles: online Elo equal to the last digit, Bradley–Terry within ±1 point."""

from __future__ import annotations

import pytest

from genstack.arena import bt_ratings, elo_ratings
from tests.test_arena import simulate

pytestmark = pytest.mark.integration

ea = pytest.importorskip("fastchat.serve.monitor.elo_analysis", reason="fschat is in the [arena-peer] extra (make test installs it)")
pd = pytest.importorskip("pandas")

TRUE = {"model-1": 1250.0, "model-2": 1120.0, "model-3": 1050.0, "model-4": 1000.0, "model-5": 900.0,
        "model-6": 880.0}


@pytest.fixture(scope="module")
def battles():
    return simulate(TRUE, 6000, seed=11, tie_rate=0.15)


def frame(battles):
    return pd.DataFrame(battles, columns=["model_a", "model_b", "winner"])


def test_online_elo_equals_fastchats(battles):
    ours = elo_ratings(battles, k=4)
    theirs = ea.compute_elo(frame(battles), K=4)
    assert set(ours) == set(theirs)
    for m in ours:
        assert ours[m] == pytest.approx(theirs[m], abs=1e-9)


def test_bradley_terry_equals_fastchats_within_one_point_and_both_recover_the_truth(battles):
    ours = bt_ratings(battles)
    theirs = ea.compute_elo_mle_with_tie(frame(battles))
    mean = sum(TRUE.values()) / len(TRUE)
    for m in TRUE:
        assert abs(ours[m] - theirs[m]) <= 1.0, (m, ours[m], theirs[m])
        assert abs(ours[m] - (TRUE[m] - mean + 1000)) < 30, (m, ours[m])
    assert sorted(ours, key=ours.get, reverse=True) == sorted(TRUE, key=TRUE.get, reverse=True)
