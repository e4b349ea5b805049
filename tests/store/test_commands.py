"""`python -m bot db …` and `python -m bot findings`, as a user runs them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.__main__ import main
from bot.pipeline import ingest
from bot.store.db import Database
from connectors.base import Document, Exposure
from tests.pipeline.keys import KeyDetector, key

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    for name in ("SLACK_BOT_TOKEN", "CONFLUENCE_URL", "IMAP_HOST", "SLACK_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEAKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield database_url
    root.handlers[:], root.level = handlers, level  # main() points logging at captured stderr


def test_db_upgrade_current_and_downgrade(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 0
    assert "base (empty)" in capsys.readouterr().out
    head = Database(env).head_revision()
    assert main(["db", "upgrade"]) == 0
    assert f"{head} (head)" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert f"{head} (up to date)" in capsys.readouterr().out
    assert main(["db", "downgrade", "base"]) == 0
    assert "base (empty)" in capsys.readouterr().out


def _store_findings(url: str) -> tuple[str, str]:
    openai_key, stripe_key = key(1), key(2, "low")
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        ingest(s, [
            Document(source="slack", unit="C1", unit_name="#general", item_id="C1:1.0",
                     text=f"use {openai_key}", workspace="T1", author="U1",
                     permalink="https://example.slack.com/archives/C1/p10",
                     exposure=Exposure(audience=300, is_public=True)),
            Document(source="email", unit="INBOX", item_id="<a@example.com>",
                     text=f"{openai_key}\nand {stripe_key}", author_email="bo@example.com"),
        ], KeyDetector(), now=NOW, workspace="T1")  # fmt: skip
    db.dispose()
    return openai_key, stripe_key


def test_findings_as_json_lines_with_their_occurrences(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_key, stripe_key = _store_findings(env)
    assert main(["findings", "--format", "jsonl"]) == 1
    out = capsys.readouterr().out
    assert openai_key not in out and stripe_key not in out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["provider"] for r in records] == ["OpenAI", "Stripe"]  # riskiest first
    places = [(o["source"], o["container"], o["item_id"], o["author"] or o["author_email"],
               o["permalink"]) for o in records[0]["occurrences"]]  # fmt: skip
    assert places == [
        ("slack", "C1", "C1:1.0", "U1", "https://example.slack.com/archives/C1/p10"),
        ("email", "INBOX", "<a@example.com>", "bo@example.com", None),
    ]
    assert records[0]["risk"]["level"] == "critical"
    assert any("public channel with 300 members" in r for r in records[0]["risk"]["reasons"])


def test_findings_filters_and_table(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _store_findings(env)
    assert main(["findings", "--provider", "stripe"]) == 1
    table = capsys.readouterr().out
    assert "Stripe" in table and "OpenAI" not in table and "1 finding\n" in table
    assert main(["findings", "--source", "slack", "--format", "jsonl"]) == 1
    assert [json.loads(x)["rule_id"] for x in capsys.readouterr().out.splitlines()] == [
        "openai_project_key"
    ]
    assert main(["findings", "--status", "rotated"]) == 0
    assert "No findings." in capsys.readouterr().out
