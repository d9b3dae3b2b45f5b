"""Chat sessions, persisted in SQLite (``<data_dir>/sessions.db``).

The schema evolves through migrations written as functions (see
:mod:`genstack.stores.migrations`), each applied once, in a transaction.
Every turn is committed as soon as it is answered, so a crash loses at most
the turn in progress.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Settings, load_settings
from ..errors import GenstackError, InvalidParameter
from ..generation import Message
from ..stores.migrations import collector, open_database

__all__ = ["SessionStore", "Session", "Turn"]

MIGRATIONS: list[Callable[[sqlite3.Connection], str]] = []


_migration = collector(MIGRATIONS)


@_migration
def s001_sessions(db: sqlite3.Connection) -> str:
    return """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            collection TEXT,
            model TEXT,
            title TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE turns (
            rowid INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            content TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE INDEX turns_session ON turns(session_id, rowid);
    """


@_migration
def s002_turn_details(db: sqlite3.Connection) -> str:
    # what the assistant turn was grounded on, and the search query used
    return """
        ALTER TABLE turns ADD COLUMN query TEXT;
        ALTER TABLE turns ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
    """


@dataclass
class Turn:
    role: str
    content: str
    created: float
    query: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> Message:
        return Message(self.role, self.content)  # type: ignore[arg-type]


@dataclass
class Session:
    id: str
    collection: str | None
    model: str | None
    title: str
    created: float
    updated: float
    turns: list[Turn] = field(default_factory=list)

    def history(self) -> list[Message]:
        return [t.message() for t in self.turns if t.role in ("user", "assistant")]

    def to_dict(self, with_turns: bool = False) -> dict[str, Any]:
        d = {"id": self.id, "collection": self.collection, "model": self.model, "title": self.title,
             "created": self.created, "updated": self.updated, "turns": len(self.turns)}
        if with_turns:
            d["messages"] = [{"role": t.role, "content": t.content, "query": t.query, "sources": t.sources}
                             for t in self.turns]
        return d


class SessionStore:
    def __init__(self, settings: Settings | None = None, path: str | Path | None = None):
        settings = settings or load_settings()
        self.path = Path(path) if path else settings.data_dir / "sessions.db"
        self.db = open_database(self.path, MIGRATIONS, "the session database", foreign_keys=True)

    def create(self, *, collection: str | None = None, model: str | None = None, session_id: str | None = None) -> Session:
        sid = session_id or uuid.uuid4().hex[:12]
        if not sid.replace("-", "").replace("_", "").isalnum() or len(sid) > 64:
            raise InvalidParameter(f"a session id is letters, digits, - and _ (at most 64), got {sid!r}")
        now = time.time()
        try:
            self.db.execute("INSERT INTO sessions(id, collection, model, created, updated) VALUES (?,?,?,?,?)",
                            (sid, collection, model, now, now))
        except sqlite3.IntegrityError:
            raise InvalidParameter(f"session {sid!r} already exists") from None
        return Session(sid, collection, model, "", now, now)

    def get(self, session_id: str) -> Session:
        row = self.db.execute("SELECT id, collection, model, title, created, updated FROM sessions WHERE id = ?",
                              (session_id,)).fetchone()
        if row is None:
            raise GenstackError(f"no session {session_id!r}; see `genstack sessions list`")
        s = Session(*row)
        for role, content, created, query, sources in self.db.execute(
                "SELECT role, content, created, query, sources FROM turns WHERE session_id = ? ORDER BY rowid", (session_id,)):
            s.turns.append(Turn(role, content, created, query, json.loads(sources or "[]")))
        return s

    def get_or_create(self, session_id: str | None, **kwargs) -> Session:
        if session_id:
            exists = self.db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if exists:
                return self.get(session_id)
        return self.create(session_id=session_id, **kwargs)

    def add_exchange(self, session: Session, question: str, answer: str, *, query: str | None = None,
                     sources: list[dict[str, Any]] | None = None) -> None:
        """Store a question and its answer together (one transaction)."""
        now = time.time()
        title = session.title or " ".join(question.split())[:60]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO turns(session_id, role, content, created) VALUES (?,?,?,?)",
                            (session.id, "user", question, now))
            self.db.execute("INSERT INTO turns(session_id, role, content, created, query, sources) VALUES (?,?,?,?,?,?)",
                            (session.id, "assistant", answer, now, query, json.dumps(sources or [])))
            self.db.execute("UPDATE sessions SET updated = ?, title = ? WHERE id = ?", (now, title, session.id))
        session.turns += [Turn("user", question, now), Turn("assistant", answer, now, query, sources or [])]
        session.title, session.updated = title, now

    def list(self) -> list[Session]:
        out = []
        for row in self.db.execute(
                "SELECT s.id, s.collection, s.model, s.title, s.created, s.updated, count(t.rowid) FROM sessions s "
                "LEFT JOIN turns t ON t.session_id = s.id GROUP BY s.id ORDER BY s.updated DESC"):
            s = Session(*row[:6])
            s.turns = [Turn("user", "", 0.0)] * row[6]  # only the count is needed for listings
            out.append(s)
        return out

    def delete(self, session_id: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
            cur = self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        if cur.rowcount == 0:
            raise GenstackError(f"no session {session_id!r}; see `genstack sessions list`")

    def close(self) -> None:
        self.db.close()
