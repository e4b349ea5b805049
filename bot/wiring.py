"""Where the bot's objects are built from Settings and wired together.

Commands (bot/commands/*) call these builders instead of constructing clients themselves, so
there is one place that decides which source is configured, which client talks to which URL, and
which token does what.

    db = open_database(settings)                # upgraded to the newest schema
    detector = build_detector(settings)
    for source, workspace in build_sources(settings): ...
    notifier = build_notifier(settings, db)     # None without Slack
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.config import Settings
from bot.detection.engine import Detector
from bot.detection.fingerprint import fingerprinter_from_settings
from bot.notify.notifier import Notifier
from bot.store.db import Database
from connectors.base import Source


@dataclass(frozen=True)
class ConfiguredSource:
    """A connector with what the poll loop needs beside it."""

    source: Source
    interval_seconds: float
    credentials: str  # the settings to check when the source refuses us
    team: Callable[[], str] = lambda: _no_workspace()

    def workspace(self) -> str:
        """The workspace the source's findings belong to.

        With one Slack workspace, every source's findings belong to it (its team id, asked of
        auth.test once), so that a key pasted in Slack and mailed is one finding with two
        occurrences, not two findings. Without Slack, or with many workspaces, "".
        """
        return self.team()


def _no_workspace() -> str:
    return ""


def open_database(settings: Settings) -> Database:
    """The store, with Alembic run to head (the only way the schema is created)."""
    db = Database(settings.database_url)
    db.upgrade()
    return db


def build_detector(settings: Settings) -> Detector:
    return Detector.default(fingerprinter_from_settings(settings), cache_dir=settings.cache_dir)


def build_slack_client(settings: Settings) -> WebClient | None:
    if settings.slack is None:
        return None
    from connectors.slack import build_client

    return build_client(settings.slack)


def build_notifier(
    settings: Settings, db: Database, client: WebClient | None = None
) -> Notifier | None:
    """The only sender of Slack messages; None when Slack is not configured."""
    slack = settings.slack
    if slack is None:
        return None
    from connectors.slack import build_client

    client = client or build_client(slack)
    admin = build_client(slack, slack.admin_token) if slack.admin_token else None
    return Notifier(client, db, settings, admin_client=admin)


def build_sources(
    settings: Settings, slack_client: WebClient | None = None
) -> Iterator[ConfiguredSource]:
    """Every configured source, Slack first (the main path), then Confluence and email."""
    team = _no_workspace
    if settings.slack is not None and settings.slack.bot_token:
        from connectors.slack import SlackSource

        slack = SlackSource(settings.slack, client=slack_client)

        def team() -> str:  # asked when a poll starts, not at build time
            return slack.workspace

        yield ConfiguredSource(
            slack, settings.slack.poll_interval_seconds, "SLACK_BOT_TOKEN", team
        )
    if settings.confluence is not None:
        from connectors.confluence import ConfluenceSource

        yield ConfiguredSource(
            ConfluenceSource(settings.confluence),
            settings.confluence.poll_interval_seconds,
            "CONFLUENCE_PAT" if settings.confluence.pat else "CONFLUENCE_USER and CONFLUENCE_TOKEN",
            team,
        )
    if settings.imap is not None:
        from connectors.email import ImapSource

        yield ConfiguredSource(
            ImapSource(settings.imap, company_domains=settings.company_domains),
            settings.imap.poll_interval_seconds,
            "IMAP_USER and IMAP_PASSWORD",
            team,
        )
