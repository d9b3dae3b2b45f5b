"""genstack ingest, genstack search, genstack collections."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..choices import CHUNK_OVERLAP, CHUNK_SIZE
from . import _common

collections_app = typer.Typer(help="List, inspect and delete collections.", no_args_is_help=True)

COLLECTION = typer.Option("default", "--collection", "-c", help="Collection name.")


def _filters(items: Optional[List[str]]) -> dict:
    from ..errors import InvalidParameter

    out: dict = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidParameter(f"--filter takes KEY=VALUE, got {item!r}")
        out.setdefault(key, []).append(value)
    return {k: (v[0] if len(v) == 1 else v) for k, v in out.items()}


def ingest(
    paths: List[Path] = typer.Argument(..., help="Files and folders to ingest."),
    collection: str = COLLECTION,
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help=f"Most tokens per chunk (embedder's tokenizer). [default: {CHUNK_SIZE}; an existing collection keeps its own]"),
    overlap: Optional[int] = typer.Option(None, "--overlap", help=f"Tokens shared by consecutive chunks. [default: {CHUNK_OVERLAP}; an existing collection keeps its own]"),
    include: Optional[List[str]] = typer.Option(None, "--include", help="Only files matching this glob (repeatable)."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Skip files matching this glob (repeatable)."),
    prune: bool = typer.Option(False, "--prune", help="Remove chunks of files deleted from the folders given."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedder for a new collection: a registered name, NAME@bf16 for bf16 arithmetic, a model folder, openai:MODEL@URL or a plugin's. An existing collection keeps its own. [default: minilm-l6-v2, in bf16 where the CPU has bf16 instructions (the embed_precision setting)]"),
    store: Optional[str] = typer.Option(None, "--store", help="Store backend for a new collection: sqlite, lancedb (the [lancedb] extra) or a plugin's. [default: the store setting, sqlite]"),
    text_field: str = typer.Option("text", "--text-field", help="Field holding the text in .json/.jsonl records."),
    csv_rows: bool = typer.Option(False, "--csv-rows", help="One document per CSV row."),
    ray: bool = typer.Option(False, "--ray", help="Load, split and embed on a Ray cluster (the [ray] extra): ray.init() joins RAY_ADDRESS or starts a local cluster. This process stays the only writer; the files must be at the same paths on every node."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", metavar="HOST:PORT", help="Join this Ray cluster (implies --ray)."),
    ray_workers: Optional[int] = typer.Option(None, "--ray-workers", help="Ray actors, one CPU each. [default: one per CPU of the cluster]"),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Load, split, embed and store documents; unchanged files are skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..documents import LoaderOptions
    from ..ingestion import ingest as run_ingest
    from ..stores.collections import check_name

    check_name(collection)
    settings = _common.settings()
    err = _common.console(stderr=True)
    state = {"chunks": 0}
    with Progress(
        TextColumn("[bold]ingest[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
        TextColumn("{task.fields[chunks]} chunks, {task.fields[rate]} chunks/s"), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(),
        console=err, transient=True, disable=json_out or not err.is_terminal,
    ) as bar:
        task = bar.add_task("ingest", total=None, chunks=0, rate="0")
        import time

        t0 = time.perf_counter()
        # without a terminal (a log, a pipe, CI) the bar is off: a progress line at most every 5 s instead
        lines = not err.is_terminal and not json_out
        state.update(files=0, total=0, part=0, said=float("-inf"))  # the first event is reported at once

        def say(what: str = "") -> None:
            now = time.perf_counter()
            if lines and now - state["said"] >= 5:
                state["said"] = now
                shown = state["chunks"] + state["part"]
                rate = shown / max(now - t0, 1e-6)
                sys.stderr.write(f"ingest: {state['files']}/{state['total']} files, {shown} chunks, "
                                 f"{rate:.0f} chunks/s{what}\n")
                sys.stderr.flush()

        def progress(event: str, data: dict) -> None:
            if event == "part":  # a big file, stored part by part as it is split
                state["part"] = data["chunks"]
                shown = state["chunks"] + state["part"]
                bar.update(task, chunks=shown, rate=f"{shown / max(time.perf_counter() - t0, 1e-6):.0f}")
                say(f"; {Path(data['path']).name}: {data['chunks']} chunks stored")
                return
            if event == "engine":
                if not json_out:
                    sys.stderr.write(f"ingest: {data['workers']} Ray workers\n")
                return
            if event == "keyword-index":
                if data["status"] == "start":
                    bar.update(task, description="keyword index")
                    state["said"] = float("-inf")
                    say("; building the keyword index")
                elif data["status"] == "failed":
                    sys.stderr.write(f"ingest: warning: the sparse keyword index was not built ({data['reason']}); "
                                     "FTS5 answers keyword search\n")
                return
            if event == "start":
                state["total"] = data["files"]
                bar.update(task, total=data["files"])
            elif event == "file":
                if data.get("status") != "removed":
                    bar.advance(task)
                    state["files"] += 1
                state["chunks"] += data.get("chunks", 0)
                state["part"] = 0
                rate = state["chunks"] / max(time.perf_counter() - t0, 1e-6)
                bar.update(task, chunks=state["chunks"], rate=f"{rate:.0f}")
                if data.get("status") == "failed" and err.is_terminal:
                    err.print(f"[red]failed[/] {data['path']}: {data.get('reason', '')}", highlight=False)
                say()

        report = run_ingest(
            [str(p) for p in paths], collection, settings=settings, embedder=embedder, store=store,
            chunk_size=chunk_size, overlap=overlap, include=include or (), exclude=exclude or (), prune=prune,
            loader_options=LoaderOptions(text_field=text_field, csv_rows=csv_rows), progress=progress,
            ray=ray_address or ray, ray_workers=ray_workers,
        )
    if json_out:
        _common.print_json(report.to_dict())
    else:
        from rich.table import Table

        table = Table(title=f"collection {collection!r}", box=None)
        for col in ("added", "updated", "unchanged", "removed", "failed", "chunks", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(str(report.added), str(report.updated), str(report.unchanged), str(report.removed),
                      str(len(report.failed)), str(report.chunks), f"{report.seconds:.1f}")
        _common.console().print(table)
        if not err.is_terminal:
            for path, reason in report.failed:
                sys.stderr.write(f"failed: {path}: {reason}\n")
        for path, i, kind, evidence in report.flags[:20]:
            sys.stderr.write(f"warning: {kind} in {path} chunk {i}: {evidence}\n")
        if len(report.flags) > 20:
            sys.stderr.write(f"warning: {len(report.flags) - 20} more flags (see --json)\n")
    if report.failed:
        raise typer.Exit(1)


def search(
    query: str = typer.Argument(..., help="What to look for."),
    collection: str = COLLECTION,
    mode: str = typer.Option("hybrid", "--mode", help="dense, bm25 or hybrid."),
    k: int = typer.Option(5, "--k", "-k", help="How many results."),
    filter_: Optional[List[str]] = typer.Option(None, "--filter", help="KEY=VALUE metadata filter (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Search a collection: a table of source, score and snippet."""
    from ..retrieval import search as run_search

    hits = run_search(collection, query, k=k, mode=mode, filters=_filters(filter_), settings=_common.settings())
    if json_out:
        _common.print_json([h.to_dict() for h in hits])
        return
    if not hits:
        print("no results")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_lines=False)
    for col in ("#", "source", "score", "snippet"):
        table.add_column(col)
    for i, h in enumerate(hits, start=1):
        where = Path(h.source).name
        if h.metadata.get("page"):
            where += f" p.{h.metadata['page']}"
        elif h.metadata.get("heading_path"):
            where += f" § {h.metadata['heading_path']}"
        snippet = " ".join(h.text.split())
        table.add_row(str(i), Text(where), f"{h.score:.3f}", Text(snippet[:160] + ("…" if len(snippet) > 160 else "")))
    _common.console().print(table)


