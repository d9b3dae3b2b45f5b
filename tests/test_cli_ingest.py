import json

import pytest

from genstack.cli import run

pytestmark = pytest.mark.unit


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSTACK_HOME", str(tmp_path / "home"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nThe router resets when you hold the button for ten seconds.")
    (docs / "faq.txt").write_text("Billing questions go to the accounts team.")
    return docs


def ingest(docs, *extra):
    return run(["ingest", str(docs), "-c", "kb", "--embedder", "fake", *extra])


def test_ingest_then_search_json(env, capsys):
    assert ingest(env, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 2 and report["failed"] == []
    assert run(["search", "reset the router", "-c", "kb", "--json", "--k", "1"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 1 and hits[0]["source"].endswith("guide.md")
    assert hits[0]["metadata"]["heading_path"] == "Guide"


def test_search_table_and_filters(env, capsys):
    ingest(env)
    capsys.readouterr()
    assert run(["search", "accounts billing", "-c", "kb", "--mode", "bm25"]) == 0
    out = capsys.readouterr().out
    assert "faq.txt" in out and "accounts team" in out
    assert run(["search", "router", "-c", "kb", "--filter", "format=txt", "--json"]) == 0
    assert {h["source"].split("/")[-1] for h in json.loads(capsys.readouterr().out)} == {"faq.txt"}


def test_second_ingest_reports_unchanged(env, capsys):
    ingest(env)
    capsys.readouterr()
    assert ingest(env, "--json") == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 2


def test_failed_file_exits_1_after_ingesting_the_rest(env, capsys):
    (env / "bad.json").write_text("{nope")
    assert ingest(env, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 2 and report["failed"][0]["path"].endswith("bad.json")


def test_an_ingest_where_every_file_fails_leaves_no_collection(env, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.json").write_text("{nope")
    (bad / "b.json").write_text("[1, 2")
    assert run(["ingest", str(bad), "-c", "broken", "--embedder", "fake", "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["failed"]) == 2
    assert run(["collections", "list", "--json"]) == 0
    assert "broken" not in capsys.readouterr().out
    # an existing collection is never removed by a failing ingest
    assert ingest(env) == 0
    capsys.readouterr()
    assert run(["ingest", str(bad), "-c", "kb", "--embedder", "fake"]) == 1
    capsys.readouterr()
    assert run(["search", "router", "-c", "kb", "--json"]) == 0 and json.loads(capsys.readouterr().out)


def test_collections_list_info_delete(env, capsys):
    ingest(env)
    capsys.readouterr()
    assert run(["collections", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "kb"
    assert run(["collections", "info", "kb", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chunks"] == 2 and info["embedder"] == "fake" and len(info["sources"]) == 2
    assert run(["collections", "delete", "kb", "--yes"]) == 0
    capsys.readouterr()
    assert run(["collections", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["search", "x", "-c", "missing"], 1, "no collection named 'missing'"),
        (["search", "  ", "-c", "kb"], 2, "the query is empty"),
        (["search", "x", "-c", "kb", "--mode", "nope"], 2, "mode must be one of"),
        (["search", "x", "-c", "kb", "--k", "0"], 2, "k must be a positive integer"),
        (["search", "x", "-c", "kb", "--filter", "novalue"], 2, "--filter takes KEY=VALUE"),
        (["ingest", "/definitely/missing", "-c", "kb2", "--embedder", "fake"], 1, "nothing to ingest"),
        (["ingest", ".", "-c", "../escape", "--embedder", "fake"], 2, "invalid collection name"),
        (["ingest", ".", "-c", "kb", "--embedder", "nope"], 2, "unknown embedder 'nope'"),
        (["ingest", ".", "-c", "kb", "--chunk-size", "2", "--embedder", "fake"], 2, "chunk size must be"),
        (["collections", "delete", "kb"], 2, "pass --yes"),
        (["collections", "info", "zzz"], 1, "no collection named 'zzz'"),
    ],
)
def test_errors_are_one_line(env, args, code, fragment, capsys):
    ingest(env)
    capsys.readouterr()
    assert run(args) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert run(["collections", "info", "kb", "--json"]) == 0  # nothing already stored was lost
    assert json.loads(capsys.readouterr().out)["chunks"] == 2


def test_a_different_embedder_on_an_existing_collection_is_refused_before_anything_is_written(env, tmp_path, capsys):
    ingest(env)
    capsys.readouterr()
    (env / "new.txt").write_text("A third file that must not be embedded by another engine.")
    assert run(["ingest", str(env), "-c", "kb", "--embedder", "fake:16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "built with embedder fake, not fake:16" in err
    assert run(["collections", "info", "kb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks"] == 2  # new.txt was not added
    # without --embedder, more files go in with the collection's own embedder, whatever the default
    assert run(["ingest", str(env), "-c", "kb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1
    assert run(["collections", "info", "kb", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embedder"] == "fake" and info["chunks"] == 3
