"""The database handle: one engine, sessions as units of work, and Alembic upgrades.

    db = Database(settings.database_url)
    db.upgrade()                       # Alembic to head; the only way the schema is created
    with db.session() as session:      # commits on success, rolls back on error
        ...

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout; every
transaction starts with BEGIN IMMEDIATE, so two writers queue up instead of failing half-way.
PostgreSQL is reached through psycopg 3; `postgresql://` and `postgres://` URLs are accepted.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

# Alembic announces every plugin and step at INFO; the bot logs what matters itself.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
SCHEMA_LOCK = 0x4C57_0001  # advisory lock id taken while migrating ("LW", 1)


def normalize_url(url: str | URL) -> URL:
    """Pick psycopg 3 for PostgreSQL URLs that name no driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.engine = _create_engine(self.url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command

        before = self.current_revision()
        with self.engine.begin() as connection:
            self._lock_schema(connection)
            command.upgrade(self._alembic_config(connection), revision)
        after = self.current_revision()
        if after != before:
            log.info("database schema upgraded from %s to %s", before or "empty", after)

    def downgrade(self, revision: str) -> None:
        from alembic import command

        with self.engine.begin() as connection:
            self._lock_schema(connection)
            command.downgrade(self._alembic_config(connection), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config(None)).get_current_head()

    def dispose(self) -> None:
        self.engine.dispose()

    def _lock_schema(self, connection: sa.Connection) -> None:
        # Replicas starting together must not run the same migration twice. PostgreSQL: a
        # transaction-scoped advisory lock; SQLite: BEGIN IMMEDIATE already holds the write lock.
        if self.url.get_backend_name() == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})

    def _alembic_config(self, connection: sa.Connection | None) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        # env.py runs on this connection; the URL is never written into a config file.
        config.attributes["connection"] = connection
        return config

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


def _create_engine(url: URL, *, echo: bool) -> Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, echo=echo, pool_pre_ping=True)
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    )
    sa.event.listen(engine, "connect", _configure_sqlite_connection)
    sa.event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module so that BEGIN is ours (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL survives a crash of the process; only a power cut may lose the
        # last transactions, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a lasting property of the file) unless it is already.

    The switch needs the file to itself and, unlike other statements, can fail with "database
    is locked" at once instead of waiting, when two processes open a new file together; so it
    is retried within the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() in ("wal", "memory"):
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _begin_immediate(connection: sa.Connection) -> None:
    # A deferred SQLite transaction that reads and then writes can fail with "database is
    # locked" when another writer got in between; taking the write lock at BEGIN avoids that.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
