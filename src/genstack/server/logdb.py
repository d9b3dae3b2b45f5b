"""The server's own SQLite database (``<data_dir>/server.db``): the request/response
log and the feedback users give in the web UI. Migrations are functions, applied once."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InvalidParameter
from ..stores.migrations import collector, open_database

__all__ = ["LogDB", "MIGRATIONS", "feedback_dataset"]

MIGRATIONS: list[Callable[[sqlite3.Connection], str]] = []


_migration = collector(MIGRATIONS)


@_migration
def l001_requests(db: sqlite3.Connection) -> str:
    return """
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            route TEXT NOT NULL,
            model TEXT,
            key_id TEXT,
            status INTEGER NOT NULL,
            request TEXT NOT NULL,
            response TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_s REAL,
            ttft_s REAL
        );
        CREATE INDEX requests_created ON requests(created);
        CREATE TABLE feedback (
            rowid INTEGER PRIMARY KEY,
            request_id TEXT,
            created REAL NOT NULL,
            rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
            comment TEXT NOT NULL DEFAULT '',
            model TEXT,
            messages TEXT NOT NULL,
            answer TEXT NOT NULL
        );
        CREATE UNIQUE INDEX feedback_request ON feedback(request_id) WHERE request_id IS NOT NULL;
    """


@_migration
def l002_prompt_and_params(db: sqlite3.Connection) -> str:
    """The exact prompt the model saw and the decoding parameters it ran with, per request."""
    return """
        ALTER TABLE requests ADD COLUMN prompt TEXT;
        ALTER TABLE requests ADD COLUMN params TEXT;
    """


class LogDB:
    """Thread-safe access to server.db; every write is its own transaction."""

    def __init__(self, path: str | Path, *, read_only: bool = False):
        self.path = Path(path)
        if read_only:
            if not self.path.is_file():
                raise InvalidParameter(f"no server log at {self.path}: start `genstack serve` first")
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.db = open_database(self.path, MIGRATIONS, "the server log")
        self.db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def log_request(self, *, id: str, route: str, model: str | None, key_id: str | None, status: int,
                    request: Any, response: str | None, prompt_tokens: int | None = None,
                    completion_tokens: int | None = None, latency_s: float | None = None,
                    ttft_s: float | None = None, prompt: str | None = None,
                    params: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO requests (id, created, route, model, key_id, status, request, response, "
                "prompt_tokens, completion_tokens, latency_s, ttft_s, prompt, params) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (id, time.time(), route, model, key_id, status, json.dumps(request, ensure_ascii=False),
                 response, prompt_tokens, completion_tokens, latency_s, ttft_s, prompt,
                 None if params is None else json.dumps(params)))

    def get_request(self, id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM requests WHERE id = ?", (id,)).fetchone()
        return _row(row) if row else None

    def requests(self, limit: int = 20) -> list[dict[str, Any]]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidParameter(f"limit must be a positive integer, got {limit!r}")
        with self._lock:
            rows = self.db.execute("SELECT * FROM requests ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_row(r) for r in rows]

    def add_feedback(self, *, request_id: str | None, rating: int, messages: list[dict], answer: str,
                     model: str | None = None, comment: str = "") -> None:
        if rating not in (-1, 1):
            raise InvalidParameter("rating must be 1 (thumbs up) or -1 (thumbs down)")
        with self._lock:
            self.db.execute(
                "INSERT INTO feedback(request_id, created, rating, comment, model, messages, answer) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(request_id) WHERE request_id IS NOT NULL "
                "DO UPDATE SET rating=excluded.rating, comment=excluded.comment, created=excluded.created",
                (request_id, time.time(), rating, comment, model, json.dumps(messages, ensure_ascii=False), answer))

    def feedback(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT * FROM feedback ORDER BY rowid").fetchall()
        for r in rows:
            d = dict(r)
            d["messages"] = json.loads(d["messages"])
            yield d

    def close(self) -> None:
        self.db.close()


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for key in ("request", "params"):
        try:
            d[key] = json.loads(d[key]) if d.get(key) is not None else None
        except (TypeError, ValueError):
            pass
    return d


def feedback_dataset(rows, fmt: str = "messages", only: str = "all") -> Iterator[dict[str, Any]]:
    """Rated pairs as fine-tuning records.

    ``messages``: ``{"messages": [...prompt..., assistant answer], "rating": ±1}``
    (filter with ``only="up"`` for supervised fine-tuning); ``kto``: TRL's
    unpaired-preference format ``{"prompt": [...], "completion": [...], "label": bool}``.
    """
    if fmt not in ("messages", "kto"):
        raise InvalidParameter(f"format must be messages or kto, got {fmt!r}")
    if only not in ("all", "up", "down"):
        raise InvalidParameter(f"only must be all, up or down, got {only!r}")
    for r in rows:
        if (only == "up" and r["rating"] != 1) or (only == "down" and r["rating"] != -1):
            continue
        prompt = [{"role": m["role"], "content": m["content"]} for m in r["messages"]]
        answer = {"role": "assistant", "content": r["answer"]}
        if fmt == "kto":
            yield {"prompt": prompt, "completion": [answer], "label": r["rating"] == 1}
        else:
            rec = {"messages": prompt + [answer], "rating": r["rating"]}
            if r.get("comment"):
                rec["comment"] = r["comment"]
            yield rec
