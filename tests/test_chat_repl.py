import io

import pytest

from genstack import SamplingParams
from genstack.cli.chat_repl import ChatRepl
from genstack.models.fake import FakeChatModel

pytestmark = pytest.mark.unit


def run(repl, text):
    out = io.StringIO()
    code = repl.run(io.StringIO(text), out)
    return code, out.getvalue()


def test_history_is_sent_and_reset_clears_it():
    m = FakeChatModel(["first reply", "second reply", "third reply"])
    repl = ChatRepl(m, SamplingParams(greedy=True))
    code, out = run(repl, "hello\nagain\n/reset\nfresh\n/exit\n")
    assert code == 0
    assert "first reply" in out and "second reply" in out and "(conversation cleared)" in out
    second, third = m.requests[1].messages, m.requests[2].messages
    assert [x.content for x in second] == ["hello", "first reply", "again"]
    assert [x.content for x in third] == ["fresh"]


def test_system_and_params_commands():
    m = FakeChatModel(["a b c d e f"])
    repl = ChatRepl(m, SamplingParams(greedy=True))
    code, out = run(repl, "/system be brief\n/params max_tokens=2 temperature=0\nhi\n")
    assert code == 0
    assert m.requests[-1].messages[0].content == "be brief"
    assert m.requests[-1].params.max_tokens == 2
    assert "a b" in out and "c d" not in out


def test_bad_params_report_an_error_and_the_loop_goes_on(capsys):
    m = FakeChatModel(["ok"])
    repl = ChatRepl(m, SamplingParams(greedy=True))
    code, out = run(repl, "/params top_p=7\n/params nonsense\nhi\n")
    err = capsys.readouterr().err
    assert "top_p must be in (0, 1]" in err and "use /params key=value" in err
    assert "ok" in out
    assert code == 1  # piped input that hit errors exits non-zero


def test_history_is_trimmed_to_fit_the_window(capsys):
    m = FakeChatModel(["w " * 20], context_length=120)
    repl = ChatRepl(m, SamplingParams(greedy=True, max_tokens=30))
    run(repl, "".join(f"question number {i} with some words\n" for i in range(8)))
    assert "trimmed" in capsys.readouterr().err
    for req in m.requests:
        assert m.count_chat_tokens(req.messages) + 30 <= 120
    assert m.requests[-1].messages[-1].content == "question number 7 with some words"
