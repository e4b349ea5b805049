"""Pipeline fixtures: an upgraded database (SQLite and PostgreSQL), a detector, documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.store.db import Database
from tests.pipeline.keys import KeyDetector


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def detector() -> KeyDetector:
    return KeyDetector()
