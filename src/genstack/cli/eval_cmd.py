"""genstack eval: quality measurements."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..choices import CHUNK_SIZE
from ..rag.config import DEFAULT_CONFIG
from . import _common

app = typer.Typer(help="Measure quality: text metrics, retrieval on BEIR data, end-to-end RAG.", no_args_is_help=True)


@app.command("retrieval")
def retrieval(
    beir: Path = typer.Option(..., "--beir", help="A BEIR-format folder (corpus.jsonl, queries.jsonl, qrels)."),
    split: str = typer.Option("test", "--split", help="Which judgements to use."),
    mode: Optional[str] = typer.Option(None, "--mode", help="dense, bm25 or hybrid. [default: all three]"),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedder for the corpus collection (NAME or NAME@bf16; see ingest --help)."),
    collection: Optional[str] = typer.Option(None, "--collection", help="Collection for the corpus. [default: beir-<folder>]"),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help=f"Tokens per chunk when ingesting the corpus. [default: {CHUNK_SIZE}; an existing collection keeps its own]"),
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


def _sample_collection(settings) -> str:
    """The sample corpus, ingested (unchanged files are skipped) as the collection "sample"."""
    from ..evaluation.rag import sample_corpus
    from ..ingestion import ingest

    ingest([sample_corpus()], "sample", settings=settings)
    return "sample"


@app.command("rag")
def rag(
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="JSONL of {question, source, facts}. [default: the built-in 44 questions]"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection to ask. [default: the sample corpus, ingested as 'sample']"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path."),
    template: Optional[str] = typer.Option(None, "--template", help="Ask template: zero_shot, one_shot, few_shot, cot, or FILE.toml[:NAME]."),
    k: int = typer.Option(DEFAULT_CONFIG.k, "--k", "-k", help="Chunks retrieved per question."),
    mode: str = typer.Option(DEFAULT_CONFIG.mode, "--mode", help="dense, bm25 or hybrid."),
    focus: int = typer.Option(DEFAULT_CONFIG.focus, "--focus", help="Most relevant sentences shown to the model (0 = whole chunks)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON with every question's row."),
) -> None:
    """Hit@5, key-fact accuracy, citation precision and abstention of `ask` on a question set."""
    from ..evaluation.rag import evaluate_rag, load_rag_dataset
    from ..rag.pipeline import Asker

    settings = _common.settings()
    items = load_rag_dataset(dataset)
    if collection is None:
        collection = _sample_collection(settings)
    asker = Asker(collection, model=model, settings=settings, template=template, k=k, mode=mode, focus=focus or None)
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


@app.command("agent")
def agent(
    tasks: Optional[Path] = typer.Option(None, "--tasks", help="A JSONL of tasks (id, task, answers, kind, needs). "
                                         "[default: the built-in 36 over the sample corpus]"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection the search and ask tools "
                                             "use. [default: the sample corpus, ingested as 'sample']"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path."),
    tools: str = typer.Option("calculator,search,ask", "--tools", help="The tools every task may use."),
    max_steps: int = typer.Option(4, "--max-steps", help="Model turns per task."),
    call_threshold: str = typer.Option("model", "--call-threshold", help="As for genstack agent: a number, model or none."),
    final_answer: bool = typer.Option(False, "--final-answer", help="As for genstack agent: every turn is a call, "
                                      "ending with final_answer(answer)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N tasks."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON with every task's row."),
) -> None:
    """Success rate, tool use and mean steps of `genstack agent` on a task set (calculator and lookups)."""
    from ..evaluation.agent import evaluate_agent, load_agent_tasks
    from ..models.registry import get_model
    from .agent_cmd import parse_threshold

    threshold = parse_threshold(call_threshold)
    settings = _common.settings()
    items = load_agent_tasks(tasks)[: limit if limit and limit > 0 else None]
    names = [t.strip() for t in tools.split(",") if t.strip()]
    if collection is None and {"search", "ask"} & set(names):
        collection = _sample_collection(settings)
    m = get_model(model or settings.default_model, settings=settings)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = _common.console(stderr=True)
    try:
        with Progress(TextColumn("[bold]eval agent[/]"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True, disable=json_out or not err.is_terminal) as bar:
            job = bar.add_task("agent", total=len(items))
            res = evaluate_agent(m, items, collection=collection, tools=names, max_steps=max_steps, settings=settings,
                                 threshold=threshold, final_answer=final_answer, progress=lambda done, total: bar.update(job, completed=done))
    finally:
        m.close()
    if json_out:
        _common.print_json(res.to_dict())
        return
    from rich.table import Table

    s = res.summary()
    table = Table(title=f"agent tasks: {s['tasks']} ({m.name}, tools {', '.join(names)})", box=None)
    for col in ("kind", "tasks", "success", "needed tools used", "mean steps", "hit step limit", "s/task"):
        table.add_column(col, justify="right")
    for kind, r in [*s["by_kind"].items(), ("all", s)]:
        table.add_row(kind, str(r["tasks"]), f"{r['success']:.0%}", f"{r['tools_used']:.0%}", f"{r['mean_steps']:.2f}",
                      f"{r['hit_step_limit']:.0%}", f"{r['seconds_mean']:.1f}")
    _common.console().print(table)


@app.command("task")
def task_cmd(
    kind: str = typer.Argument(..., help="sentiment, classify, translate or bullets."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="A JSONL with the set's fields. "
                                           "[default: the built-in checked set]"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path. [default: the "
                                        "default model; for translate the translate_model setting]"),
    method: str = typer.Option("embedding", "--method", help="sentiment, classify: embedding or llm, as for genstack task."),
    template: Optional[str] = typer.Option(None, "--template", help="zero_shot, one_shot, few_shot, cot, or FILE.toml[:NAME]."),
    calibrate: Optional[bool] = typer.Option(None, "--calibrate/--no-calibrate", help="sentiment, classify --method llm: "
                                             "contextual calibration of the label scores. [default: as genstack task]"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N items."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON with every item's row."),
) -> None:
    """Accuracy, chrF or bullet-summary checks of `genstack task` / `summarize` on a checked set."""
    from ..evaluation.tasks import evaluate_task_set, load_task_set
    from ..models.registry import get_model
    from ..rag.tasks import check_method

    settings = _common.settings()
    rows = load_task_set(kind, dataset)
    if limit and limit > 0:
        rows = rows[::max(1, len(rows) // limit)][:limit]  # spread over the classes, which the sets keep in blocks
    m = emb = None
    labelled = kind in ("sentiment", "classify")
    if labelled and check_method(method, "--method") == "embedding":
        from ..embeddings import get_embedder

        emb = get_embedder(None, settings=settings)
    else:  # translation, like genstack task translate, defaults to the translate_model setting
        default = (settings.translate_model or settings.default_model) if kind == "translate" else settings.default_model
        m = get_model(model or default, settings=settings)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = _common.console(stderr=True)
    try:
        with Progress(TextColumn(f"[bold]eval task {kind}[/]"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True, disable=json_out or not err.is_terminal) as bar:
            job = bar.add_task(kind, total=len(rows))
            res = evaluate_task_set(kind, rows, model=m, embedder=emb, method=method, template=template,
                                calibrate=calibrate, data_dir=settings.data_dir,
                                progress=lambda done, total: bar.update(job, completed=done))
    finally:
        if m is not None:
            m.close()
    if json_out:
        _common.print_json(res.to_dict())
        return
    s = res.summary()
    who = m.name if m is not None else f"embedder {emb.name}"
    lines = [f"{kind}: {s['items']} items ({who}, template {s['template']}"
             + (f", method {s['method']}" if "method" in s else "")
             + (f", calibrate {s['calibrate']}" if "calibrate" in s else "") + ")"]
    if kind in ("sentiment", "classify"):
        lines.append(f"accuracy {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}")
        lines.append("recall  " + "  ".join(f"{k} {v:.2f}" for k, v in s["recall"].items()))
    elif kind == "translate":
        lines.append(f"chrF {s['chrf']:.1f}")
    else:
        lines.append(f"format ok {s['format_ok']:.0%}  grounded bullets {s['grounded_bullets']:.0%}  "
                     f"acceptable {s['acceptable']:.0%}  ROUGE-Lsum {s['rougeLsum']:.3f}")
    lines.append(f"errors {s['errors']}  {s['seconds_mean']:.2f} s/item")
    sys.stdout.write("\n".join(lines) + "\n")


@app.command("metrics")
def metrics(
    pred: Path = typer.Option(..., "--pred", help="Predictions: one per line, or .jsonl."),
    ref: Path = typer.Option(..., "--ref", help="References: one per line, or .jsonl (a list = several references)."),
    metric: List[str] = typer.Option(..., "--metric", help="bleu, chrf, rouge, f1, em or accuracy (repeatable)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score predictions against references (sacrebleu, rouge-score, SQuAD-style EM/F1, accuracy)."""
    from ..evaluation.metrics import compute, read_texts

    preds = read_texts(pred, allow_lists=False)
    refs = read_texts(ref, allow_lists=True)
    results: dict = {"examples": len(preds)}
    for m in metric:
        results[m] = compute(m, preds, refs)
    if json_out:
        _common.print_json(results)
        return
    for m in metric:
        for k, v in results[m].items():
            if isinstance(v, float):
                sys.stdout.write(f"{k}\t{v:.4f}\n")


