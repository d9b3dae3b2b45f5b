import sqlite3
import subprocess
import sys

import pytest

from genstack import load_settings
from genstack.errors import GenstackError, InvalidParameter
from genstack.generation import Message
from genstack.ingestion import ingest
from genstack.models.fake import FakeChatModel
from genstack.rag import Asker, ChatSession, SessionStore, rewrite_query
from genstack.rag.sessions import MIGRATIONS

pytestmark = pytest.mark.unit


def test_sessions_persist_across_processes(home):
    store = SessionStore(load_settings())
    s = store.create(collection="kb", session_id="trip")
    store.add_exchange(s, "Where is the ferry?", "At the harbour [1].", query="ferry location",
                       sources=[{"n": 1, "label": "ferry.md"}])
    store.close()
    code = ("from genstack.rag import SessionStore; s = SessionStore().get('trip'); "
            "print(len(s.turns), s.turns[1].content, s.turns[1].query, s.title)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2 At the harbour [1]. ferry location Where is the ferry?"


def test_migrations_run_once_and_are_recorded(home):
    SessionStore(load_settings()).close()
    store = SessionStore(load_settings())  # reopening applies nothing twice
    names = [r[0] for r in store.db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [fn.__name__ for fn in MIGRATIONS]
    cols = {r[1] for r in store.db.execute("PRAGMA table_info(turns)")}
    assert {"query", "sources"} <= cols


def test_list_and_delete(home):
    store = SessionStore(load_settings())
    a = store.create(session_id="a")
    store.create(session_id="b")
    store.add_exchange(a, "hi", "hello")
    assert [s.id for s in store.list()] == ["a", "b"]  # most recently updated first
    assert len(store.list()[0].turns) == 2
    store.delete("a")
    assert [s.id for s in store.list()] == ["b"]
    with pytest.raises(GenstackError, match="no session"):
        store.delete("a")
    with pytest.raises(InvalidParameter):
        store.create(session_id="b")
    with pytest.raises(InvalidParameter):
        store.create(session_id="bad id!")
    assert store.db.execute("SELECT count(*) FROM turns WHERE session_id='a'").fetchone()[0] == 0


def test_rewrite_uses_history_and_falls_back():
    history = [Message("user", "When does the ferry to Isle Brann leave?"), Message("assistant", "At 08:15 [1].")]
    good = FakeChatModel(["How much does the ferry to Isle Brann cost?"])
    assert rewrite_query(good, "How much does it cost?", history) == "How much does the ferry to Isle Brann cost?"
    assert "Conversation:" in good.requests[0].messages[-1].content
    useless = FakeChatModel(["Banana."])
    q = rewrite_query(useless, "How much does it cost?", history)
    assert q == "When does the ferry to Isle Brann leave? How much does it cost?"
    assert rewrite_query(useless, "First question", []) == "First question"


def test_chat_session_remembers_and_trims(home, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("The ferry to Isle Brann leaves at 08:15. A ticket costs 12 euros.")
    settings = load_settings()
    ingest([docs], "kb", settings=settings, embedder="fake")

    def reply(req):
        last = req.messages[-1].content
        if "Rewritten question" in last:
            return "How much does the ferry to Isle Brann cost?"
        return "A ticket costs 12 euros [1]." if "Question: How much" in last else "It leaves at 08:15 [1]."

    model = FakeChatModel(responder=reply)
    chat = ChatSession.open("kb", session_id="s1", settings=settings, model=model, min_similarity=0.0)
    first = chat.ask("When does the ferry to Isle Brann leave?")
    second = chat.ask("How much does it cost?")
    assert first.text == "It leaves at 08:15 [1]." and second.text == "A ticket costs 12 euros [1]."
    assert second.query == "How much does the ferry to Isle Brann cost?"
    answer_req = model.requests[-1]
    assert [m.role for m in answer_req.messages][:3] == ["user", "assistant", "user"]  # history came first
    chat.close()
    resumed = SessionStore(settings).get("s1")
    assert [t.content for t in resumed.turns][-1] == "A ticket costs 12 euros [1]."
    # a small window trims old turns rather than overflowing
    chat2 = ChatSession.open("kb", session_id="s1", settings=settings, model=FakeChatModel(responder=reply, context_length=400),
                             min_similarity=0.0)
    for _ in range(6):
        chat2.ask("How much does it cost?")
    req = chat2.asker.model.requests[-1]
    assert chat2.asker.model.count_chat_tokens(req.messages) + chat2.asker.params.max_tokens <= 400
    assert len(SessionStore(settings).get("s1").turns) == 16  # everything is still stored


def test_chat_session_refuses_another_collection(home, tmp_path):
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "a.md").write_text("alpha beta gamma")
    settings = load_settings()
    ingest([docs], "one", settings=settings, embedder="fake")
    ingest([docs], "two", settings=settings, embedder="fake")
    ChatSession.open("one", session_id="x", settings=settings, model=FakeChatModel(["y"])).close()
    with pytest.raises(InvalidParameter, match="belongs to collection 'one'"):
        ChatSession.open("two", session_id="x", settings=settings, model=FakeChatModel(["y"]))
