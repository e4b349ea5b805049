"""`python -m bot poll` with only Confluence configured, against the stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.__main__ import main
from bot.store.db import Database
from bot.store.models import Occurrence
from tests.confluence.conftest import API_TOKEN, Cloud, key


@pytest.fixture
def environment(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("SLACK_BOT_TOKEN", "IMAP_HOST", "LEAKWATCH_FINGERPRINT_KEY", "CONFLUENCE_PAT"):
        monkeypatch.delenv(name, raising=False)
    database_url = f"sqlite:///{tmp_path / 'leakwatch.db'}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEAKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONFLUENCE_URL", cloud.standin.url)
    monkeypatch.setenv("CONFLUENCE_USER", cloud.admin.email)
    monkeypatch.setenv("CONFLUENCE_TOKEN", API_TOKEN)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return database_url


def test_poll_reads_confluence_and_stores_the_finding(
    cloud: Cloud, environment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = cloud.site.add_user("Alice Adams", "alice@example.com")
    page = cloud.site.add_page(cloud.site.add_space("ENG"), "Runbook", f"<p>{key(70)}</p>", alice)

    assert main(["poll", "--no-send"]) == 0
    assert main(["poll", "--no-send"]) == 0

    out = capsys.readouterr().out
    assert "confluence: 1 read, 0 skipped" in out
    assert "1 new findings" in out and "0 new findings" in out
    db = Database(environment)
    with db.session() as session:
        [occurrence] = session.scalars(sa.select(Occurrence)).all()
        assert (occurrence.source, occurrence.unit, occurrence.item_id) == (
            "confluence",
            "ENG",
            page.id,
        )
        assert occurrence.author_email == "alice@example.com"
    db.dispose()


def test_poll_with_a_refused_token_says_what_to_fix(
    cloud: Cloud,
    environment: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONFLUENCE_TOKEN", "revoked-token")
    assert main(["poll", "--no-send"]) == 2
    err = capsys.readouterr().err
    assert "CONFLUENCE_USER" in err and "CONFLUENCE_TOKEN" in err
    assert "revoked-token" not in err
