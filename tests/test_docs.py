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
