"""One workspace, two sources: the same key pasted in Slack and written in a Confluence page is
one finding with two occurrences, and its poster hears about both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.detection.fakes import fake_secret
from tests.standins.confluence import ConfluenceSite, ConfluenceStandin
from tests.standins.slack import SlackStandin, Workspace

API_TOKEN = "stand-in-api-token"  # the stand-in's password, not a credential format


def test_slack_and_confluence_share_one_finding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = fake_secret("anthropic_api_key", seed=21)
    ws = Workspace(team_id="T0BOTH", name="Acme", domain="acme")
    alice = ws.add_user("alice", email="alice@acme.test")
    general = ws.add_channel("general", members=[alice.id, ws.bot.id])
    security = ws.add_channel("security", members=[ws.bot.id])
    ws.post(general, alice, f"staging uses {key}")

    site = ConfluenceSite(cloud=True)
    reader = site.add_user("LeakWatch Reader", "leakwatch@acme.test")
    site.add_api_token(reader, API_TOKEN)
    author = site.add_user("Alice", "alice@acme.test")
    site.add_page(site.add_space("OPS"), "Staging runbook", f"<p>ANTHROPIC_API_KEY={key}</p>",
                  author)

    monkeypatch.chdir(tmp_path)
    for name in ("IMAP_HOST", "DATABASE_URL", "LEAKWATCH_FINGERPRINT_KEY", "CONFLUENCE_PAT"):
        monkeypatch.delenv(name, raising=False)
    with SlackStandin(ws) as slack, ConfluenceStandin(site) as confluence:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("LEAKWATCH_SECURITY_CHANNEL", security.id)
        monkeypatch.setenv("CONFLUENCE_URL", confluence.url)
        monkeypatch.setenv("CONFLUENCE_USER", reader.email)
        monkeypatch.setenv("CONFLUENCE_TOKEN", API_TOKEN)

        assert main(["poll"]) == 0
        capsys.readouterr()
        assert main(["findings", "--format", "jsonl"]) == 1
        [finding] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert {o["source"] for o in finding["occurrences"]} == {"slack", "confluence"}

        # Alice gets one DM, and the Confluence sighting goes into its thread.
        dms = slack.dms_to(alice)
        top = [m for m in dms if m.thread_ts is None]
        assert len(top) == 1
        assert [m for m in dms if m.thread_ts == top[0].ts]
        assert all(key not in str(m.blocks) + m.text for m in dms)
