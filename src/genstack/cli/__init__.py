"""The ``genstack`` command line: a thin layer over the Python API.

Each command group lives in its own module and imports heavy libraries only
inside the commands, so ``genstack --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main", "app"]


def _build_app():
    import typer

    from . import agent_cmd, arena_cmd, config_cmd, demo_cmd, eval_cmd, generate, ingest_cmd, models, rag_cmd, redteam_cmd, serve_cmd, synth_cmd, task_cmd, tune_cmd

    app = typer.Typer(
        name="genstack",
        help="The generative-AI stack that runs on your own machine.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    generate.register(app)
    ingest_cmd.register(app)
    rag_cmd.register(app)
    demo_cmd.register(app)
    serve_cmd.register(app)
    redteam_cmd.register(app)
    app.add_typer(task_cmd.app, name="task")
    app.add_typer(models.app, name="models")
    app.add_typer(eval_cmd.app, name="eval")
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(arena_cmd.app, name="arena")
    app.add_typer(synth_cmd.app, name="synth")
    app.add_typer(tune_cmd.app, name="tune")
    agent_cmd.register(app)
    return app


def __getattr__(name: str):
    if name == "app":
        return _build_app()
    raise AttributeError(name)


def _short_help(text: str) -> str:
    """The first sentence of a command's help, on one line: what a command list shows beside its name
    (a hard-wrapped docstring paragraph otherwise shows as ragged lines)."""
    import re

    first = " ".join(text.split("\n\n")[0].split())
    m = re.search(r"(?<!e\.g)(?<!i\.e)[.!?](?=\s|$)", first)
    return first[: m.end()] if m else first


def _without_flag_types(command):
    """On/off flags take no value: show no ``<bool>`` type beside them in --help; command lists show
    each command's first sentence."""
    if getattr(command, "help", None) and not getattr(command, "short_help", None):
        command.short_help = _short_help(command.help)
    for param in getattr(command, "params", ()):
        if getattr(param, "is_flag", False):
            param.metavar = ""
    make_help = command.get_help_option  # --help itself is made per context

    def get_help_option(ctx, _make=make_help):
        opt = _make(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _without_flag_types(sub)
    return command


def _fail(message: str, code: int) -> int:
    first = " ".join(str(message).split()) or "failed"
    sys.stderr.write(f"error: {first}\n")
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; errors become one line on stderr."""
    import typer
    from typer._click import exceptions as click_exc  # typer vendors click

    from ..errors import GenstackError

    command = _without_flag_types(typer.main.get_command(_build_app()))
    try:
        rv = command.main(args=argv, prog_name="genstack", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click_exc.NoArgsIsHelpError as exc:
        sys.stderr.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        return 2
    except click_exc.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("\ninterrupted\n")
        return 130
    except GenstackError as exc:
        return _fail(str(exc), exc.exit_code)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 141
    except Exception as exc:  # a bug: still one line, with a way to get the traceback
        if os.environ.get("GENSTACK_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (set GENSTACK_DEBUG=1 for a traceback)", 1)


def main() -> None:
    sys.exit(run())
