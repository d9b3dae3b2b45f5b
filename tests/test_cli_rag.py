import json

import pytest

from genstack.cli import run

pytestmark = pytest.mark.unit


@pytest.fixture
def kb(home, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry to Isle Brann leaves the harbour at 08:15 every day.")
    (docs / "cafe.md").write_text("# Cafe\n\nThe harbour cafe sells coffee and waffles.")
    assert run(["ingest", str(docs), "-c", "kb", "--embedder", "fake"]) == 0
    capsys.readouterr()
    return docs


def test_ask_json_with_citations(kb, capsys):
    code = run(["ask", "When does the ferry to Isle Brann leave?", "-c", "kb", "--model",
                "fake:It leaves at 08:15 [1] [7].", "--min-similarity", "0.05", "--json", "--show-prompt"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["answer"] == "It leaves at 08:15 [1] ." and out["cited"] == [1]
    assert out["invalid_citations"] == [7] and out["sources"][0]["source"].endswith("ferry.md")
    assert "Question: When does the ferry" in out["prompt"]


def test_ask_streams_and_lists_sources(kb, capsys):
    assert run(["ask", "When does the ferry to Isle Brann leave?", "-c", "kb", "--model",
                "fake:It leaves at 08:15 [1].", "--min-similarity", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("It leaves at 08:15 [1].\n") and "Sources" in out and "ferry.md" in out


def test_ask_abstains_with_closest_sources(kb, capsys):
    assert run(["ask", "Who wrote Hamlet?", "-c", "kb", "--model", "fake:x", "--min-similarity", "0.99"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Not found in these documents.") and "Closest sources" in out


def test_ask_ends_a_rejected_draft_with_the_servers_retraction(kb, capsys):
    from genstack.rag.answer import RETRACTED

    assert run(["ask", "When does the ferry to Isle Brann leave?", "-c", "kb", "--model",
                "fake:Purple elephants dance on Saturn [1].", "--min-similarity", "0.05"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Purple elephants") and f"\n\n{RETRACTED} Not found in these documents.\n" in out
    assert "→" not in out and "check support" in err  # one wording, and which check decided


def test_ask_json_schema_goes_through_the_pipeline(kb, tmp_path, capsys):
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]}')
    assert run(["ask", "When does the ferry to Isle Brann leave?", "-c", "kb", "--model", 'fake:{"time": "08:15"}',
                "--min-similarity", "0.05", "--json-schema", str(schema)]) == 0
    assert json.loads(capsys.readouterr().out) == {"time": "08:15"}
    code = run(["ask", "When does the ferry to Isle Brann leave?", "-c", "kb", "--model",
                'fake:{"time": "noon on Saturn"}', "--min-similarity", "0.05", "--json-schema", str(schema)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and err.startswith("error: not found in these documents (unsupported")


@pytest.mark.parametrize("args, fragment", [
    (["ask", "  ", "-c", "kb"], "the question is empty"),
    (["ask", "q", "-c", "nope", "--model", "fake"], "no collection"),
    (["ask", "q", "-c", "kb", "--mode", "fuzzy", "--model", "fake"], "mode must be"),
    (["ask", "q", "-c", "kb", "--template", "nope", "--model", "fake"], "unknown template"),
    (["ask", "q", "-c", "kb", "--json-schema", "SCHEMA_BAD", "--model", "fake"], "not a valid JSON Schema"),
    (["ask", "q", "-c", "kb", "--json-schema", "SCHEMA_MISSING", "--model", "fake"], "schema file not found"),
    (["ask", "q", "-c", "empty", "--model", "fake"], "is empty"),
    (["summarize", "--style", "haiku", "-c", "kb"], "--style must be"),
    (["summarize"], "give a file"),
    (["task", "sentiment", " ", "--model", "fake"], "text is empty"),
    (["task", "classify", "x", "--labels", "one", "--model", "fake"], "at least two labels"),
    (["task", "extract", "x", "--schema", "SCHEMA_BAD", "--model", "fake"], "not a valid JSON Schema"),
    (["generate", "x", "--json-schema", "SCHEMA_BAD", "--model", "fake"], "not a valid JSON Schema"),
    (["sessions", "delete", "nope"], "no session"),
])
def test_bad_input_is_one_line_and_keeps_the_data(kb, tmp_path, capsys, args, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "banana"}')
    args = [str(bad) if a == "SCHEMA_BAD" else str(tmp_path / "missing.json") if a == "SCHEMA_MISSING" else a for a in args]
    if "empty" in args:
        from genstack import load_settings
        from genstack.stores import open_collection

        open_collection("empty", load_settings(), create=True, embedder="fake", dim=64).close()
    code = run(args)
    err = capsys.readouterr().err
    assert code != 0 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert run(["collections", "info", "kb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks"] == 2  # nothing stored was lost


def test_tasks_cli(home, tmp_path, capsys):
    assert run(["task", "sentiment", "I love using Generative AI", "--model", "fake:positive", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == "POSITIVE" and out["score"] > 0.5
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}')
    assert run(["task", "extract", "I flew to Lisbon", "--schema", str(schema), "--model", 'fake:{"city": "Lisbon"}']) == 0
    assert json.loads(capsys.readouterr().out) == {"city": "Lisbon"}
    assert run(["task", "extract", "I flew to Lisbon", "--schema", str(schema), "--model", 'fake:{"town": 1}']) == 1
    assert "does not match the schema" in capsys.readouterr().err
    assert run(["task", "translate", "Good morning", "--to", "French", "--model", "fake:Bonjour"]) == 0
    assert capsys.readouterr().out == "Bonjour\n"
    assert run(["generate", "a city", "--greedy", "--json-schema", str(schema), "--model", 'fake:{"city": "Oslo"}']) == 0
    assert json.loads(capsys.readouterr().out) == {"city": "Oslo"}


def test_sessions_cli(kb, capsys):
    script = "When does the ferry to Isle Brann leave?\n/exit\n"
    import io
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(script)
    try:
        code = run(["chat", "-c", "kb", "--session", "trip", "--model", "fake:It leaves at 08:15 [1]."])
    finally:
        sys.stdin = old
    assert code == 0 and "It leaves at 08:15 [1]." in capsys.readouterr().out
    assert run(["sessions", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["id"] == "trip" and rows[0]["collection"] == "kb" and rows[0]["turns"] == 2
    assert run(["sessions", "show", "trip"]) == 0
    assert "assistant: It leaves at 08:15 [1]." in capsys.readouterr().out
    assert run(["sessions", "delete", "trip"]) == 0
    assert run(["sessions", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []


def test_summarize_file(home, tmp_path, capsys):
    f = tmp_path / "note.md"
    f.write_text("The harbour opened in 1901. It has forty boats.")
    assert run(["summarize", str(f), "--style", "tldr", "--model", "fake:The harbour opened in 1901.", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"] == "The harbour opened in 1901." and out["steps"] == 1


def test_every_entry_point_shows_the_model_the_same_number_of_sentences():
    import inspect

    from genstack.cli import eval_cmd, rag_cmd
    from genstack.rag.config import DEFAULT_CONFIG, RagConfig

    assert DEFAULT_CONFIG == RagConfig() and DEFAULT_CONFIG.focus == 3
    for option in ("k", "mode", "focus"):
        assert getattr(rag_cmd, option.upper()).default == getattr(DEFAULT_CONFIG, option)
        assert inspect.signature(eval_cmd.rag).parameters[option].default.default == getattr(DEFAULT_CONFIG, option)
    assert rag_cmd.MAX_TOKENS.default == DEFAULT_CONFIG.answer_tokens


def test_ask_and_chat_with_a_guard_redact_what_you_type_before_the_search_and_the_model(kb, capsys, monkeypatch):
    key = "sk-proj-" + "a1b2c3d4" * 4
    q = f"My key is {key}. When does the ferry to Isle Brann leave?"
    assert run(["ask", q, "-c", "kb", "--model", "fake:It leaves at 08:15 [1].", "--min-similarity", "0.05",
                "--redact", "secrets", "--json", "--show-prompt"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert key not in json.dumps(out) and "[REDACTED:API_KEY]" in out["prompt"] and "[REDACTED" in out["query"]
    # without a guard configured the question is used as typed
    assert run(["ask", q, "-c", "kb", "--model", "fake:x", "--min-similarity", "0.05", "--json", "--show-prompt"]) == 0
    assert key in json.loads(capsys.readouterr().out)["prompt"]
    # the setting configures it for chat --collection as well
    import io
    import sys

    monkeypatch.setenv("GENSTACK_REDACT", "secrets")
    monkeypatch.setattr(sys, "stdin", io.StringIO(q + "\n/exit\n"))
    assert run(["chat", "-c", "kb", "--session", "s1", "--model", "fake:It leaves at 08:15 [1].", "--show-prompt"]) == 0
    err = capsys.readouterr().err
    assert key not in err and "[REDACTED:API_KEY]" in err
    assert run(["ask", "x", "-c", "kb", "--redact", "some"]) == 2  # a usage error
    assert "--redact must be one of off, secrets, all" in capsys.readouterr().err
