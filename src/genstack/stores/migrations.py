"""Schema migrations for the SQLite store, written as functions and applied in
order exactly once each (recorded in ``_migrations``).

A migration returns the SQL to run; it runs in one transaction together with
the row that records it, so a crash mid-migration leaves the schema untouched.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

Migration = Callable[[sqlite3.Connection], str]

MIGRATIONS: list[Migration] = []

#: chunks_fts's tokenizer, as the first migration created it (the sparse BM25 index reads its terms)
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


def collector(migrations: list[Migration]) -> Callable[[Migration], Migration]:
    """A decorator that appends each migration it decorates to ``migrations``, in file order."""
    def add(fn: Migration) -> Migration:
        migrations.append(fn)
        return fn
    return add


migration = collector(MIGRATIONS)


def open_database(path: str | Path, migrations: list[Migration], what: str, *,
                  foreign_keys: bool = False) -> sqlite3.Connection:
    """Open (creating it and its folder) one of genstack's own SQLite files: autocommit, usable from
    any thread, a 30 s busy timeout, WAL, ``migrations`` applied. A file that is not a database is a
    one-line error naming ``what``."""
    from ..errors import GenstackError

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(p, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        migrate(db, migrations)
    except sqlite3.DatabaseError as exc:
        raise GenstackError(f"cannot open {what} {p}: {exc}") from None
    return db


@migration
def m001_initial(db: sqlite3.Connection) -> str:
    return """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sources (
            source TEXT PRIMARY KEY,
            hash TEXT,
            n_chunks INTEGER NOT NULL DEFAULT 0,
            updated REAL NOT NULL
        );
        CREATE TABLE chunks (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT NOT NULL DEFAULT '',
            vector BLOB NOT NULL
        );
        CREATE INDEX chunks_source ON chunks(source);
        CREATE INDEX chunks_hash ON chunks(content_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, text, content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
        END;
        CREATE TRIGGER chunks_au AFTER UPDATE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
            INSERT INTO chunks_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
        END;
        INSERT INTO meta(key, value) VALUES ('version', '0');
    """


def migrate(db: sqlite3.Connection, migrations: list[Callable[[sqlite3.Connection], str]] | None = None) -> None:
    """Apply the migrations not yet recorded in ``_migrations`` (the store's by default)."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    for fn in MIGRATIONS if migrations is None else migrations:
        if fn.__name__ in done:
            continue
        sql = fn(db)
        db.executescript(
            "BEGIN IMMEDIATE;\n" + sql
            + f"\nINSERT INTO _migrations(name, applied) VALUES ('{fn.__name__}', strftime('%s','now'));\nCOMMIT;"
        )
