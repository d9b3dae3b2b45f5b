"""genstack synth: synthetic, checked data from the user's own collections."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import _common

app = typer.Typer(help="Synthetic data from your own documents and examples: checked question-answer sets, labelled task examples.", no_args_is_help=True)


@app.command("qa")
def qa(
    collection: str = typer.Option(..., "--collection", "-c", help="The collection to write questions about."),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL to write (the format `genstack eval rag "
                                "--dataset` reads)."),
    n: int = typer.Option(20, "--n", help="Items to keep (about a quarter unanswerable when that kind is asked for)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The model that writes the questions (a bigger "
                                        "remote one writes better data: openai:MODEL@URL)."),
    kinds: str = typer.Option("factoid,quantity,unanswerable", "--kinds",
                              help="Comma-separated: factoid, quantity, multi-hop, unanswerable."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling of chunks and of the model."),
    temperature: float = typer.Option(0.3, "--temperature", "-t", help="The writer's sampling temperature (0 = greedy)."),
    k: int = typer.Option(5, "--k", help="The retrievable filter: the source chunk must be in the top k."),
    mode: str = typer.Option("hybrid", "--mode", help="Retrieval mode of the retrievable filter: dense, bm25, hybrid."),
    dedupe: float = typer.Option(0.9, "--dedupe", help="Drop a question this similar (cosine) to a kept one."),
    template: Optional[str] = typer.Option(None, "--template", help="free (the model picks question, answer and "
                                           "supporting sentence as JSON), a FILE.toml, or FILE.toml:NAME. "
                                           "[default: synth.<kind>, genstack picks the answer]"),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Question-answer items from a collection, each kept only if it passes checks: a well-formed
    question of the kind asked for, an answer supported by its chunk, a question that does not give the
    answer away, a source chunk that retrieval finds, and no near-duplicate. Unanswerable items swap a
    name for one no document mentions. Prints how many were generated, dropped by each check, and kept.

    The bundled 135M model keeps about a third of its attempts, and not every kept item is right
    (benchmarks/RESULTS.md): read the file before trusting it, or write with a bigger --model.
    """
    from ..choices import RETRIEVAL_MODES
    from ..errors import InvalidParameter
    from ..synth.qa import FILTERS, synth_qa, write_jsonl

    if mode not in RETRIEVAL_MODES:
        raise InvalidParameter(f"--mode must be one of {', '.join(RETRIEVAL_MODES)}, got {mode!r}")
    if k < 1:
        raise InvalidParameter("--k must be at least 1")
    if output.is_dir():
        raise InvalidParameter(f"--output {output} is a folder; give a file name")
    if not output.parent.exists():
        raise InvalidParameter(f"--output: folder {output.parent} does not exist")
    err = _common.console(stderr=True)

    def progress(done, total):
        if not err.is_terminal:
            sys.stderr.write(f"kept {done}/{total}\n")

    report = synth_qa(collection, n=n, model=model, kinds=kinds.split(","), seed=seed, settings=_common.settings(),
                      k=k, mode=mode, dedupe=dedupe, template=template, progress=progress,
                      temperature=temperature)
    write_jsonl(report.items, output)
    if json_out:
        _common.print_json({**report.to_dict(), "output": str(output)})
        return
    from rich.table import Table

    t = Table(title=f"synthetic items from {collection} by {report.model}")
    t.add_column("kind")
    t.add_column("generated", justify="right")
    t.add_column("kept", justify="right")
    for kind in report.generated:
        t.add_row(kind, str(report.generated[kind]), str(report.kept.get(kind, 0)))
    con = _common.console()
    con.print(t)
    drops = ", ".join(f"{f} {report.dropped[f]}" for f in (*FILTERS, "absent") if report.dropped.get(f))
    con.print(f"dropped by check: {drops or 'none'}")
    con.print(f"wrote {len(report.items)} items to {output} ({report.seconds:.0f} s); evaluate with: "
              f"genstack eval rag --collection {collection} --dataset {output}")
    if len(report.items) < n:
        con.print(f"[yellow]only {len(report.items)} of {n} items passed the checks within the attempt budget[/]")


