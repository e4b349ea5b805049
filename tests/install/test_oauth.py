"""Many workspaces: a workspace installs LeakWatch through Slack's OAuth flow, its token is
stored encrypted, an event from it gets a DM sent with its own token, and uninstalling it
deletes the token."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config import Settings, load_settings
from bot.detection.fakes import fake_secret
from bot.slack_app.app import HttpServer, build_app, serve_http
from bot.store.db import Database
from bot.wiring import build_detector, open_database
from tests.install.standins import OAuthSlack
from tests.standins.slack import SignedSender, Workspace

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "client-secret-for-tests"
SIGNING_SECRET = "signing-secret-for-tests"


@pytest.fixture
def workspace() -> Workspace:
    return Workspace(team_id="T0NEWTEAM", name="Newco", domain="newco")


@pytest.fixture
def slack(workspace: Workspace) -> Iterator[OAuthSlack]:
    with OAuthSlack(workspace, CLIENT_ID, CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def settings(slack: OAuthSlack, database_url: str, tmp_path: Path) -> Settings:
    return load_settings({
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "LEAKWATCH_TOKEN_KEY": "a passphrase only the operator knows",
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "LEAKWATCH_DATA_DIR": str(tmp_path),
    })


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[HttpServer, Database]]:
    db = open_database(settings)
    server = serve_http(build_app(settings, db, build_detector(settings)), "127.0.0.1", 0)
    server.start_in_background()
    try:
        yield server, db
    finally:
        server.shutdown()
        server.server_close()
        db.dispose()


def _install(base: str, slack: OAuthSlack) -> str:
    """An admin's browser: open /slack/install, 'Allow' at Slack, follow the redirect.

    Bolt marks its state cookie Secure; a browser sends it back over https. The loopback
    server speaks http, so the cookie is sent back by hand, as the browser would over https.
    """
    with urllib.request.urlopen(f"{base}/slack/install") as page:
        html = page.read().decode()
        cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    assert cookie.startswith("slack-app-oauth-state=")
    authorize_url = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', html)
    assert authorize_url, "the install page links to Slack's authorize page"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(
        authorize_url.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == [CLIENT_ID]
    assert "chat:write" in query["scope"][0].split(",")
    code = slack.authorize()
    redirect = urllib.request.Request(
        f"{base}/slack/oauth_redirect?"
        + urllib.parse.urlencode({"code": code, "state": query["state"][0]}),
        headers={"Cookie": cookie},
    )
    with urllib.request.urlopen(redirect) as finished:
        return finished.read().decode()


def test_install_then_an_event_from_the_new_workspace_gets_a_dm(
    served: tuple[HttpServer, Database], slack: OAuthSlack, workspace: Workspace
) -> None:
    server, db = served
    base = f"http://127.0.0.1:{server.port}"
    page = _install(base, slack)
    assert "Thank you" in page or "success" in page.lower()
    [token] = slack.installed_tokens

    # The token is stored, but only encrypted.
    with db.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT bot_token FROM slack_bots")).scalars().all()
    assert stored and all(value.startswith("fernet:") and token not in value for value in stored)

    alice = workspace.add_user("alice", email="alice@newco.test")
    general = workspace.add_channel("general", members=[alice.id, workspace.bot.id])
    key = fake_secret("groq_api_key", seed=5)
    message = workspace.post(general, alice, f"GROQ_API_KEY={key}")
    sender = SignedSender(f"{base}/slack/events", SIGNING_SECRET, slack)
    reply = sender.event(workspace.message_event(general, message.ts))
    assert reply.status == 200

    assert slack.wait_for(lambda: len(slack.dms_to(alice)) == 1, timeout=10)
    posts = [c for c in slack.calls_to("chat.postMessage") if c.error is None]
    assert posts and all(call.token == token for call in posts)  # the workspace's own token
    assert key not in str(slack.dms_to(alice)[0].blocks)


def test_uninstalling_deletes_the_workspace_tokens(
    served: tuple[HttpServer, Database], slack: OAuthSlack, workspace: Workspace
) -> None:
    server, db = served
    base = f"http://127.0.0.1:{server.port}"
    _install(base, slack)
    sender = SignedSender(f"{base}/slack/events", SIGNING_SECRET, slack)
    assert sender.event({"type": "app_uninstalled", "event_ts": "1800000000.000100"}).status == 200

    def remaining() -> int:
        with db.engine.connect() as connection:
            bots = connection.execute(sa.text("SELECT count(*) FROM slack_bots")).scalar_one()
            installs = connection.execute(
                sa.text("SELECT count(*) FROM slack_installations")
            ).scalar_one()
            return int(bots) + int(installs)

    assert slack.wait_for(lambda: remaining() == 0, timeout=10)


def test_a_forged_install_redirect_is_refused(
    served: tuple[HttpServer, Database], slack: OAuthSlack
) -> None:
    server, _ = served
    code = slack.authorize()
    url = f"http://127.0.0.1:{server.port}/slack/oauth_redirect?code={code}&state=forged"
    try:
        with urllib.request.urlopen(url) as reply:
            status = reply.status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status >= 400
    assert slack.installed_tokens == []  # the code was never exchanged
