"""Arena battles and votes in SQLite (``<data_dir>/arena.db``), migrated like the other databases.

One row per battle: the prompt, both models and answers, the decoding
parameters both sides ran with, and (once given) the vote, its time and the
voter. Verdicts of judge models live in their own table, so a leaderboard of
human votes never mixes in a model's opinion. Export and import use the
column layout of the public Chatbot Arena battle data (``model_a``,
``model_b``, ``winner``, ``judge``, ``conversation_a``, ``tstamp``, …).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import InvalidParameter
from ..stores.migrations import collector, open_database
from .ratings import WINNERS

__all__ = ["ArenaDB", "MIGRATIONS", "parse_winner", "VOTE_CHOICES"]

MIGRATIONS: list[Callable[[sqlite3.Connection], str]] = []

#: what a voter may type, and the winner value it stands for
VOTE_CHOICES = {"a": "model_a", "model_a": "model_a", "b": "model_b", "model_b": "model_b", "tie": "tie",
                "t": "tie", "bothbad": "tie (bothbad)", "both-bad": "tie (bothbad)", "x": "tie (bothbad)",
                "tie (bothbad)": "tie (bothbad)"}


def parse_winner(value: str) -> str:
    """A vote as a winner value: a, b, tie or bothbad (or the Chatbot Arena spellings)."""
    w = VOTE_CHOICES.get(str(value).strip().lower())
    if w is None:
        raise InvalidParameter(f"a vote must be a, b, tie or bothbad, got {value!r}")
    return w


_migration = collector(MIGRATIONS)


@_migration
def a001_battles(db: sqlite3.Connection) -> str:
    return """
        CREATE TABLE battles (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            prompt TEXT NOT NULL,
            model_a TEXT NOT NULL,
            model_b TEXT NOT NULL,
            answer_a TEXT NOT NULL DEFAULT '',
            answer_b TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            winner TEXT CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
            voted REAL,
            voter TEXT,
            origin TEXT NOT NULL DEFAULT 'cli',
            extra TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX battles_created ON battles(created);
        CREATE TABLE judgements (
            battle_id TEXT NOT NULL REFERENCES battles(id),
            judge TEXT NOT NULL,
            created REAL NOT NULL,
            first TEXT NOT NULL,
            swapped TEXT NOT NULL,
            winner TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
            PRIMARY KEY (battle_id, judge)
        );
    """


class ArenaDB:
    """Thread-safe access to arena.db; every write is one transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = open_database(self.path, MIGRATIONS, "the arena database")
        self.db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings) -> "ArenaDB":
        return cls(settings.data_dir / "arena.db")

    # -- battles ---------------------------------------------------------------------
    def add_battle(self, *, prompt: str, model_a: str, model_b: str, answer_a: str, answer_b: str,
                   params: dict[str, Any], origin: str = "cli", extra: dict[str, Any] | None = None,
                   id: str | None = None) -> str:
        bid = id or uuid.uuid4().hex[:16]
        with self._lock:
            self.db.execute(
                "INSERT INTO battles(id, created, prompt, model_a, model_b, answer_a, answer_b, params, origin, extra) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (bid, time.time(), prompt, model_a, model_b, answer_a, answer_b, json.dumps(params), origin,
                 json.dumps(extra or {}, ensure_ascii=False)))
        return bid

    def get(self, battle_id: str) -> dict[str, Any]:
        with self._lock:
            row = self.db.execute("SELECT * FROM battles WHERE id = ?", (battle_id,)).fetchone()
        if row is None:
            raise InvalidParameter(f"no battle with id {battle_id!r}")
        return _battle(row)

    def vote(self, battle_id: str, winner: str, *, voter: str | None = None) -> dict[str, Any]:
        """Record the vote on a battle; a battle takes one vote, and a second one is refused."""
        w = parse_winner(winner)
        with self._lock:
            cur = self.db.execute("UPDATE battles SET winner = ?, voted = ?, voter = ? WHERE id = ? AND winner IS NULL",
                                  (w, time.time(), voter, battle_id))
            if cur.rowcount == 0:
                row = self.db.execute("SELECT winner FROM battles WHERE id = ?", (battle_id,)).fetchone()
                if row is None:
                    raise InvalidParameter(f"no battle with id {battle_id!r}")
                raise InvalidParameter(f"battle {battle_id} already has a vote ({row[0]}); a battle takes one vote")
        return self.get(battle_id)

    def battles(self, *, voted: bool | None = None, models: Iterable[str] | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM battles", []
        where = []
        if voted is True:
            where.append("winner IS NOT NULL")
        elif voted is False:
            where.append("winner IS NULL")
        if models is not None:
            names = list(models)
            marks = ",".join("?" * len(names))
            where.append(f"model_a IN ({marks}) AND model_b IN ({marks})")
            args += names + names
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, rowid"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self.db.execute(sql, args).fetchall()
        return [_battle(r) for r in rows]

    def outcomes(self, *, judge: str | None = None) -> list[tuple[str, str, str]]:
        """(model_a, model_b, winner) of every voted battle in time order, or of ``judge``'s verdicts."""
        with self._lock:
            if judge is None:
                rows = self.db.execute("SELECT model_a, model_b, winner FROM battles WHERE winner IS NOT NULL "
                                       "ORDER BY voted, rowid").fetchall()
            else:
                rows = self.db.execute("SELECT b.model_a, b.model_b, j.winner FROM judgements j JOIN battles b "
                                       "ON b.id = j.battle_id WHERE j.judge = ? ORDER BY j.created, b.rowid",
                                       (judge,)).fetchall()
        return [tuple(r) for r in rows]

    def pair_counts(self) -> Counter:
        """Battles so far per unordered pair of models."""
        with self._lock:
            rows = self.db.execute("SELECT model_a, model_b, COUNT(*) FROM battles GROUP BY model_a, model_b").fetchall()
        counts: Counter = Counter()
        for a, b, n in rows:
            counts[frozenset((a, b))] += n
        return counts

    # -- judgements ------------------------------------------------------------------
    def add_judgement(self, battle_id: str, judge: str, *, first: str, swapped: str, winner: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO judgements(battle_id, judge, created, first, swapped, winner) "
                            "VALUES (?,?,?,?,?,?)", (battle_id, judge, time.time(), first, swapped, winner))

    def judgements(self, judge: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT * FROM judgements WHERE judge = ?", (judge,)).fetchall()
        return {r["battle_id"]: dict(r) for r in rows}

    # -- Chatbot Arena layout --------------------------------------------------------
    def export(self) -> Iterator[dict[str, Any]]:
        """Voted battles as records in the public Chatbot Arena battle layout (one JSON object each)."""
        for b in self.battles(voted=True):
            yield {
                "question_id": b["id"], "model_a": b["model_a"], "model_b": b["model_b"], "winner": b["winner"],
                "judge": b["voter"] or "anonymous",
                "conversation_a": [{"role": "user", "content": b["prompt"]}, {"role": "assistant", "content": b["answer_a"]}],
                "conversation_b": [{"role": "user", "content": b["prompt"]}, {"role": "assistant", "content": b["answer_b"]}],
                "turn": 1, "anony": True, "language": "unknown", "tstamp": b["voted"] or b["created"],
                "params": b["params"],
            }

    def import_records(self, lines: Iterable[str], *, origin: str = "import") -> tuple[int, int]:
        """Read battles in the Chatbot Arena layout (JSON lines, or one JSON array); all or nothing:
        a malformed record is an error naming its line, and nothing is imported. Records whose
        ``question_id`` is already stored are skipped, so importing a file twice adds nothing.
        Returns (added, skipped)."""
        text = "".join(lines)
        records = _records(text)
        rows = [_import_row(n, rec, origin) for n, rec in records]
        added = skipped = 0
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO battles(id, created, prompt, model_a, model_b, answer_a, answer_b, "
                        "params, winner, voted, voter, origin, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
                    added += cur.rowcount
                    skipped += 1 - cur.rowcount
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return added, skipped

    def close(self) -> None:
        self.db.close()


def _battle(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for key in ("params", "extra"):
        try:
            d[key] = json.loads(d[key])
        except (TypeError, ValueError):
            d[key] = {}
    return d


def _records(text: str) -> list[tuple[int, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # FastChat's clean_battle_*.json: one array
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidParameter(f"the file is not valid JSON: {exc}") from None
        return [(i + 1, rec) for i, rec in enumerate(data)]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except ValueError as exc:
            raise InvalidParameter(f"line {n}: not valid JSON ({exc.msg}); nothing was imported") from None
    return out


def _turns(conv: Any) -> tuple[str, str]:
    """(the user's first message, the assistant's answers) of a conversation, or empty strings."""
    if not isinstance(conv, list):
        return "", ""
    user = next((m.get("content", "") for m in conv if isinstance(m, dict) and m.get("role") == "user"), "")
    answer = "\n\n".join(str(m.get("content", "")) for m in conv if isinstance(m, dict) and m.get("role") == "assistant")
    return str(user), answer


def _import_row(n: int, rec: Any, origin: str) -> tuple:
    where = f"line {n}"
    if not isinstance(rec, dict):
        raise InvalidParameter(f"{where}: expected a JSON object with model_a, model_b and winner; nothing was imported")
    for key in ("model_a", "model_b", "winner"):
        if not isinstance(rec.get(key), str) or not rec[key]:
            raise InvalidParameter(f"{where}: {key} is missing or not a string; nothing was imported")
    if rec["winner"] not in WINNERS:
        raise InvalidParameter(f"{where}: winner must be one of {', '.join(WINNERS)}, got {rec['winner']!r}; "
                               "nothing was imported")
    if rec["model_a"] == rec["model_b"]:
        raise InvalidParameter(f"{where}: model_a and model_b are the same model; nothing was imported")
    ts = rec.get("tstamp", time.time())
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise InvalidParameter(f"{where}: tstamp must be a number (seconds since the epoch); nothing was imported")
    prompt, answer_a = _turns(rec.get("conversation_a"))
    _, answer_b = _turns(rec.get("conversation_b"))
    # the record's own id, else one derived from its content: importing a file twice adds nothing
    bid = str(rec.get("question_id") or hashlib.sha1(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:16])
    params = rec.get("params") if isinstance(rec.get("params"), dict) else {}
    extra = {k: rec[k] for k in ("language", "turn", "anony") if k in rec}
    return (bid, float(ts), prompt, rec["model_a"], rec["model_b"], answer_a, answer_b, json.dumps(params),
            rec["winner"], float(ts), str(rec.get("judge") or "import"), origin, json.dumps(extra))