@app.command("task")
def task_cmd(
    task: str = typer.Argument(..., help="sentiment, classify or extract."),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL to write (rows with text, label (extract: "
                                "fields) and chat messages; for sentiment and classify the format `genstack eval "
                                "task --dataset` reads)."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="classify: comma-separated labels."),
    schema: Optional[Path] = typer.Option(None, "--schema", help="extract: a JSON Schema file of the fields."),
    seeds: Optional[Path] = typer.Option(None, "--seeds", help="A JSONL of seed examples {\"text\", \"label\"}, at "
                                         "least one per label (extract: {\"text\"} rows). [default for sentiment: "
                                         "the 36 shipped anchors]"),
    n: int = typer.Option(30, "--n", help="Examples to keep, spread evenly over the labels."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The model that writes (a bigger remote one "
                                        "writes better data: openai:MODEL@URL)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling."),
    temperature: float = typer.Option(0.9, "--temperature", "-t", help="The writer's sampling temperature."),
    dedupe: float = typer.Option(0.9, "--dedupe", help="Drop a text this similar (cosine) to a seed or a kept one."),
    template: Optional[str] = typer.Option(None, "--template", help="FILE.toml or FILE.toml:NAME. [default: synth_task.write]"),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Labelled examples for sentiment, classification or extraction, written by the model from a
    few seeds and kept only if they pass checks: one well-formed line, not a copy of a seed, the
    label check, and no near-duplicate of a kept one. The label check of sentiment and classify is
    an embedding classifier built from the seeds giving the intended label; of extract, the same
    model's extraction is valid for --schema and every value in it occurs in the text.
    Prints how many were generated and kept per label and dropped by each check.
    """
    from ..errors import InvalidParameter
    from ..synth.qa import write_jsonl
    from ..synth.task import TASK_FILTERS, TASKS, load_seeds, synth_task

    if output.is_dir():
        raise InvalidParameter(f"--output {output} is a folder; give a file name")
    if not output.parent.exists():
        raise InvalidParameter(f"--output: folder {output.parent} does not exist")
    if task not in (*TASKS, "extract"):
        raise InvalidParameter(f"the task must be one of {', '.join((*TASKS, 'extract'))}, got {task!r}")
    if task == "classify" and not labels:
        raise InvalidParameter("classify needs --labels, e.g. --labels billing,delivery,other")
    if task == "extract":
        from ..prompts.structured import load_schema
        from ..synth.extract import EXTRACT_FILTERS, load_texts, synth_extract

        if schema is None or seeds is None:
            raise InvalidParameter("extract needs --schema FILE.json and --seeds FILE.jsonl of {\"text\"} rows")
        report = synth_extract(load_schema(schema), seeds=load_texts(seeds), n=n, model=model, seed=seed,
                               temperature=temperature, dedupe=dedupe, template=template, settings=_common.settings())
        filters = EXTRACT_FILTERS
    else:
        report = synth_task(task, labels=labels.split(",") if labels else None, seeds=load_seeds(seeds, task), n=n, model=model,
                            seed=seed, temperature=temperature, dedupe=dedupe, template=template,
                            settings=_common.settings())
        filters = TASK_FILTERS
    write_jsonl(report.items, output)
    if json_out:
        _common.print_json({**report.to_dict(), "output": str(output)})
        return
    from rich.table import Table

    t = Table(title=f"synthetic {task} examples by {report.model}")
    for col in ("label", "generated", "kept"):
        t.add_column(col, justify="right" if col != "label" else "left")
    for lab in report.generated:
        t.add_row(lab, str(report.generated[lab]), str(report.kept.get(lab, 0)))
    con = _common.console()
    con.print(t)
    drops = ", ".join(f"{f} {report.dropped[f]}" for f in filters if report.dropped.get(f))
    con.print(f"dropped by check: {drops or 'none'}")
    con.print(f"wrote {len(report.items)} examples to {output} ({report.seconds:.0f} s)")
    if len(report.items) < n:
        con.print(f"[yellow]only {len(report.items)} of {n} examples passed the checks within the attempt budget[/]")
