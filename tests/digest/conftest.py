"""Digest fixtures: an upgraded store (SQLite and PostgreSQL) and a stand-in Slack."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.store.db import Database
from tests.digest.seed import BERLIN
from tests.standins.slack import Channel, SlackStandin, Workspace


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@dataclass
class Slack:
    standin: SlackStandin
    channel: Channel  # the digest channel; the bot is a member
    settings: Settings

    def client(self) -> WebClient:
        return WebClient(token=self.standin.bot_token, base_url=self.standin.api_url)

    def digests(self) -> list[str]:
        """The ts of every message posted to the digest channel."""
        return [posted.ts for posted in self.standin.posted_in(self.channel)]


@pytest.fixture
def slack(database_url: str) -> Iterator[Slack]:
    """A stand-in Slack with a #security channel, and settings pointing the bot at both."""
    workspace = Workspace()
    channel = workspace.add_channel("security", members=[workspace.bot.id])
    with SlackStandin(workspace) as standin:
        settings = Settings(
            database_url=database_url,
            timezone=BERLIN,
            digest_channel=channel.id,
            slack=SlackSettings(bot_token=standin.bot_token, api_url=standin.api_url),
        )
        yield Slack(standin, channel, settings)