@app.command("bench")
def bench(
    tasks: Optional[List[str]] = typer.Argument(None, help="Tasks: arc_easy, piqa, truthfulqa_mc1, truthfulqa_mc2, lambada."),
    task_file: Optional[List[Path]] = typer.Option(None, "--task-file", help="A JSONL task (see docs); repeatable."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N examples of each task."),
    shots: int = typer.Option(0, "--shots", help="Few-shot examples per question, drawn with --seed."),
    seed: int = typer.Option(1234, "--seed", help="Seed for drawing few-shot examples."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the task data files. [default: ../shared/data/eval]"),
    output: Optional[Path] = typer.Option(None, "--output", help="Write per-example JSON and summary.md here."),
    plot: bool = typer.Option(False, "--plot", help="With --output: a PNG bar chart per task and model."),
    json_out: bool = typer.Option(False, "--json", help="Print the results (without per-example rows) as JSON."),
) -> None:
    """Multiple-choice and cloze benchmarks by log-likelihood (lm-evaluation-harness acc / acc_norm)."""
    from ..errors import InvalidParameter
    from ..evaluation.bench import evaluate_task, file_task, get_task, summary_markdown, write_outputs

    if not tasks and not task_file:
        raise InvalidParameter("name at least one task (arc_easy, piqa, truthfulqa_mc1, truthfulqa_mc2, lambada) or --task-file")
    if plot and output is None:
        raise InvalidParameter("--plot needs --output DIR")
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InvalidParameter("--plot needs matplotlib: pip install 'genstack[eval]'") from None
    selected = [get_task(t) for t in tasks or []] + [file_task(f) for f in task_file or []]
    for t in selected:  # fail on missing or malformed data before loading the model
        t.examples(data_dir)
    from ._options import _load

    m = _load(model, None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = _common.console(stderr=True)
    results = []
    with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=json_out or not err.is_terminal) as bar:
        for t in selected:
            tid = bar.add_task(t.name, total=None)
            results.append(evaluate_task(m, t, limit=limit, shots=shots, seed=seed, data_dir=data_dir,
                                         progress=lambda done, total, tid=tid: bar.update(tid, completed=done, total=total)))
    if output is not None:
        for p in write_outputs(results, output, plot=plot):
            err.print(f"wrote {p}")
    if json_out:
        _common.print_json([{k: v for k, v in r.items() if k != "rows"} for r in results])
    else:
        sys.stdout.write(summary_markdown(results))


@app.command("perplexity")
def perplexity_cmd(
    file: Optional[Path] = typer.Argument(None, help="A text file."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="lambada: perplexity and last-word accuracy on LAMBADA."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path."),
    context: Optional[int] = typer.Option(None, "--context", help="Window in tokens. [default: the model's, at most 2048]"),
    stride: Optional[int] = typer.Option(None, "--stride", help="Tokens between window starts. [default: half the window]"),
    limit: Optional[int] = typer.Option(None, "--limit", help="With --dataset: only the first N examples."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with lambada_openai.jsonl."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Token-level perplexity with a sliding window, or LAMBADA perplexity and accuracy."""
    from ..errors import InvalidParameter
    from ._options import _load

    if (file is None) == (dataset is None):
        raise InvalidParameter("give a text file or --dataset lambada (one of the two)")
    if dataset is not None:
        if dataset != "lambada":
            raise InvalidParameter(f"unknown dataset {dataset!r}; available: lambada")
        from ..evaluation.bench import evaluate_task, get_task

        task = get_task("lambada")
        task.examples(data_dir)
        res = evaluate_task(_load(model, None), task, limit=limit, data_dir=data_dir)
        out = {"dataset": "lambada", "examples": res["examples"], "accuracy": res["metrics"]["acc"]["value"],
               "accuracy_stderr": res["metrics"]["acc"]["stderr"], "perplexity": res["metrics"]["perplexity"]["value"]}
    else:
        from ..documents import LoaderOptions, LoadError, load_file
        from ..evaluation.perplexity import perplexity

        if not file.is_file():
            raise InvalidParameter(f"not a file: {file}")
        try:
            text = "\n\n".join(d.text for d in load_file(file, LoaderOptions()))
        except LoadError as exc:
            raise InvalidParameter(f"{file}: {exc.reason}") from None
        out = perplexity(text, _load(model, context), context=context, stride=stride).to_dict()
    if json_out:
        _common.print_json(out)
    else:
        for k, v in out.items():
            sys.stdout.write(f"{k}\t{v:.4f}\n" if isinstance(v, float) else f"{k}\t{v}\n")


@app.command("generate")
def generate_cmd(
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="JSONL of {input, reference}. [default: 8 built-in summaries]"),
    metric: List[str] = typer.Option(["rouge"], "--metric", help="rouge, bleu, f1, em or accuracy (repeatable)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name or .gguf path."),
    max_tokens: int = typer.Option(96, "--max-tokens", "-n", help="Most tokens per output."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON, with every output."),
) -> None:
    """Run the model on a dataset's inputs and score its outputs against the references."""
    from ..errors import InvalidParameter
    from ..evaluation.generate import evaluate_generation, load_generation_dataset
    from ..evaluation.metrics import METRICS
    from ._options import _load

    for m in metric:
        if m not in METRICS:
            raise InvalidParameter(f"metric must be one of {', '.join(METRICS)}, got {m!r}")
    rows = load_generation_dataset(dataset)
    res = evaluate_generation(_load(model, None), rows, list(metric), max_tokens=max_tokens)
    if json_out:
        _common.print_json(res)
        return
    for m in metric:
        for k, v in res["metrics"][m].items():
            if isinstance(v, float):
                sys.stdout.write(f"{k}\t{v:.4f}\n")
