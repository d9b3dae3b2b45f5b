"""``genstack tune report BASE TUNED``: the same evaluations on two models, side by side.

Each evaluation is the one its own command runs (``eval rag``, ``eval bench``, ``eval
perplexity``), on the same data, so a row here is the figure a user would get by running that
command once per model. Every row says which direction is better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import Settings, load_settings
from ..errors import InvalidParameter

__all__ = ["tune_report", "plot_report", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = {"false_abstention", "perplexity", "seconds_median", "nll"}
RAG_KEYS = ("fact", "citation_precision", "abstention", "false_abstention")


def _row(group: str, metric: str, base: float | None, tuned: float | None) -> dict[str, Any]:
    delta = None if base is None or tuned is None else tuned - base
    better = None
    if delta is not None and abs(delta) > 1e-12:
        better = (delta < 0) if metric in LOWER_IS_BETTER else (delta > 0)
    return {"eval": group, "metric": metric, "base": base, "tuned": tuned, "delta": delta, "better": better}


def _text(path: str | Path) -> str:
    from ..documents import LoaderOptions, LoadError, load_file

    p = Path(path)
    if not p.is_file():
        raise InvalidParameter(f"not a file: {p}")
    try:
        return "\n\n".join(d.text for d in load_file(p, LoaderOptions()))
    except LoadError as exc:
        raise InvalidParameter(f"{p}: {exc.reason}") from None


def tune_report(
    base: str,
    tuned: str,
    *,
    rag: Sequence[str | Path | None] = (None,),
    collection: str | None = None,
    tasks: Sequence[str] = (),
    limit: int | None = None,
    data_dir: str | Path | None = None,
    text: str | Path | None = None,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``base`` and ``tuned`` alike: ``eval rag`` on each dataset in ``rag`` (None = the
    built-in 44 questions over the sample corpus, unless ``collection`` is given), ``eval bench`` on
    ``tasks`` (``limit`` items each), and perplexity on the file ``text``. Returns
    ``{"base", "tuned", "rows": [{eval, metric, base, tuned, delta, better}]}``."""
    settings = settings or load_settings()
    say = progress or (lambda msg: None)
    from ..models.registry import check_model_name

    for name in (base, tuned):
        check_model_name(name, settings)
    from ..evaluation.bench import evaluate_task, get_task

    selected = [get_task(t) for t in tasks]
    for t in selected:  # missing data fails before any model loads
        t.examples(Path(data_dir) if data_dir else None)
    from ..evaluation.rag import load_rag_dataset

    rag_sets = [(str(d) if d else "built-in", load_rag_dataset(d)) for d in rag]
    body = _text(text) if text is not None else None
    if not rag_sets and not selected and body is None:
        raise InvalidParameter("nothing to compare: give a RAG dataset, a task or a text")
    if rag_sets and collection is None:
        from ..evaluation.rag import sample_corpus
        from ..ingestion import ingest

        ingest([sample_corpus()], "sample", settings=settings)
        collection = "sample"

    results: dict[str, dict[str, dict[str, float | None]]] = {}
    from ..models.registry import get_model

    for which, name in (("base", base), ("tuned", tuned)):
        got: dict[str, dict[str, float | None]] = {}
        if rag_sets:
            from ..evaluation.rag import evaluate_rag
            from ..rag.pipeline import Asker

            asker = Asker(collection, model=name, settings=settings)
            try:
                for label, items in rag_sets:
                    say(f"{which}: eval rag {label}")
                    s = evaluate_rag(asker, items)["summary"]
                    got[f"rag {label}"] = {k: s.get(k) for k in RAG_KEYS}
            finally:
                asker.close()
        if selected or body is not None:
            model = get_model(name, settings=settings)
            try:
                for t in selected:
                    say(f"{which}: eval bench {t.name}")
                    res = evaluate_task(model, t, limit=limit, data_dir=Path(data_dir) if data_dir else None)
                    got[f"bench {t.name}"] = {k: v["value"] for k, v in res["metrics"].items()}
                if body is not None:
                    from ..evaluation.perplexity import perplexity

                    say(f"{which}: perplexity")
                    got["perplexity"] = {"perplexity": perplexity(body, model).perplexity}
            finally:
                model.close()
        results[which] = got
    rows = [_row(group, metric, value, results["tuned"].get(group, {}).get(metric))
            for group, metrics in results["base"].items() for metric, value in metrics.items()]
    return {"base": base, "tuned": tuned, "rows": rows}


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """One small bar chart per metric (base and tuned side by side), as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidParameter("--plot needs matplotlib: pip install 'genstack[eval]'") from None
    rows = [r for r in report["rows"] if r["base"] is not None and r["tuned"] is not None]
    if not rows:
        raise InvalidParameter("no metric has a value for both models: nothing to plot")
    cols = min(4, len(rows))
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.8 * nrows), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        ax.bar([0, 1], [r["base"], r["tuned"]], color=["#9aa5b1", "#2f6fde"])
        ax.set_xticks([0, 1], ["base", "tuned"])
        arrow = "↓" if r["metric"] in LOWER_IS_BETTER else "↑"
        ax.set_title(f"{r['eval']}\n{r['metric']} ({arrow} better)", fontsize=8)
        for x, v in ((0, r["base"]), (1, r["tuned"])):
            ax.text(x, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.suptitle(f"{report['base']} vs {report['tuned']}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
