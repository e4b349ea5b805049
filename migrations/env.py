"""Alembic environment: the schema is the models' metadata, the connection comes from the bot.

`python -m bot db upgrade` (and `Database.upgrade()`) hands its open connection over in
`config.attributes["connection"]`; run by the `alembic` tool instead, the URL comes from the
same settings the bot reads (DATABASE_URL).
"""

from __future__ import annotations

from alembic import context

from bot.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from bot.config import load_settings
        from bot.store.db import Database

        database = Database(load_settings().database_url)
        try:
            with database.engine.begin() as own_connection:
                _run(own_connection)
        finally:
            database.dispose()
    else:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite alters tables by copying them; Alembic's batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `python -m bot db upgrade`")
run_migrations_online()
