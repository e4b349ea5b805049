"""No raw key anywhere: not in the SQLite file, not in a pg_dump, not in the logs."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.detection.fakes import expand, fake_secret
from bot.detection.rules import default_rules
from bot.logs import configure_logging
from bot.pipeline import ingest
from bot.polling import poll_source
from bot.store import queries
from bot.store.db import Database
from bot.store.models import Secret
from connectors.base import Document, Exposure, SourceKind, Unit, UnitError
from tests.pipeline.keys import KeyDetector
from tests.services import unavailable

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEEDS = (1, 2)


def raw_keys() -> list[tuple[str, str]]:
    """(text, key) for every rule and seed: the rule's own example, filled with its fake."""
    return [
        (expand(rule.examples[0], rule.id, seed), fake_secret(rule.id, seed))
        for rule in default_rules()
        for seed in SEEDS
    ]


def needles(value: str) -> list[bytes]:
    """The whole key, and its middle: what a masked preview must never show."""
    found = [value.encode()]
    if len(value) > 24:
        found.append(value[8:-4].encode())
    return found


class KeySource:
    kind: SourceKind = "slack"

    def __init__(self, texts: list[str], keys: list[str]) -> None:
        self.texts = texts
        self.keys = keys

    def units(self) -> Iterator[Unit]:
        yield Unit("C1", "#general")
        yield Unit("C2", "#gone")

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        if unit.id == "C2":
            raise UnitError("C2", f"channel_not_found (last text: {self.keys[0]})")
        for n, text in enumerate(self.texts):
            document = Document(
                source="slack", unit="C1", unit_name="#general", item_id=f"C1:{n}",
                text=f"deploy with\n{text}\nthanks", workspace="T1", author="U1",
                title=f"message {n}", exposure=Exposure(audience=50, is_public=True),
            )  # fmt: skip
            yield document, str(n)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # every statement and its values
    try:
        yield stream
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
        root.handlers[:], root.level = handlers, level


def _fill(db: Database, examples: list[tuple[str, str]]) -> list[str]:
    texts, keys = [text for text, _ in examples], [value for _, value in examples]
    db.upgrade()
    detector = KeyDetector()
    source = KeySource(texts, keys)
    report = poll_source(db, source, detector, workspace="T1", now=NOW, batch_size=7)
    assert report.units_failed and report.findings == len(keys)
    assert keys[0] not in report.units_failed[0][1]  # the error is kept, the key is not
    with db.session() as s:  # edits and the same keys by email as well
        ingest(s, [Document(source="email", unit="INBOX", item_id="<x@example.com>",
                            text="\n".join(texts), author_email="a@example.com")],
               detector, now=NOW, workspace="T1")  # fmt: skip
        ingest(s, [Document(source="slack", unit="C1", item_id="C1:0", text="(edited)",
                            workspace="T1")], detector, now=NOW)  # fmt: skip
        secret = s.scalars(sa.select(Secret)).first()
        assert secret is not None
        queries.set_status(s, secret, "rotated", by="U1", now=NOW, reason="done")
    with db.session() as s:
        previews = s.scalars(sa.select(Secret.preview)).all()
        assert len(previews) == len(keys)  # every key was found and stored, masked
    return keys


def _assert_absent(haystack: bytes, keys: list[str], where: str) -> None:
    leaks = [value[:6] + "…" for value in keys for needle in needles(value) if needle in haystack]
    assert leaks == [], f"raw key material in {where}: {leaks}"


def test_no_plaintext_in_sqlite_file_or_logs(tmp_path, captured_logs: io.StringIO) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "leakwatch.db"
    db = Database(f"sqlite:///{path}")
    keys = _fill(db, raw_keys())
    db.dispose()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("leakwatch.db")]  # -wal, -shm
    content = b"".join(p.read_bytes() for p in files)
    assert b"openai_project_key" in content  # the file does hold the findings
    _assert_absent(content, keys, "the SQLite file")
    logs = captured_logs.getvalue()
    assert "INSERT INTO occurrences" in logs and "channel_not_found" in logs
    _assert_absent(logs.encode(), keys, "the logs")


def test_no_plaintext_in_a_postgresql_dump(postgres_url: str, captured_logs: io.StringIO) -> None:
    pg_dump = shutil.which("pg_dump") or "/usr/bin/pg_dump"
    if not os.path.exists(pg_dump):
        unavailable("pg_dump is not installed")
    db = Database(postgres_url)
    keys = _fill(db, raw_keys())
    db.dispose()
    url = make_url(postgres_url)
    dump = subprocess.run(
        [pg_dump, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", url.database or ""],
        check=True, capture_output=True, timeout=120,
    ).stdout  # fmt: skip
    assert b"openai_project_key" in dump
    _assert_absent(dump, keys, "pg_dump")
    _assert_absent(captured_logs.getvalue().encode(), keys, "the logs")
