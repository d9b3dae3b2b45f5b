"""Every CLI command is documented in the README (after sqlite-utils' test_docs)."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

README = (Path(__file__).parent.parent / "README.md").read_text()


def _commands():
    import typer

    from genstack.cli import _build_app

    def walk(cmd, prefix):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield prefix
            return
        for name, sub in subs.items():
            yield from walk(sub, f"{prefix} {name}")

    return sorted(walk(typer.main.get_command(_build_app()), "genstack"))


@pytest.mark.parametrize("command", _commands())
def test_command_is_in_the_readme_reference(command):
    assert f"`{command}" in README, f"{command} is not documented in README.md"


def test_readme_has_exactly_two_setup_commands():
    setup = README.split("## Set-up", 1)[1].split("## ", 1)[0]
    block = setup.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]


def test_architecture_doc_names_files_that_exist_and_every_check_and_stage():
    import re

    from genstack.rag.checks import check_names
    from genstack.rag.pipeline import STAGES

    root = Path(__file__).parent.parent
    doc = (root / "docs" / "architecture.md").read_text()
    for path in set(re.findall(r"`((?:tests|src|benchmarks|docs)?/?[\w/]+\.(?:py|md|toml))`", doc)):
        candidates = [root / path, root / "src" / "genstack" / path]
        assert any(c.is_file() for c in candidates), f"docs/architecture.md cites {path}, which does not exist"
    for name in check_names(structured=True) + check_names():
        assert f"| `{name}` |" in doc, f"check {name} is missing from the architecture doc"
    for stage in STAGES:
        assert f"| {stage} |" in doc, f"stage {stage} is missing from the architecture doc"


def test_readme_grounded_answers_example_runs(tmp_path, monkeypatch):
    """The Python block of "Grounded answers" runs as written (on the fakes: default model and embedder)."""
    block = README.split("## Grounded answers", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "router.md").write_text("# Router\n\nTo reset the router, hold the reset button for ten seconds. "
                                     "A reset takes about two minutes.")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENSTACK_DEFAULT_MODEL", "fake:Hold the reset button for ten seconds [1].")
    monkeypatch.setenv("GENSTACK_DEFAULT_EMBEDDER", "fake")
    out = {}
    exec(compile(block, "README.md", "exec"), out)  # noqa: S102 - the README's own code
    assert out["answer"].checks and out["run"].answer is not None


def test_readme_arena_example_runs(tmp_path, monkeypatch, capsys):
    """The Python block of "Arena" runs as written (its models are the fakes)."""
    block = README.split("## Arena", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    out = {}
    exec(compile(block, "README.md", "exec"), out)  # noqa: S102 - the README's own code
    printed = capsys.readouterr().out
    assert "fake:Paris." in printed and "'rank': 1" in printed
    assert out["arena"].db.get(out["battle"].id)["winner"] == "model_a"
