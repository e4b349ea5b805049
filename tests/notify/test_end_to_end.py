"""The whole path on the real app (bot.slack_app.app.build_app): a key pasted in Slack, the
poster's DM, a button press, and an admin's `/leakwatch scan #channel` backfill; the real
detector and pipeline, signed requests over HTTP, the stand-in Slack."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.notify import blocks as b
from bot.slack_app.app import build_app, serve_http
from bot.store.db import Database
from bot.store.models import Secret
from tests.standins.slack import SignedSender, SlackStandin, User, Workspace, iter_posted_text

SIGNING_SECRET = "end-to-end-signing-secret"


@dataclass
class Running:
    ws: Workspace
    slack: SlackStandin
    db: Database
    sender: SignedSender
    alice: User
    sam: User

    def dm_text(self, user: User) -> str:
        return "\n".join(iter_posted_text(self.slack.dms_to(user)))

    def secrets(self) -> list[Secret]:
        with self.db.session() as session:
            return list(session.scalars(sa.select(Secret).order_by(Secret.id)))


@pytest.fixture
def running(sqlite_url: str) -> Iterator[Running]:
    ws = Workspace(team_id="T0ACME", domain="acme")
    alice = ws.add_user("alice", email="alice@acme.test")
    sam = ws.add_user("sam", email="sam@acme.test")
    ws.add_channel("general", members=[alice, sam, ws.bot])
    security = ws.add_channel("security-alerts", members=[sam, ws.bot])
    db = Database(sqlite_url)
    db.upgrade()
    with SlackStandin(ws) as slack:
        settings = Settings(
            database_url=sqlite_url,
            security_channel=security.id,
            admins=(sam.id,),
            slack=SlackSettings(
                bot_token=slack.bot_token, signing_secret=SIGNING_SECRET, api_url=slack.api_url
            ),
        )
        detector = Detector.default(Fingerprinter(b"notify-end-to-end-fingerprint-01"))
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        server = serve_http(build_app(settings, db, detector, client=client), "127.0.0.1", 0)
        server.start_in_background()
        sender = SignedSender(f"http://127.0.0.1:{server.port}/slack/events", SIGNING_SECRET, slack)
        try:
            yield Running(ws, slack, db, sender, alice, sam)
        finally:
            server.shutdown()
            server.server_close()
            db.dispose()


def test_pasted_key_to_dm_to_rotated(running: Running) -> None:
    r = running
    key = fake_secret("openai_project_key")
    message = r.ws.post("general", r.alice, f"prod config: OPENAI_API_KEY={key}")
    assert r.sender.event(r.ws.message_event("general", message.ts)).status == 200
    assert r.slack.wait_for(lambda: r.slack.dms_to(r.alice), timeout=10)
    (dm,) = r.slack.dms_to(r.alice)
    assert key not in r.dm_text(r.alice) and "OpenAI project API key" in r.dm_text(r.alice)
    (secret,) = r.secrets()
    assert secret.preview in r.dm_text(r.alice)

    r.sender.block_actions(
        r.alice,
        action_id=b.ACTION_ROTATED,
        value=str(secret.id),
        channel=dm.channel,
        message={"ts": dm.ts},
    )
    assert r.slack.wait_for(lambda: dm.updates, timeout=10)
    assert "Rotated" in r.dm_text(r.alice) and f"<@{r.alice.id}>" in r.dm_text(r.alice)
    assert r.secrets()[0].status == "rotated"


def test_admin_scan_backfills_a_channel_through_the_pipeline(running: Running) -> None:
    r = running
    key = fake_secret("anthropic_api_key", seed=3)
    r.ws.post("general", r.alice, f"old message with {key}")  # no event: only a scan finds it
    before = len(r.slack.responses)
    r.sender.slash_command("/leakwatch", "scan #general", user=r.sam)
    assert r.slack.wait_for(lambda: len(r.slack.responses) >= before + 2, timeout=15)
    assert "1 new credential found" in str(r.slack.responses[-1][1])
    assert r.slack.wait_for(lambda: r.slack.dms_to(r.alice), timeout=10)
    assert "Anthropic" in r.dm_text(r.alice) and key not in r.dm_text(r.alice)
