"""`python -m bot run`: the samples tour without Slack, and start-up errors that name the fix."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import load_settings
from bot.service import BotService
from tests.standins.slack import SlackStandin, Workspace


def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL",
                 "CONFLUENCE_URL", "IMAP_HOST", "LEAKWATCH_FINGERPRINT_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_without_slack_it_stores_the_samples_and_shows_the_dms_and_digest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "OpenAI project API key" in out
    assert re.search(r"DM to the poster, Slack user U\w+", out)  # a Slack export's poster
    assert "DM to the author, found in Slack by their address" in out  # a mail's sender
    assert "[I rotated it]" in out and "[Not a secret]" in out
    assert "LeakWatch weekly digest" in out
    assert "SLACK_BOT_TOKEN" in out and "SLACK_APP_TOKEN" in out  # how to connect Slack
    database = tmp_path / "data" / "leakwatch.db"
    assert database.is_file()

    # The raw keys of the samples appear nowhere but in the sample files themselves.
    samples = (tmp_path / "data" / "samples")
    keys = re.findall(r"sk-proj-[A-Za-z0-9_-]{60,}", "".join(
        p.read_text(errors="replace") for p in samples.rglob("*") if p.is_file()))
    assert keys
    for key in keys:
        assert key not in out
        assert key.encode() not in database.read_bytes()

    # Running it again stores nothing twice.
    assert main(["run"]) == 0
    assert out.count("DM to") == capsys.readouterr().out.count("DM to")


def test_http_mode_without_a_signing_secret_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "placeholder-token")
    assert main(["run", "--http"]) == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err


def test_http_mode_serves_a_health_check(tmp_path: Path) -> None:
    ws = Workspace(team_id="T0HTTP", name="Acme", domain="acme")
    with SlackStandin(ws) as slack:
        settings = load_settings({
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": "signing-secret-for-tests",
            "SLACK_API_URL": slack.api_url,
            "LEAKWATCH_DATA_DIR": str(tmp_path),
            "SLACK_POLL_INTERVAL": "3600",
        })
        bot = BotService(settings)
        bot.start(http_port=0, http_host="127.0.0.1")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{bot.http_port}/health") as reply:
                assert reply.status == 200 and reply.read() == b"ok"
        finally:
            bot.stop()
