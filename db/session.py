"""Engines and sessions. SQLite gets the settings that make concurrent writers safe (see docs/database.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from formats.errors import FormatError

DEFAULT_URL = "sqlite:///var/study.db"
DB_ENV = "SKINGEN_DB_URL"  # the database URL every command and app server falls back to
WRITE_OPTION = "skingen_write"
SQLITE_BUSY_TIMEOUT_S = 30


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; busy_timeout makes writers queue instead of failing with
    # "database is locked"; synchronous=NORMAL is durable with WAL at a fraction of FULL's fsyncs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own BEGIN can't be IMMEDIATE).
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    # A write transaction must take the write lock up front: a deferred transaction that reads first and
    # writes later fails at once with SQLITE_BUSY if another writer committed in between (no busy wait).
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite files get their directory created and safe pragmas set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_S})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``SKINGEN_DB_URL``, else the embedded SQLite default."""
    return url or os.environ.get(DB_ENV) or DEFAULT_URL


class DatabaseNotFound(FormatError):
    """``--db`` names no existing database: the message gives the resolved path, or the host and database it
    tried. Nothing was created (a typo must not leave an empty study database behind)."""


CREATORS = "`skingen-study init`, `serve --init`, `serve --demo` and `restore`"


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file of ``url``; None for another backend or an in-memory database."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).resolve()


def absolute_url(url: str) -> str:
    """``url`` as a command typed in another folder needs it: a relative SQLite path made absolute, a
    password hidden."""
    parsed = make_url(url)
    path = sqlite_file(url)
    if path is not None:
        parsed = parsed.set(database=str(path))
    return parsed.render_as_string(hide_password=True)


def open_existing(url: str) -> Database:
    """The database at ``url``, which must exist: a SQLite file is checked before connecting (connecting
    would create it), a server is connected to once (its error names the host and database). For every
    command but the few that create databases (:data:`CREATORS`)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise DatabaseNotFound(
            f"{url}: no database file at {path} (nothing was created; {CREATORS} create databases)"
        )
    db = Database(url)
    if path is None:
        try:
            with db.engine.connect():
                pass
        except OperationalError as exc:
            db.dispose()
            parsed = make_url(url)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise DatabaseNotFound(
                f"{parsed.render_as_string(hide_password=True)}: cannot connect to database "
                f"{parsed.database!r} on {parsed.host or 'localhost'}:{parsed.port or 'default port'} ({reason})"
            ) from None
    return db


class Database:
    """An engine and its two session kinds: reads, and writes that lock up front (BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reads() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error (nothing half-written)."""
        with self._writes() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
