"""The arena: ratings, the vote store, battles on the fakes, the judge, the CLI."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from genstack.arena import ArenaDB, agreement, bt_ratings, elo_ratings, judge_battle, leaderboard, simulate_battles
from genstack.arena.battles import Arena, balanced_pair, stream_battle
from genstack.cli import run
from genstack.errors import InvalidParameter
from genstack.generation import Message, SamplingParams
from genstack.models.fake import FakeChatModel

pytestmark = pytest.mark.unit


def simulate(strengths: dict[str, float], n: int, seed: int = 0, tie_rate: float = 0.1):
    return simulate_battles(strengths, n, seed=seed, tie_rate=tie_rate)


TRUE = {"big": 1200.0, "mid": 1050.0, "small": 900.0, "tiny": 850.0}


# -- ratings -----------------------------------------------------------------------------
def test_one_elo_step_moves_both_ratings_by_k_times_the_surprise():
    r = elo_ratings([("a", "b", "model_a")], k=4)
    assert r == {"a": 1002.0, "b": 998.0}
    r = elo_ratings([("a", "b", "tie")], k=32)
    assert r == {"a": 1000.0, "b": 1000.0}


def test_bradley_terry_recovers_known_strengths_and_ignores_battle_order():
    battles = simulate(TRUE, 4000, seed=1)
    r = bt_ratings(battles)
    assert sorted(r, key=r.get, reverse=True) == ["big", "mid", "small", "tiny"]
    assert sum(r.values()) / len(r) == pytest.approx(1000, abs=0.01)  # anchored: the ratings average 1000
    true_mean = sum(TRUE.values()) / len(TRUE)
    for m, v in TRUE.items():
        assert r[m] == pytest.approx(v - true_mean + 1000, abs=35)
    shuffled = battles[:]
    random.Random(5).shuffle(shuffled)
    r2 = bt_ratings(shuffled)
    assert all(r2[m] == pytest.approx(r[m], abs=1e-3) for m in r)
    e1, e2 = elo_ratings(battles), elo_ratings(shuffled)
    assert any(abs(e1[m] - e2[m]) > 1 for m in e1)  # online Elo depends on the order; BT does not


def test_ties_count_half_a_win_each_way_and_an_undefeated_model_stays_finite():
    r = bt_ratings([("a", "b", "tie")] * 10 + [("a", "b", "tie (bothbad)")] * 10)
    assert r["a"] == pytest.approx(r["b"], abs=1e-6)
    # one win and one tie per pair weigh like 1.5 : 0.5
    r = bt_ratings([("a", "b", "model_a"), ("a", "b", "tie")] * 200)
    assert r["a"] - r["b"] == pytest.approx(400 * 0.4771, abs=5)  # log10(3) * 400
    r = bt_ratings([("a", "b", "model_a")] * 5)
    assert 1000 < r["a"] < 1500 and r["a"] + r["b"] == pytest.approx(2000)


def test_leaderboard_intervals_ranks_counts_and_matrices():
    battles = simulate({"x": 1300.0, "y": 1000.0, "z": 995.0}, 1500, seed=3)
    board = leaderboard(battles, method="bt", bootstrap=50, seed=7)
    assert board.models[0] == "x" and board.rank["x"] == 1
    # y and z are 5 points apart: their intervals overlap and they share rank 2
    assert board.rank["y"] == board.rank["z"] == 2
    for m in board.models:
        assert board.lower[m] <= board.ratings[m] <= board.upper[m]
        assert board.battles[m] == board.wins[m] + board.losses[m] + board.ties[m]
    assert sum(board.battles.values()) == 2 * len(battles)
    p = board.predicted
    assert p["x"]["y"] + p["y"]["x"] == pytest.approx(1.0)
    assert p["x"]["y"] > 0.8 and board.win_rate["x"]["y"] > 0.75
    again = leaderboard(battles, method="bt", bootstrap=50, seed=7)
    assert again.lower == board.lower  # the seed decides the bootstrap
    d = board.to_dict()
    assert [row["model"] for row in d["models"]] == board.models
    json.dumps(d)


def test_elo_leaderboard_rates_by_the_bootstrap_median_and_reports_the_online_figure():
    battles = simulate(TRUE, 800, seed=2)
    board = leaderboard(battles, method="elo", bootstrap=30, seed=1, k=8)
    assert board.online == elo_ratings(battles, k=8)
    assert board.models[0] == "big"
    assert all(board.lower[m] <= board.ratings[m] <= board.upper[m] for m in board.models)
    plain = leaderboard(battles, method="elo", bootstrap=0)
    assert plain.ratings == elo_ratings(battles) and plain.lower == {}


@pytest.mark.parametrize("battles, message", [
    ([], "at least two models"),
    ([("a", "b", "model_c")], "winner must be one of"),
    ([("a", "a", "tie")], "cannot battle itself"),
    ([("a", "b")], "expected (model_a, model_b, winner)"),
])
def test_bad_battles_are_clear_errors(battles, message):
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        leaderboard(battles)


def test_leaderboard_rejects_a_bad_method_or_bootstrap():
    with pytest.raises(InvalidParameter, match="method"):
        leaderboard([("a", "b", "tie")], method="glicko")
    with pytest.raises(InvalidParameter, match="bootstrap"):
        leaderboard([("a", "b", "tie")], bootstrap=-1)


# -- the store ---------------------------------------------------------------------------
def _db(tmp_path):
    return ArenaDB(tmp_path / "arena.db")


def _add(db, a="m1", b="m2", prompt="hi"):
    return db.add_battle(prompt=prompt, model_a=a, model_b=b, answer_a="A!", answer_b="B!",
                         params={"temperature": 0.0})


def test_a_battle_takes_one_vote_and_a_second_one_loses_nothing(tmp_path):
    db = _db(tmp_path)
    bid = _add(db)
    assert db.get(bid)["winner"] is None
    stored = db.vote(bid, "b", voter="key-1")
    assert stored["winner"] == "model_b" and stored["voter"] == "key-1" and stored["voted"]
    with pytest.raises(InvalidParameter, match="already has a vote"):
        db.vote(bid, "a")
    assert db.get(bid)["winner"] == "model_b"
    with pytest.raises(InvalidParameter, match="no battle with id 'nope'"):
        db.vote("nope", "a")
    with pytest.raises(InvalidParameter, match="a, b, tie or bothbad"):
        db.vote(_add(db), "maybe")
    assert db.outcomes() == [("m1", "m2", "model_b")]


def test_export_is_the_chatbot_arena_layout_and_import_reads_it_back_once(tmp_path):
    db = _db(tmp_path)
    for w in ("a", "b", "tie", "bothbad"):
        db.vote(_add(db), w, voter="me")
    _add(db)  # unvoted: not exported
    records = list(db.export())
    assert len(records) == 4
    r = records[0]
    for key in ("question_id", "model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b",
                "turn", "anony", "language", "tstamp"):
        assert key in r
    assert r["conversation_a"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A!"}]
    assert [x["winner"] for x in records] == ["model_a", "model_b", "tie", "tie (bothbad)"]
    other = ArenaDB(tmp_path / "other.db")
    lines = [json.dumps(x) + "\n" for x in records]
    assert other.import_records(lines) == (4, 0)
    assert other.import_records(lines) == (0, 4)  # the same file twice adds nothing
    assert other.outcomes() == db.outcomes()
    b = other.battles()[0]
    assert b["prompt"] == "hi" and b["answer_b"] == "B!" and b["voter"] == "me"


def test_a_malformed_import_line_is_an_error_and_nothing_is_imported(tmp_path):
    db = _db(tmp_path)
    db.vote(_add(db), "a")
    good = json.dumps({"model_a": "x", "model_b": "y", "winner": "model_a"})
    for bad, message in (("{not json", "line 2: not valid JSON"),
                         (json.dumps({"model_a": "x", "winner": "tie"}), "line 2: model_b is missing"),
                         (json.dumps({"model_a": "x", "model_b": "y", "winner": "A"}), "line 2: winner must be"),
                         (json.dumps([1, 2]), "line 2: expected a JSON object")):
        with pytest.raises(InvalidParameter, match=message):
            db.import_records([good + "\n", bad + "\n"])
    assert len(db.battles()) == 1  # the stored vote is still there, nothing was added


def test_fastchat_clean_battle_json_array_imports(tmp_path):
    db = _db(tmp_path)
    data = [{"model_a": "x", "model_b": "y", "winner": "tie", "judge": "u1", "tstamp": 1.0, "anony": True},
            {"model_a": "y", "model_b": "x", "winner": "model_b", "judge": "u2", "tstamp": 2.0, "anony": True}]
    assert db.import_records([json.dumps(data)]) == (2, 0)
    assert db.outcomes() == [("x", "y", "tie"), ("y", "x", "model_b")]


# -- battles -----------------------------------------------------------------------------
def test_pairs_are_balanced_with_random_sides():
    from collections import Counter

    rng = random.Random(0)
    counts: Counter = Counter()
    sides: Counter = Counter()
    for _ in range(60):
        a, b = balanced_pair(["p", "q", "r", "s"], counts, rng)
        counts[frozenset((a, b))] += 1
        sides[a] += 1
    assert set(counts.values()) == {10}  # 6 pairs, 10 battles each
    assert all(10 <= n <= 20 for n in sides.values())


def _arena(tmp_path, replies=("Paris is the capital.", "London, I think."), seed=0, **kw):
    models = {f"fake:{r}": FakeChatModel([r], delay=kw.pop("delay", 0.0)) for r in replies}
    return Arena(list(models), db=ArenaDB(tmp_path / "arena.db"), loader=models.__getitem__, seed=seed, **kw), models


def test_a_battle_runs_both_sides_with_the_same_parameters_and_stores_them(tmp_path):
    arena, models = _arena(tmp_path)
    res = arena.battle("What is the capital of France?", params=SamplingParams(temperature=0.7, max_tokens=32))
    assert {res.model_a, res.model_b} == set(models)
    # sampled with the battle's seed: the fake shuffles its reply's words
    for side in ("a", "b"):
        reply = models[getattr(res, "model_" + side)]._replies[0]
        assert sorted(getattr(res, "answer_" + side).replace(" ", "")) == sorted(reply.replace(" ", ""))
    stored = arena.db.get(res.id)
    assert stored["params"]["seed"] is not None and stored["params"]["temperature"] == 0.7  # one seed, both sides
    reqs = [m.requests[-1].params for m in models.values()]
    assert reqs[0] == reqs[1] and reqs[0].seed == stored["params"]["seed"]
    assert stored["prompt"] == "What is the capital of France?" and stored["winner"] is None
    assert {stored["answer_a"], stored["answer_b"]} == {res.answer_a, res.answer_b}
    out = arena.vote(res.id, "a", voter="t")
    assert out["winner"] == "model_a"


def test_both_sides_stream_at_once(tmp_path):
    a = FakeChatModel(["one two three four five six"], delay=0.05)
    b = FakeChatModel(["uno dos tres cuatro cinco seis"], delay=0.05)
    order = []
    for side, item in stream_battle((a, b), [Message("user", "count")], SamplingParams(greedy=True)):
        if isinstance(item, str):
            order.append(side)
    first_b = order.index("b")
    # b's first piece came before a had finished: both stream at once (an order, not a timing, so a
    # busy host cannot fail it)
    assert first_b < order.count("a") - 1


def test_closing_a_battle_stream_stops_both_sides(tmp_path):
    a = FakeChatModel(["word " * 200], delay=0.01)
    b = FakeChatModel(["vote " * 200], delay=0.01)
    it = stream_battle((a, b), [Message("user", "go")], SamplingParams(greedy=True, max_tokens=200))
    next(it)
    it.close()
    time.sleep(0.1)
    assert a.produced < 100 and b.produced < 100


def test_arena_model_checks(tmp_path):
    with pytest.raises(InvalidParameter, match="at least two different models"):
        Arena(["fake:x"], db=ArenaDB(tmp_path / "a.db"))
    with pytest.raises(InvalidParameter, match="at least two different models"):
        Arena(["fake:x", "fake:x"], db=ArenaDB(tmp_path / "a.db"))
    with pytest.raises(Exception, match="no-such-model"):
        Arena(["fake:x", "no-such-model"], db=ArenaDB(tmp_path / "a.db"))
    arena, _ = _arena(tmp_path)
    with pytest.raises(InvalidParameter, match="not one of this arena's models"):
        arena.battle("hi", pair=("fake:Paris is the capital.", "fake:other"))
    with pytest.raises(InvalidParameter, match="non-empty prompt"):
        arena.battle("  ")


# -- the judge ---------------------------------------------------------------------------
def _judge_for(word):
    """A judge that picks the answer containing ``word`` (A or B, by where it sits)."""
    def respond(request):
        text = request.prompt or ""
        a = text.split("[Answer A]")[-1].split("[Answer B]")[0]
        return "A" if word in a else "B"
    return FakeChatModel(responder=respond)


def test_the_judge_is_asked_twice_with_the_answers_swapped():
    v = judge_battle(_judge_for("Paris"), "Capital of France?", "Paris.", "London.")
    assert (v.first, v.swapped, v.winner, v.consistent) == ("A", "B", "model_a", True)
    v = judge_battle(_judge_for("Paris"), "Capital of France?", "London.", "Paris.")
    assert v.winner == "model_b"
    biased = FakeChatModel(["A"])  # always prefers the first slot: its verdict flips, so it is a tie
    v = judge_battle(biased, "Capital of France?", "Paris.", "London.")
    assert (v.first, v.swapped, v.winner, v.consistent) == ("A", "A", "tie", False)


def test_agreement_percent_and_cohens_kappa():
    pairs = [("model_a", "model_a")] * 6 + [("model_b", "model_b")] * 3 + [("model_a", "model_b")] + \
        [("tie (bothbad)", "tie")] * 2
    ag = agreement(pairs)
    assert ag.n == 12 and ag.agree == 11 and ag.percent == pytest.approx(100 * 11 / 12)
    from sklearn.metrics import cohen_kappa_score

    h = [p[0].replace("tie (bothbad)", "tie") for p in pairs]
    j = [p[1] for p in pairs]
    assert ag.kappa == pytest.approx(cohen_kappa_score(h, j))
    assert ag.confusion["model_a"]["model_b"] == 1
    assert agreement([]).percent is None and agreement([("model_a", "model_a")]).kappa is None


def test_run_judge_judges_new_and_stored_battles_and_compares_with_votes(tmp_path):
    from genstack.arena.judge import run_judge

    arena, _ = _arena(tmp_path)
    voted = arena.battle("Capital of France?", params=SamplingParams(greedy=True))
    paris_side = "a" if "Paris" in voted.answer_a else "b"
    arena.vote(voted.id, paris_side)
    report = run_judge(arena, _judge_for("Paris"), "judge-x", prompts=["Capital of France, again?"])
    assert report.judged == 2 and report.consistent == 2
    assert report.human.n == 1 and report.human.agree == 1
    assert len(arena.db.judgements("judge-x")) == 2
    assert len(arena.db.outcomes(judge="judge-x")) == 2
    again = run_judge(arena, _judge_for("Paris"), "judge-x")  # nothing new to judge
    assert again.judged == 0 and again.human.n == 1


# -- the CLI -----------------------------------------------------------------------------
def test_cli_battle_vote_leaderboard_export_import(home, capsys, monkeypatch, tmp_path):
    import io

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is the capital of France?\n# a comment\n{\"prompt\": \"And of Spain?\"}\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("a\ntie\n"))
    code = run(["arena", "battle", "--models", "fake:Paris.,fake:London.", "--prompts", str(prompts),
                "--greedy", "--draw-seed", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "== Model A" in out and "== Model B" in out and out.count("A was fake:") == 2
    assert out.index("== Model A") < out.index("A was")  # the names come after the answers
    assert run(["arena", "leaderboard", "--json", "--bootstrap", "10"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["battles"] == 2 and {r["model"] for r in board["models"]} == {"fake:Paris.", "fake:London."}
    assert run(["arena", "leaderboard", "--bootstrap", "0"]) == 0
    table = capsys.readouterr().out
    assert "Bradley–Terry" in table and "fake:Paris." in table and "predicted win rate" in table
    export = tmp_path / "battles.jsonl"
    assert run(["arena", "export", "--output", str(export)]) == 0
    assert len(export.read_text().splitlines()) == 2
    assert run(["arena", "import", str(export)]) == 0
    assert "imported 0 battles, 2 already stored" in capsys.readouterr().out


def test_cli_no_vote_then_vote_by_id(home, capsys, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hi\n")
    assert run(["arena", "battle", "--models", "fake:x,fake:y", "--prompts", str(prompts), "--no-vote",
                "--greedy"]) == 0
    assert "stored without a vote" in capsys.readouterr().out
    assert run(["arena", "list", "--unvoted", "--json"]) == 0
    bid = json.loads(capsys.readouterr().out)[0]["id"]
    assert run(["arena", "vote", bid, "bothbad"]) == 0
    assert "tie (bothbad)" in capsys.readouterr().out
    assert run(["arena", "vote", bid, "a"]) == 2
    assert "already has a vote" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["arena", "battle", "--models", "fake:x"], "at least two different models"),
    (["arena", "battle", "--models", "fake:x,no-such-model"], "no-such-model"),
    (["arena", "vote", "nope", "a"], "no battle with id 'nope'"),
    (["arena", "leaderboard"], "at least two models"),
    (["arena", "leaderboard", "--method", "glicko"], "method must be one of"),
])
def test_cli_bad_input_is_one_line(home, capsys, args, message):
    assert run(args) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_import_of_a_malformed_file_keeps_what_is_stored(home, capsys, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "model_a"}) + "\n")
    assert run(["arena", "import", str(good)]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"model_a": "x", "model_b": "z", "winner": "tie"}) + "\n{oops\n")
    assert run(["arena", "import", str(bad)]) == 2
    assert "line 2: not valid JSON" in capsys.readouterr().err
    assert run(["arena", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model_a"], r["model_b"]) for r in rows] == [("x", "y")]


def test_a_file_that_is_not_a_database_is_a_one_line_error(home, capsys):
    home.mkdir(parents=True, exist_ok=True)
    (home / "arena.db").write_bytes(b"not a database at all, " * 100)
    assert run(["arena", "list"]) == 1
    err = capsys.readouterr().err
    assert "cannot open the arena database" in err and err.count("\n") == 1


def test_an_empty_answer_is_shown_as_such_not_as_a_blank(tmp_path, capsys):
    from genstack.cli.arena_cmd import EMPTY, _run_one

    arena, _ = _arena(tmp_path, replies=("", "Paris."))
    res = _run_one(arena, "Capital of France?", SamplingParams(greedy=True), None, json_out=False)
    out = capsys.readouterr().out
    assert "" in (res.answer_a, res.answer_b) and out.count(EMPTY) == 1 and "Paris." in out
