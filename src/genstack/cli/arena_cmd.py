"""genstack arena: battles between models, votes, leaderboards, LLM-as-judge."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import _common
from ._options import GREEDY, MAX_TOKENS, MIN_P, REPEAT, SEED, STOP, TEMPERATURE, TOP_K, TOP_P, _params

app = typer.Typer(help="Compare models side by side: battles, votes, Elo and Bradley–Terry leaderboards.",
                  no_args_is_help=True)

MODELS = typer.Option(..., "--models", help="Two or more models, comma-separated (registry names, .gguf paths, "
                      "openai:MODEL@URL or [models.NAME] names).")


def _names(models: str) -> list[str]:
    return [m.strip() for m in models.split(",") if m.strip()]


def _arena(models: str, seed: Optional[int] = None):
    from ..arena import Arena

    return Arena(_names(models), settings=_common.settings(), seed=seed)


def _voter() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:
        return "cli"


@app.command("battle")
def battle(
    models: str = MODELS,
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="A file of prompts: one per line, or JSON lines "
                                           "with 'prompt'. Without it, type prompts (an empty line ends)."),
    vote: bool = typer.Option(True, "--vote/--no-vote", help="Ask for a vote after each battle (--no-vote stores "
                              "the battles unvoted; vote later with `genstack arena vote ID`)."),
    system: Optional[str] = typer.Option(None, "--system", "-s", help="System prompt both sides get."),
    temperature: float = TEMPERATURE,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    min_p: float = MIN_P,
    repeat_penalty: float = REPEAT,
    max_tokens: int = MAX_TOKENS,
    seed: Optional[int] = SEED,
    greedy: bool = GREEDY,
    stop: Optional[List[str]] = STOP,
    draw_seed: Optional[int] = typer.Option(None, "--draw-seed", help="Seed of the draw of pairs (default: random)."),
    json_out: bool = typer.Option(False, "--json", help="Print each battle as one JSON line (names included)."),
) -> None:
    """Battle two anonymised models on each prompt, answers side by side; vote A, B, tie or both bad.

    Pairs are drawn so that every pair of models gets its share of battles, with random sides.
    Both sides run at once with the same decoding parameters (a sampled battle gets one seed for
    both), and everything is stored in <data_dir>/arena.db. The names show only after the vote.
    """
    from ..arena.battles import load_prompts

    params = _params(temperature, top_k, top_p, min_p, repeat_penalty, max_tokens, seed, greedy, stop)
    arena = _arena(models, draw_seed)
    items = load_prompts(prompts) if prompts else None
    out, err = sys.stdout, _common.console(stderr=True)
    n = 0
    while True:
        if items is not None:
            if n >= len(items):
                break
            prompt = items[n]
        else:
            prompt = (_ask("prompt (an empty line ends):") or "").strip()
            if not prompt:
                break
        n += 1
        result = _run_one(arena, prompt, params, system, json_out=json_out)
        if json_out and not vote:
            out.write(_json_line(result.to_dict()))
            continue
        if vote:
            choice = _ask("vote: a, b, tie, bothbad (s skips):")
            while choice is not None and choice.strip().lower() not in VOTES:
                choice = _ask("type a, b, tie or bothbad (s skips):")
            if choice is None or choice.strip().lower() in ("s", "skip"):
                err.print(f"skipped; vote later: genstack arena vote {result.id} a|b|tie|bothbad")
                continue
            stored = arena.vote(result.id, choice, voter=_voter())
            if json_out:
                out.write(_json_line({**result.to_dict(), "winner": stored["winner"]}))
            else:
                out.write(f"A was {result.model_a}, B was {result.model_b}: {stored['winner']} "
                          f"(battle {result.id})\n")
        else:
            out.write(f"battle {result.id} stored without a vote\n")
    if n == 0:
        from ..errors import InvalidParameter

        raise InvalidParameter("no prompt was given")


VOTES = ("a", "b", "tie", "t", "bothbad", "both-bad", "x", "s", "skip")


def _ask(question: str) -> str | None:
    """A line from standard input after ``question`` on stderr; None at the end of input."""
    sys.stderr.write(question + " ")
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("\n")
        return None
    return line.rstrip("\n")


def _json_line(d) -> str:
    import json

    return json.dumps(d, ensure_ascii=False) + "\n"


#: what an empty answer looks like, so a vote is never cast on a blank that looks like a display fault
EMPTY = "(no answer: the model returned nothing)"


def _shown(answer: str) -> str:
    return answer if answer.strip() else EMPTY


def _run_one(arena, prompt: str, params, system, *, json_out: bool):
    """One battle, both answers shown side by side while they stream (on a terminal) or at the end."""
    con = _common.console()
    live_ok = con.is_terminal and not json_out
    texts = {"a": "", "b": ""}
    result = None
    if live_ok:
        from rich.columns import Columns
        from rich.live import Live
        from rich.panel import Panel

        def view():
            return Columns([Panel(texts["a"] or "…", title="Model A", width=con.width // 2 - 1),
                            Panel(texts["b"] or "…", title="Model B", width=con.width // 2 - 1)])

        with Live(view(), console=con, refresh_per_second=8) as live:
            for kind, item in arena.stream(prompt, params=params, system=system):
                if kind == "done":
                    result = item
                elif kind in texts:
                    texts[kind] = texts[kind] + item if isinstance(item, str) else _shown(item.text)
                    live.update(view())
    else:
        for kind, item in arena.stream(prompt, params=params, system=system):
            if kind == "done":
                result = item
        if not json_out:
            sys.stdout.write(f"\n== prompt\n{prompt}\n\n== Model A\n{_shown(result.answer_a)}\n\n"
                             f"== Model B\n{_shown(result.answer_b)}\n\n")
            sys.stdout.flush()
    return result


@app.command("vote")
def vote_cmd(
    battle_id: str = typer.Argument(..., help="The battle's id (`genstack arena list` shows them)."),
    winner: str = typer.Argument(..., help="a, b, tie or bothbad."),
) -> None:
    """Vote on a stored battle that has no vote yet; prints who A and B were."""
    from ..arena import ArenaDB

    db = ArenaDB.for_settings(_common.settings())
    b = db.vote(battle_id, winner, voter=_voter())
    sys.stdout.write(f"A was {b['model_a']}, B was {b['model_b']}: {b['winner']}\n")


@app.command("list")
def list_cmd(
    limit: int = typer.Option(20, "--limit", help="Most recent battles to show."),
    unvoted: bool = typer.Option(False, "--unvoted", help="Only battles without a vote."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The most recent battles (id, models, vote, prompt)."""
    from ..arena import ArenaDB
    from ..errors import InvalidParameter

    if limit < 1:
        raise InvalidParameter("--limit must be at least 1")
    db = ArenaDB.for_settings(_common.settings())
    rows = db.battles(voted=False if unvoted else None)[-limit:]
    if json_out:
        _common.print_json(rows)
        return
    if not rows:
        sys.stdout.write("no battles yet: genstack arena battle --models A,B\n")
    for b in rows:
        prompt = " ".join(b["prompt"].split())
        sys.stdout.write(f"{b['id']}  {b['model_a']} vs {b['model_b']}  {b['winner'] or '(no vote)'}  "
                         f"{prompt[:60]}{'…' if len(prompt) > 60 else ''}\n")


