"""genstack eval: quality measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _common

app = typer.Typer(help="Measure quality: retrieval on BEIR data, end-to-end RAG.", no_args_is_help=True)


@app.command("retrieval")
def retrieval(
    beir: Path = typer.Option(..., "--beir", help="A BEIR-format folder (corpus.jsonl, queries.jsonl, qrels)."),
    split: str = typer.Option("test", "--split", help="Which judgements to use."),
    mode: Optional[str] = typer.Option(None, "--mode", help="dense, bm25 or hybrid. [default: all three]"),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedder for the corpus collection."),
    collection: Optional[str] = typer.Option(None, "--collection", help="Collection for the corpus. [default: beir-<folder>]"),
    chunk_size: int = typer.Option(200, "--chunk-size", help="Tokens per chunk when ingesting the corpus."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 of each retrieval mode on a BEIR dataset."""
    from ..evaluation.retrieval import evaluate_beir

    modes = (mode,) if mode else ("dense", "bm25", "hybrid")
    res = evaluate_beir(beir, split=split, modes=modes, settings=_common.settings(), embedder=embedder,
                        collection=collection, chunk_size=chunk_size)
    if json_out:
        _common.print_json(res)
        return
    from rich.table import Table

    table = Table(title=f"{beir.name} ({split}, {res['queries']} queries, {res['embedder']})", box=None)
    for col in ("mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "ms/query"):
        table.add_column(col, justify="right")
    for m, r in res["modes"].items():
        table.add_row(m, f"{r['ndcg@10']:.4f}", f"{r['recall@10']:.4f}", f"{r['recall@100']:.4f}",
                      f"{r['mrr@10']:.4f}", f"{r['ms_per_query']:.1f}")
    _common.console().print(table)


@app.command("rag")
def rag(
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="JSONL of {question, source, facts}. [default: the built-in 44 questions]"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection to ask. [default: the sample corpus, ingested as 'sample']"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path."),
    template: Optional[str] = typer.Option(None, "--template", help="Ask template: zero_shot, one_shot, few_shot, cot, or FILE.toml[:NAME]."),
    k: int = typer.Option(4, "--k", "-k", help="Chunks retrieved per question."),
    mode: str = typer.Option("hybrid", "--mode", help="dense, bm25 or hybrid."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON with every question's row."),
) -> None:
    """Hit@5, key-fact accuracy, citation precision and abstention of `ask` on a question set."""
    from ..evaluation.rag import evaluate_rag, load_rag_dataset, sample_corpus
    from ..rag.answer import Asker

    settings = _common.settings()
    items = load_rag_dataset(dataset)
    if collection is None:
        from ..ingest import ingest

        collection = "sample"
        ingest([sample_corpus()], collection, settings=settings)
    asker = Asker(collection, model=model, settings=settings, template=template, k=k, mode=mode)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = _common.console(stderr=True)
    try:
        with Progress(TextColumn("[bold]eval rag[/]"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True, disable=json_out or not err.is_terminal) as bar:
            task = bar.add_task("rag", total=len(items))
            res = evaluate_rag(asker, items, progress=lambda done, total: bar.update(task, completed=done))
    finally:
        asker.close()
    if json_out:
        _common.print_json(res)
        return
    from rich.table import Table

    s = res["summary"]
    table = Table(title=f"RAG evaluation: {s['questions']} questions ({s['unanswerable']} unanswerable)", box=None)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("hit@5", "fact", "citation_precision", "abstention", "false_abstention", "ttft_s_median", "seconds_median"):
        v = s.get(key)
        table.add_row(key, "-" if v is None else f"{v:.3f}")
    _common.console().print(table)