@collections_app.command("list")
def collections_list(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every collection with its chunk and source counts."""
    from ..stores import list_collections

    rows = list_collections(_common.settings())
    if json_out:
        _common.print_json(rows)
        return
    if not rows:
        print("no collections yet: genstack ingest PATH --collection NAME")
        return
    from rich.table import Table

    table = Table(box=None)
    for col in ("name", "chunks", "sources", "embedder", "size"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["chunks"]), str(r["sources"]), str(r["embedder"]), _common.human_bytes(r["bytes"]))
    _common.console().print(table)


@collections_app.command("info")
def collections_info(
    name: str = typer.Argument(..., help="Collection name."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Embedder, counts and the stored sources of one collection."""
    from ..stores import open_collection

    store = open_collection(name, _common.settings())
    try:
        info = {"name": name, "store": type(store).name, "path": store.location, "embedder": store.embedder, "dim": store.dim,
                "chunks": store.count(), "sources": store.sources()}
    finally:
        store.close()
    if json_out:
        _common.print_json(info)
        return
    print(f"name:      {name}\npath:      {info['path']}\nembedder:  {info['embedder']} ({info['dim']} dims)")
    print(f"chunks:    {info['chunks']}\nsources:   {len(info['sources'])}")
    for s in info["sources"]:
        print(f"  {s['chunks']:>6}  {s['source']}")


@collections_app.command("delete")
def collections_delete(
    name: str = typer.Argument(..., help="Collection name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a collection and everything stored in it."""
    from ..stores import delete_collection, open_collection

    open_collection(name, _common.settings()).close()  # a clear error if it does not exist
    if not yes:
        if not sys.stdin.isatty():
            from ..errors import InvalidParameter

            raise InvalidParameter("refusing to delete without confirmation: pass --yes")
        typer.confirm(f"Delete collection {name!r}?", abort=True)
    delete_collection(name, _common.settings())
    print(f"deleted {name}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.add_typer(collections_app, name="collections")
