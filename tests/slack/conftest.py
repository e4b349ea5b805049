"""Fixtures for the Slack tests: a workspace, the stand-in serving it, settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.detection.fingerprint import Fingerprinter
from bot.notify.notifier import Notifier
from bot.polling import PollReport, poll_source
from bot.slack_app.app import HttpServer, build_app, serve_http
from bot.store.db import Database
from bot.store.models import Occurrence
from connectors.slack import SlackSource
from tests.standins.slack import (
    Channel,
    SignedSender,
    SlackStandin,
    User,
    Workspace,
    iter_posted_text,
)

SIGNING_SECRET = "standin-signing-secret"


@pytest.fixture
def ws() -> Workspace:
    return Workspace(team_id="T0ACME", name="Acme", domain="acme")


@pytest.fixture
def slack(ws: Workspace) -> Iterator[SlackStandin]:
    with SlackStandin(ws) as server:
        yield server


def slack_settings(slack: SlackStandin, **overrides: object) -> SlackSettings:
    values: dict[str, object] = dict(
        bot_token=slack.bot_token,
        signing_secret=SIGNING_SECRET,
        api_url=slack.api_url,
        history_page_size=15,
    )
    values.update(overrides)
    return SlackSettings(**values)  # type: ignore[arg-type]


@dataclass
class Bot:
    """A running LeakWatch against the stand-in: database, detector, app over HTTP, sender."""

    ws: Workspace
    slack: SlackStandin
    db: Database
    settings: Settings
    detector: Detector
    server: HttpServer
    sender: SignedSender
    alice: User
    general: Channel
    security: Channel

    def client(self) -> WebClient:
        return WebClient(token=self.slack.bot_token, base_url=self.slack.api_url)

    def source(self, **overrides: object) -> SlackSource:
        assert self.settings.slack is not None
        return SlackSource(replace(self.settings.slack, **overrides))

    def poll(self, **overrides: object) -> PollReport:
        """One poll through the pipeline, then the notifier sends what it queued."""
        source = self.source(**overrides)
        report = poll_source(self.db, source, self.detector, workspace=source.workspace)
        self.notifier().send_pending()
        return report

    def notifier(self) -> Notifier:
        return Notifier(self.client(), self.db, self.settings)

    def occurrences(self) -> list[Occurrence]:
        with self.db.session() as session:
            rows = session.scalars(sa.select(Occurrence).order_by(Occurrence.id)).all()
            session.expunge_all()
            return list(rows)

    def dm_texts(self, user: User) -> list[str]:
        return list(iter_posted_text(self.slack.dms_to(user)))


@pytest.fixture
def detector() -> Detector:
    return Detector.default(Fingerprinter(b"slack-tests-fingerprint-key-0001"))


@pytest.fixture
def bot(sqlite_url: str, detector: Detector) -> Iterator[Bot]:
    yield from _bot(sqlite_url, detector)


@pytest.fixture
def bot_any_db(database_url: str, detector: Detector) -> Iterator[Bot]:
    yield from _bot(database_url, detector)


def _bot(url: str, detector: Detector) -> Iterator[Bot]:
    ws = Workspace(team_id="T0ACME", name="Acme", domain="acme")
    alice = ws.add_user("alice", email="alice@acme.test")
    sam = ws.add_user("sam", email="sam@acme.test")
    general = ws.add_channel("general", members=[alice, sam, ws.bot])
    security = ws.add_channel("security-alerts", members=[sam, ws.bot])
    db = Database(url)
    db.upgrade()
    with SlackStandin(ws) as slack:
        settings = Settings(database_url=url, security_channel=security.id,
                            slack=slack_settings(slack))
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        app = build_app(settings, db, detector, client=client)
        server = serve_http(app, "127.0.0.1", 0)
        server.start_in_background()
        sender = SignedSender(f"http://127.0.0.1:{server.port}/slack/events", SIGNING_SECRET,
                              slack)
        try:
            yield Bot(ws, slack, db, settings, detector, server, sender, alice, general, security)
        finally:
            server.shutdown()
            server.server_close()
            db.dispose()
