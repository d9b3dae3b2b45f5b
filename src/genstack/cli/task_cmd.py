"""genstack task: sentiment, classify, extract, translate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import _common
from ._options import MODEL, N_CTX, _load, _show_prompt

app = typer.Typer(help="The classic text tasks: sentiment, classify, extract, translate.", no_args_is_help=True)

TEXT = typer.Argument(..., help="The text; '-' reads it from standard input.")
TEMPLATE = typer.Option(None, "--template", help="zero_shot, one_shot, few_shot, cot, or FILE.toml[:NAME].")
JSON = typer.Option(False, "--json", help="Print JSON.")
SHOW = typer.Option(False, "--show-prompt", help="Print the exact prompt sent, on stderr.")


def _read(text: str) -> str:
    from ..errors import InvalidParameter

    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InvalidParameter("the text is empty")
    return text


def _print_label(res, json_out: bool, show_prompt: bool) -> None:
    if show_prompt and res.prompt:
        _show_prompt(res.prompt)
    if json_out:
        _common.print_json(res.to_dict())
    else:
        score = "" if res.score is None else f"\t{res.score:.3f}"
        sys.stdout.write(f"{res.label}{score}\n")


METHOD = typer.Option("embedding", "--method", help="embedding (the text's similarity to each label's examples; far "
                      "more accurate with the bundled models) or llm (the model's label log-probabilities).")
EXAMPLES = typer.Option(None, "--examples", help="embedding method: a JSONL of labelled examples {\"text\", \"label\"}; "
                        "each label's prototype is the mean of its examples.")
CALIBRATE = typer.Option(False, "--calibrate", help="llm method: contextual calibration (divide by the label "
                         "probabilities of a content-free text).")


@app.command("sentiment")
def sentiment(text: str = TEXT, method: str = METHOD, examples: Optional[Path] = EXAMPLES,
              model: Optional[str] = MODEL, template: Optional[str] = TEMPLATE, calibrate: bool = CALIBRATE,
              n_ctx: Optional[int] = N_CTX, json_out: bool = JSON, show_prompt: bool = SHOW) -> None:
    """POSITIVE, NEGATIVE or NEUTRAL, with a probability.

    By default by embedding similarity to 36 shipped examples (accuracy 0.93 on the checked
    set of `genstack eval task sentiment`, neutral included); SmolLM2-135M's own label
    scores (--method llm) reach 0.45 and never say NEUTRAL.
    """
    from ..rag.tasks import check_method, load_examples
    from ..rag.tasks import sentiment as run

    text = _read(text)
    settings = _common.settings()
    if check_method(method, "--method") == "embedding":
        from ..embeddings import get_embedder

        res = run(text, method="embedding", embedder=get_embedder(None, settings=settings),
                  examples=load_examples(examples) if examples else None)
    else:
        res = run(text, _load(model, n_ctx), template=template, calibrate=calibrate, data_dir=settings.data_dir)
    _print_label(res, json_out, show_prompt)


@app.command("classify")
def classify(text: str = TEXT,
             labels: str = typer.Option(..., "--labels", "-l", help="Comma-separated labels, e.g. sports,politics,cooking."),
             method: str = METHOD, examples: Optional[Path] = EXAMPLES,
             model: Optional[str] = MODEL, template: Optional[str] = TEMPLATE, calibrate: bool = CALIBRATE,
             n_ctx: Optional[int] = N_CTX, json_out: bool = JSON, show_prompt: bool = SHOW) -> None:
    """Classification into the given labels, with a score: zero-shot, or few-shot with --examples.

    On the checked topic set (`genstack eval task classify`): embedding 0.975 accuracy,
    SmolLM2-135M's label scores 0.45 (0.725 with --calibrate).
    """
    from ..rag.tasks import check_method, load_examples
    from ..rag.tasks import classify as run

    text = _read(text)
    settings = _common.settings()
    label_list = labels.split(",")
    if check_method(method, "--method") == "embedding":
        from ..embeddings import get_embedder

        res = run(text, label_list, embedder=get_embedder(None, settings=settings), method="embedding",
                  examples=load_examples(examples) if examples else ())
    else:
        res = run(text, label_list, model=_load(model, n_ctx), template=template, calibrate=calibrate,
                  data_dir=settings.data_dir)
    _print_label(res, json_out, show_prompt)


@app.command("extract")
def extract(text: str = TEXT,
            schema: Path = typer.Option(..., "--schema", help="A JSON Schema file; the output is valid for it."),
            model: Optional[str] = MODEL, template: Optional[str] = TEMPLATE, n_ctx: Optional[int] = N_CTX,
            max_tokens: int = typer.Option(256, "--max-tokens", "-n", help="Most tokens of JSON."),
            show_prompt: bool = SHOW) -> None:
    """Extract fields from text as JSON valid for a schema (grammar-constrained)."""
    from ..prompts.structured import load_schema
    from ..rag.tasks import extract as run

    text = _read(text)
    sch = load_schema(schema)
    value, prompt = run(text, sch, _load(model, n_ctx), template=template, max_tokens=max_tokens,
                        data_dir=_common.settings().data_dir)
    if show_prompt:
        _show_prompt(prompt)
    _common.print_json(value)


@app.command("translate")
def translate(text: str = TEXT,
              to: str = typer.Option(..., "--to", help="Target language, e.g. French."),
              model: Optional[str] = MODEL, template: Optional[str] = TEMPLATE, n_ctx: Optional[int] = N_CTX,
              max_tokens: int = typer.Option(512, "--max-tokens", "-n", help="Most tokens of output."),
              json_out: bool = JSON, show_prompt: bool = SHOW) -> None:
    """Translate text into another language.

    Without --model it uses the translate_model setting: the bundled Gemma 3 270M base, with a
    few-shot prompt (chrF 59 on English to French in `genstack eval task translate`: rough but
    mostly right on short everyday sentences). SmolLM2-135M cannot translate (chrF 16); for
    real work use a bigger model, e.g. --model openai:NAME@http://host:port/v1.
    """
    from ..rag.tasks import translate as run

    text = _read(text)
    settings = _common.settings()
    out, prompt = run(text, to, _load(model or settings.translate_model or None, n_ctx), template=template,
                      max_tokens=max_tokens, data_dir=settings.data_dir)
    if show_prompt:
        _show_prompt(prompt)
    if json_out:
        _common.print_json({"language": to, "translation": out})
    else:
        sys.stdout.write(out + "\n")
