"""genstack config: show the effective settings and where they came from."""

from __future__ import annotations

import typer

from . import _common

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print every setting after the TOML file and GENSTACK_* variables are applied."""
    from dataclasses import asdict

    s = _common.settings()
    data = {k: (str(v) if k == "data_dir" else v) for k, v in asdict(s).items()}
    if json_out:
        _common.print_json(data)
        return
    for k, v in data.items():
        print(f"{k} = {v!r}")
