import pytest

from genstack.errors import ConfigError, InvalidParameter
from genstack.prompts import load_templates, resolve_template

pytestmark = pytest.mark.unit

KINDS = ("ask", "summarize", "sentiment", "classify", "extract", "translate")


def test_every_kind_has_the_four_variants():
    lib = load_templates()
    for kind in KINDS:
        assert set(lib.names(kind)) >= {f"{kind}.{v}" for v in ("zero_shot", "one_shot", "few_shot", "cot")}, kind


def test_shots_become_chat_turns():
    lib = load_templates()
    zero = lib.get("sentiment.zero_shot").render(text="great")
    few = lib.get("sentiment.few_shot").render(text="great")
    assert [m.role for m in zero] == ["system", "user"]
    assert [m.role for m in few] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert few[-1].content.endswith("Text: great\nSentiment:")


def test_context_variables_are_injected(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[ask.dated]\nuser = "Today is {today}; {user} asks {question} of {collection}.\\n{context}"\n')
    t = resolve_template(str(f), "ask", "zero_shot")
    msg = t.render(question="Q?", context="C", collection="kb")[-1].content
    import datetime as dt

    assert dt.date.today().isoformat() in msg and "of kb." in msg and "{user}" not in msg


def test_values_are_never_reparsed():
    t = load_templates().get("translate.zero_shot")
    msgs = t.render(text="Say {today} and {{x}}", language="French")
    assert msgs[-1].content == "Say {today} and {{x}}"


def test_user_files_override_builtins(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "over.toml").write_text('[ask.zero_shot]\nuser = "MINE {question} {context}"\n')
    t = load_templates(data_dir=tmp_path).get("zero_shot", "ask")
    assert t.render(question="q", context="c")[-1].content == "MINE q c"


@pytest.mark.parametrize("body, fragment", [
    ('[ask.x]\nuser = "{question.__class__}"', "plain name"),
    ('[ask.x]\nuser = "{question!r}"', "format spec"),
    ('[ask.x]\nuser = "{unclosed"', "bad braces"),
    ('[ask.x]\nsystem = "no user"', "needs a 'user'"),
    ('[ask.x\nuser=', "not valid TOML"),
])
def test_bad_template_files_are_reported(tmp_path, body, fragment):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError, match=fragment):
        load_templates([f])


def test_missing_values_and_unknown_names():
    t = load_templates().get("ask.zero_shot")
    with pytest.raises(InvalidParameter, match="needs a value for: context"):
        t.render(question="q")
    with pytest.raises(InvalidParameter, match="unknown template"):
        resolve_template("nope", "ask", "zero_shot")
    with pytest.raises(InvalidParameter, match="is for 'sentiment'"):
        load_templates().get("sentiment.zero_shot", "ask")


def test_file_with_a_name(tmp_path):
    f = tmp_path / "two.toml"
    f.write_text('[ask.a]\nuser = "A {question} {context}"\n[ask.b]\nuser = "B {question} {context}"\n')
    assert resolve_template(f"{f}:ask.b", "ask", "zero_shot").name == "ask.b"
    with pytest.raises(InvalidParameter, match="pick one"):
        resolve_template(str(f), "ask", "zero_shot")
