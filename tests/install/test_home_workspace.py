"""Many workspaces and Confluence: LEAKWATCH_HOME_WORKSPACE names the team whose people are
told about Confluence findings; its token sends the DM, the other workspace hears nothing."""

from __future__ import annotations

from pathlib import Path

from bot.config import load_settings
from bot.detection.fakes import fake_secret
from bot.service import BotService
from tests.install.standins import OAuthSlack
from tests.install.test_many_workspaces import SlackRouter, _team
from tests.install.test_oauth import CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET, _install
from tests.standins.confluence import ConfluenceSite, ConfluenceStandin

API_TOKEN = "stand-in-api-token"  # the stand-in's password, not a credential format


def test_confluence_findings_go_to_the_home_workspace(tmp_path: Path) -> None:
    ws_a, alice_a, _, _ = _team("T0ALPHA", "Alpha", seed=1)
    ws_b, alice_b, _, _ = _team("T0BRAVO", "Bravo", seed=2)
    site = ConfluenceSite(cloud=True)
    reader = site.add_user("LeakWatch Reader", "leakwatch@alpha.test")
    site.add_api_token(reader, API_TOKEN)
    author = site.add_user("Alice", alice_b.email or "")  # Bravo's Alice wrote the page
    key = fake_secret("openai_project_key", seed=31)
    site.add_page(site.add_space("OPS"), "Runbook", f"<p>OPENAI_API_KEY={key}</p>", author)

    slack_a = OAuthSlack(ws_a, CLIENT_ID, CLIENT_SECRET)
    slack_b = OAuthSlack(ws_b, CLIENT_ID, CLIENT_SECRET)
    with slack_a, slack_b, SlackRouter(slack_a, slack_b) as router, \
            ConfluenceStandin(site) as confluence:
        settings = load_settings({
            "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "LEAKWATCH_TOKEN_KEY": "a passphrase only the operator knows",
            "SLACK_API_URL": router.api_url,
            "LEAKWATCH_DATA_DIR": str(tmp_path),
            "LEAKWATCH_SECURITY_CHANNEL": "#security",
            "LEAKWATCH_HOME_WORKSPACE": ws_b.team_id,
            "CONFLUENCE_URL": confluence.url,
            "CONFLUENCE_USER": reader.email,
            "CONFLUENCE_TOKEN": API_TOKEN,
            "SLACK_POLL_INTERVAL": "3600",
            "CONFLUENCE_POLL_INTERVAL": "3600",
        })
        bot = BotService(settings)
        bot.start(http_port=0, http_host="127.0.0.1")
        bot.scheduler.pause()
        try:
            base = f"http://127.0.0.1:{bot.http_port}"
            for slack in (slack_a, slack_b):
                _install(base, slack)
            job = bot.scheduler.get_job("poll-confluence")
            assert job is not None
            job.func()  # (the poll at start already ran, before any workspace was installed)
            flush = bot.scheduler.get_job("notifier-flush")
            assert flush is not None
            flush.func()
        finally:
            bot.stop()

    [dm] = slack_b.dms_to(alice_b)
    assert key not in str(dm.blocks) + dm.text
    assert slack_a.dms_to(alice_a) == []
    token_b = slack_b.installed_tokens[0]
    posts = [c for c in slack_b.calls_to("chat.postMessage") if c.error is None]
    assert posts and all(call.token == token_b for call in posts)
