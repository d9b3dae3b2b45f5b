"""Third-party plugins register through entry points exactly like the built-ins, and are used by name.

The example plugin (tests/plugin_example) is installed the way pip would: a
``*.dist-info`` folder with ``entry_points.txt`` on ``sys.path``.
"""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from genstack.testing import (DeleteConformance, DenseSearchConformance, FilterConformance, PersistenceConformance,
                              ProtocolConformance, WriteConformance)

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).parent / "plugin_example"
sys.path.insert(0, str(EXAMPLE))
from genstack_example_plugin import JsonFileStore  # noqa: E402

ENTRY_POINTS = """\
[genstack.backends]
echo = genstack_example_plugin:EchoModel

[genstack.embedders]
hashed = genstack_example_plugin:HashedEmbedder

[genstack.stores]
jsonfile = genstack_example_plugin:JsonFileStore
"""


class TestJsonFileStorePiecewise(ProtocolConformance, WriteConformance, DeleteConformance, FilterConformance,
                                DenseSearchConformance, PersistenceConformance):
    """A store adopts the conformance mixins it meets (no BM25Conformance: no stemming)."""

    def make_store(self, path, dim):
        return JsonFileStore(path / "store.json", dim=dim, embedder="fake")


def test_builtin_stores_are_entry_points():
    names = {ep.name for ep in entry_points(group="genstack.stores")}
    assert {"sqlite", "lancedb"} <= names
    from genstack.stores.collections import store_backend
    from genstack.stores.sqlite import SQLiteStore

    assert store_backend("sqlite") is SQLiteStore


def test_unknown_store_is_a_clear_error(home):
    from genstack.errors import BackendNotFound
    from genstack.stores import open_collection

    with pytest.raises(BackendNotFound, match="no store named 'nope'"):
        open_collection("x", create=True, embedder="fake", dim=8, store="nope")


@pytest.fixture
def installed(tmp_path):
    site = tmp_path / "site"
    info = site / "genstack_example_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: genstack-example-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    env = {**os.environ, "GENSTACK_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")])}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "genstack", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    return run, tmp_path


def test_an_installed_plugin_is_used_by_name_from_the_cli(installed):
    run, tmp = installed
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("The ferry to Isle Brann leaves at 08:15 every day.")
    (docs / "cafe.md").write_text("The harbour cafe sells coffee and waffles.")
    r = run("ingest", str(docs), "--collection", "kb", "--store", "jsonfile", "--embedder", "hashed:32", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 2
    assert (tmp / "home" / "collections" / "kb" / "store.json").is_file()
    r = run("search", "ferry Brann", "--collection", "kb", "--json")
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)[0]["source"]).name == "ferry.md"
    r = run("collections", "info", "kb", "--json")
    assert json.loads(r.stdout)["store"] == "jsonfile" and json.loads(r.stdout)["embedder"] == "hashed:32"
    r = run("generate", "hello plugin world", "--model", "echo", "--system", "")
    assert r.returncode == 0 and r.stdout.strip() == "HELLO PLUGIN WORLD", r.stderr
    r = run("generate", "hi", "--model", "echo", "--json-schema", str(_schema(tmp)))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "does not support json_schema" in r.stderr


def _schema(tmp):
    f = tmp / "schema.json"
    f.write_text('{"type": "object"}')
    return f
