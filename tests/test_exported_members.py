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
