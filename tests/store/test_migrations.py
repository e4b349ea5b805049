"""Alembic alone creates the schema: every migration goes up and down, and matches the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.store.db import Database
from bot.store.models import Base


def _revisions(db: Database) -> list[str]:
    script = ScriptDirectory.from_config(db._alembic_config(None))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_every_migration_goes_up_and_down(database_url: str) -> None:
    db = Database(database_url)
    try:
        revisions = _revisions(db)
        assert revisions, "no migrations found"
        for revision in revisions:
            db.upgrade(revision)
            assert db.current_revision() == revision
        assert _tables(db) == set(Base.metadata.tables)
        for revision in reversed(revisions[:-1]):
            db.downgrade(revision)
            assert db.current_revision() == revision
        db.downgrade("base")
        assert db.current_revision() is None
        assert _tables(db) == set()
        db.upgrade()  # and up again from nothing
        assert db.current_revision() == db.head_revision()
    finally:
        db.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        with db.engine.connect() as connection:
            # Server defaults are compared on PostgreSQL only: SQLite reflects '' quoted and
            # Alembic reports a difference where there is none.
            options = {"compare_type": True, "compare_server_default": not db.is_sqlite}
            context = MigrationContext.configure(connection, opts=options)
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        db.dispose()


def test_constraint_names_are_those_of_the_models(database_url: str) -> None:
    # Alembic does not compare check constraints; their names are checked here.
    def names(engine: sa.Engine) -> set[tuple[str, str | None]]:
        inspector = sa.inspect(engine)
        return {
            (table, constraint["name"])
            for table in Base.metadata.tables
            for constraint in inspector.get_check_constraints(table)
            + inspector.get_unique_constraints(table)
            + inspector.get_foreign_keys(table)
        }

    model_engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(model_engine)
    db = Database(database_url)
    try:
        db.upgrade()
        assert names(db.engine) == names(model_engine)
        assert ("notifications", "ck_notifications_status") in names(db.engine)
    finally:
        db.dispose()
        model_engine.dispose()


def test_sqlite_database_is_configured_for_safe_concurrent_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'lw.db'}")
    try:
        db.upgrade()
        assert (tmp_path / "nested" / "dir" / "lw.db").is_file()
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        db.dispose()


def test_two_processes_upgrading_at_once_both_succeed(database_url: str) -> None:
    import threading

    databases = [Database(database_url), Database(database_url)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def upgrade(db: Database) -> None:
        try:
            barrier.wait(timeout=10)
            db.upgrade()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=upgrade, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert databases[0].current_revision() == databases[0].head_revision()
    finally:
        for db in databases:
            db.dispose()
