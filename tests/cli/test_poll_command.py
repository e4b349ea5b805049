"""`python -m bot poll` end to end: settings from the environment, the stand-in Slack, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from bot.detection.fakes import fake_secret
from tests.standins.slack import SlackStandin, Workspace


@pytest.fixture
def workspace() -> Workspace:
    return Workspace(team_id="T0POLL", name="Acme", domain="acme")


def _environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack: SlackStandin, security: str = ""
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env; data/ lands in the test's folder
    for name in ("DATABASE_URL", "CONFLUENCE_URL", "IMAP_HOST", "LEAKWATCH_FINGERPRINT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    monkeypatch.setenv("LEAKWATCH_SECURITY_CHANNEL", security)


def test_poll_finds_a_key_dms_the_poster_once_and_resumes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = workspace.add_user("alice", email="alice@acme.test")
    general = workspace.add_channel("general", members=[alice.id, workspace.bot.id])
    security = workspace.add_channel("security", members=[workspace.bot.id])
    key = fake_secret("openai_project_key", seed=7)
    workspace.post(general, alice, f"here you go: {key}")
    with SlackStandin(workspace) as slack:
        _environment(monkeypatch, tmp_path, slack, security.id)

        assert main(["poll"]) == 0
        assert len(slack.dms_to(alice.id)) == 1
        out = capsys.readouterr().out
        assert "slack: 2 read" in out and "1 new findings" in out
        assert key not in out

        # A second poll reads from the stored cursor: nothing new, nothing sent again.
        assert main(["poll"]) == 0
        assert len(slack.dms_to(alice.id)) == 1
        assert "0 new findings" in capsys.readouterr().out

        # A later message is picked up by the next poll.
        second = fake_secret("anthropic_api_key", seed=3)
        workspace.post(general, alice, f"and the other one {second}")
        assert main(["poll"]) == 0
        assert len(slack.dms_to(alice.id)) == 2

    assert (tmp_path / "data" / "leakwatch.db").is_file()
    assert key.encode() not in (tmp_path / "data" / "leakwatch.db").read_bytes()


def test_poll_without_sources_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "CONFLUENCE_URL", "IMAP_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert main(["poll"]) == 2
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err


def test_poll_with_a_refused_token_names_the_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SlackStandin(workspace) as slack:
        _environment(monkeypatch, tmp_path, slack)
        slack.revoked.add(slack.bot_token)
        assert main(["poll"]) == 2
    err = capsys.readouterr().err
    assert "slack" in err.lower() and ("auth" in err.lower() or "token" in err.lower())
