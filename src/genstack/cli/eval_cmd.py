"""genstack eval: quality measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _common

app = typer.Typer(help="Measure quality: retrieval metrics on BEIR data.", no_args_is_help=True)


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