@app.command("leaderboard")
def leaderboard_cmd(
    method: str = typer.Option("bt", "--method", help="bt (Bradley–Terry, maximum likelihood) or elo (online)."),
    bootstrap: int = typer.Option(100, "--bootstrap", help="Bootstrap rounds for the 95% intervals (0 = none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    k: float = typer.Option(4.0, "--k", help="Elo step (--method elo)."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Rate by this judge model's verdicts instead of votes."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write ratings.png and win_rate.png into this folder."),
    json_out: bool = typer.Option(False, "--json", help="Print the leaderboard as JSON."),
) -> None:
    """Ratings with 95% bootstrap intervals, ranks shared where intervals overlap, battles per model,
    and the observed and predicted win-rate matrices."""
    from ..arena import ArenaDB, leaderboard

    db = ArenaDB.for_settings(_common.settings())
    board = leaderboard(db.outcomes(judge=judge), method=method, bootstrap=bootstrap, seed=seed, k=k)
    if json_out:
        _common.print_json(board.to_dict())
    else:
        _print_board(board)
    if plot:
        from ..arena import plot_leaderboard

        for p in plot_leaderboard(board, plot):
            sys.stderr.write(f"wrote {p}\n")


def _print_board(board) -> None:
    from rich.table import Table

    con = _common.console()
    t = Table(title=f"{'Bradley–Terry' if board.method == 'bt' else 'Elo'} ratings, {board.n_battles} battles"
              + (f", 95% intervals from {board.bootstrap} bootstrap rounds" if board.bootstrap else ""))
    for col in ("rank", "model", "rating", "95% interval", "battles", "W/L/T"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for m in board.models:
        ci = f"{board.lower[m]:.0f} – {board.upper[m]:.0f}" if board.lower else "-"
        t.add_row(str(board.rank[m]), m, f"{board.ratings[m]:.0f}", ci, str(board.battles[m]),
                  f"{board.wins[m]}/{board.losses[m]}/{board.ties[m]}")
    con.print(t)
    for title, matrix in (("observed win rate (row beats column, ties left out)", board.win_rate),
                          ("predicted win rate", board.predicted)):
        w = Table(title=title)
        w.add_column("")
        for m in board.models:
            w.add_column(m, justify="right")
        for a in board.models:
            w.add_row(a, *("-" if matrix[a][b] is None else f"{matrix[a][b]:.2f}" for b in board.models))
        con.print(w)


@app.command("export")
def export_cmd(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Voted battles as JSON lines in the public Chatbot Arena layout (model_a, model_b, winner, judge,
    conversation_a, conversation_b, tstamp, …)."""
    import json

    from ..arena import ArenaDB

    db = ArenaDB.for_settings(_common.settings())
    fh = open(output, "w", encoding="utf-8") if output else sys.stdout
    n = 0
    try:
        for rec in db.export():
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    finally:
        if output:
            fh.close()
    if output:
        sys.stderr.write(f"wrote {n} battles to {output}\n")


@app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="JSON lines (or one JSON array, as FastChat's clean_battle files) in the "
                                "Chatbot Arena layout: model_a, model_b, winner, and optionally question_id, "
                                "judge, conversation_a/_b, tstamp."),
) -> None:
    """Import battles with votes; all or nothing (a malformed line is an error and nothing is added),
    and battles already stored (same question_id) are skipped."""
    from .._files import read_user_text
    from ..arena import ArenaDB
    from ..errors import InvalidParameter

    text = read_user_text(path, "battle file", InvalidParameter)
    db = ArenaDB.for_settings(_common.settings())
    added, skipped = db.import_records([text])
    sys.stdout.write(f"imported {added} battles" + (f", {skipped} already stored" if skipped else "") + "\n")


@app.command("judge")
def judge_cmd(
    models: str = MODELS,
    judge: str = typer.Option(..., "--judge", help="The judge model."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Prompts for new battles, judged as they finish."),
    existing: bool = typer.Option(True, "--existing/--no-existing", help="Also judge the stored battles among "
                                  "--models that this judge has not judged yet."),
    template: Optional[str] = typer.Option(None, "--template", help="Judging template: a name, FILE.toml or "
                                           "FILE.toml:NAME. [default: judge.pairwise]"),
    calibrate: bool = typer.Option(False, "--calibrate", help="Divide the judge's label probabilities by those it "
                                   "gives two content-free answers (removes a fixed preference for a slot)."),
    max_tokens: int = MAX_TOKENS,
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Battles judged by a model, each twice with the answers swapped (a verdict that flips with the
    position counts as a tie); reports agreement with human votes (percent and Cohen's kappa).

    The bundled 135M and 270M models are not usable judges: they pick the first slot every time, so
    every verdict becomes a tie (benchmarks/RESULTS.md). Judge with a larger model (openai:MODEL@URL).
    """
    from ..arena.battles import load_prompts
    from ..arena.judge import run_judge
    from ..errors import InvalidParameter
    from ..generation import SamplingParams
    from ..models.registry import check_model_name, get_model

    settings = _common.settings()
    arena = _arena(models)
    check_model_name(judge, settings)
    items = load_prompts(prompts) if prompts else []
    if not items and not existing:
        raise InvalidParameter("nothing to judge: give --prompts, or leave --existing on")
    judge_model = get_model(judge, settings=settings)
    err = _common.console(stderr=True)

    def progress(done, total):
        if not err.is_terminal:
            sys.stderr.write(f"judged {done}/{total}\n")

    report = run_judge(arena, judge_model, judge, prompts=items, existing=existing,
                       params=SamplingParams(greedy=True, max_tokens=max_tokens), progress=progress,
                       template=template, calibrate=calibrate)
    if json_out:
        _common.print_json(report.to_dict())
        return
    out = sys.stdout
    out.write(f"judge {judge}: {report.judged} battles judged\n")
    if report.judged:
        out.write(f"  position-consistent  {report.consistent}/{report.judged} "
                  f"({100 * report.consistent / report.judged:.0f}%)\n")
    out.write(f"  verdicts             A {report.winners['model_a']}, B {report.winners['model_b']}, "
              f"tie {report.winners['tie']}\n")
    h = report.human
    if h.n:
        kappa = "undefined" if h.kappa is None else f"{h.kappa:.2f}"
        out.write(f"  agreement with votes {h.agree}/{h.n} ({h.percent:.0f}%), Cohen's kappa {kappa}\n")
    else:
        out.write("  agreement with votes: no battle has both a vote and this judge's verdict\n")
    out.write(f"rate by this judge: genstack arena leaderboard --judge {judge}\n")
