"""The arena on the real bundled models: SmolLM2 (instruct) against Gemma 3 270M (base), a real judge."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = "smollm2-135m-instruct,gemma3-270m"


def test_cli_battles_votes_and_judges_on_the_real_models(tmp_path):
    from genstack.models.registry import REGISTRY, is_installed

    if not is_installed(REGISTRY["gemma3-270m"]):
        pytest.skip("gemma3-270m is not installed (pip install 'genstack[gemma]'; make test installs it)")
    env = {"GENSTACK_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is the capital of France?\nName a yellow fruit.\n")

    def genstack(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "genstack", *args], input=stdin, env=env, text=True,
                              capture_output=True, timeout=600)

    r = genstack("arena", "battle", "--models", MODELS, "--prompts", str(prompts), "--max-tokens", "32",
                 "--temperature", "0.7", "--seed", "7", "--draw-seed", "7", "--json", stdin="a\ntie\n")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 2 and [x["winner"] for x in lines] == ["model_a", "tie"]
    for x in lines:
        assert {x["model_a"], x["model_b"]} == set(MODELS.split(","))
        assert x["answer_a"].strip() and x["answer_b"].strip()
        assert "User:" not in x["answer_a"] + x["answer_b"]  # the base model stops at the end of its turn
        assert x["params"]["seed"] == 7 and x["params"]["temperature"] == 0.7
    r = genstack("arena", "judge", "--models", MODELS, "--judge", "smollm2-135m-instruct", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["judged"] == 2 and sum(report["winners"].values()) == 2
    assert report["human"]["n"] == 2 and report["human"]["percent"] in (0.0, 50.0, 100.0)
    r = genstack("arena", "leaderboard", "--bootstrap", "20", "--plot", str(tmp_path / "fig"))
    assert r.returncode == 0, r.stderr
    assert "smollm2-135m-instruct" in r.stdout and "gemma3-270m" in r.stdout
    assert (tmp_path / "fig" / "ratings.png").stat().st_size > 1000
    assert (tmp_path / "fig" / "win_rate.png").stat().st_size > 1000
    r = genstack("arena", "leaderboard", "--judge", "smollm2-135m-instruct", "--json", "--bootstrap", "0")
    assert r.returncode == 0 and json.loads(r.stdout)["battles"] == 2
