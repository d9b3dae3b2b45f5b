"""genstack demo: the whole recipe on the sample corpus shipped in the package."""

from __future__ import annotations

import sys

import typer

from . import _common

QUESTIONS = (
    "What is the capacity of the Brewmaster K7 kettle?",
    "Which comet did Ilona Varga discover?",
    "Who won the football World Cup in 2014?",
)


def demo(
    collection: str = typer.Option("sample", "--collection", "-c", help="Collection to ingest the sample corpus into."),
) -> None:
    """Ingest the sample corpus, then ask three questions (one the documents cannot answer)."""
    from ..evaluation.rag import sample_corpus
    from ..ingestion import ingest
    from ..rag.pipeline import Asker
    from .rag_cmd import _print_sources

    settings = _common.settings()
    console = _common.console()
    corpus = sample_corpus()
    console.print(f"[bold]1. ingest[/] {corpus}")
    rep = ingest([corpus], collection, settings=settings)
    console.print(f"   {rep.added} added, {rep.updated} updated, {rep.unchanged} unchanged, {rep.chunks} chunks "
                  f"in {rep.seconds:.1f} s → collection '{collection}'")
    asker = Asker(collection, settings=settings)
    try:
        for i, q in enumerate(QUESTIONS, start=2):
            console.print(f"\n[bold]{i}. genstack ask[/] \"{q}\" -c {collection}")
            stream = asker.stream(q)
            pieces = [p for p in stream]
            ans = stream.answer
            assert ans is not None
            sys.stdout.write(ans.text + "\n")
            if ans.abstained and ans.reason:
                console.print(f"   [dim](abstained: {ans.reason}; best similarity {ans.similarity:.2f}; "
                              f"model draft: {''.join(pieces).strip()[:80]!r})[/]" if ans.draft else
                              f"   [dim](abstained: {ans.reason}; best similarity {ans.similarity:.2f})[/]")
            _print_sources(ans, console)
            sys.stdout.flush()
    finally:
        asker.close()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
