"""Many workspaces: every installed workspace, with its own token, connector and notifier.

In many-workspace mode (SLACK_CLIENT_ID) there is no one bot token: each workspace that
installed the app through the OAuth flow has its own, stored encrypted in slack_bots
(bot/slack_app/oauth.py). The scheduler's jobs read them from here:

    workspaces = InstalledWorkspaces(settings, db)
    for team in workspaces.installed():     # the latest bot of every installed team
        team.team_id, team.client, team.source, team.notifier
    workspaces.send_pending(now=None)       # each workspace's outbox, with its own token
    poll_workspaces(workspaces, db, detector)          # the "slack" poll job
    post_due_digests(workspaces, db, settings)         # the weekly digest, once per workspace

The store is read again at every call, so a workspace installed while the bot runs is polled at
the next interval, and one uninstalled (Bolt's revocation listeners delete its rows) is not.
Clients, connectors and notifiers are kept between calls (the connector's channel facts and the
notifier's user lookups are worth keeping) and built again when a workspace's token changes.
A workspace's notifier sends only that workspace's outbox rows: a DM is never posted with
another workspace's token.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import ConfigError, Settings, SlackSettings
from bot.notify.notifier import Notifier, find_channel_id
from bot.pipeline import Scanner
from bot.polling import PollReport
from bot.scheduler import DigestPost, post_due_digest, run_poll
from bot.slack_app.oauth import EncryptedInstallationStore, TokenCipher
from bot.store.db import Database
from connectors.slack import SlackSource, build_client

log = logging.getLogger(__name__)


@dataclass
class InstalledWorkspace:
    """One installed workspace and what talks to it, all with its own bot token."""

    team_id: str
    team_name: str
    client: WebClient
    source: SlackSource
    notifier: Notifier
    _channels: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def connect(
        cls, settings: Settings, db: Database, team_id: str, team_name: str, token: str
    ) -> InstalledWorkspace:
        """A workspace's client, connector and notifier, all with its own bot token."""
        assert settings.slack is not None
        client = build_client(settings.slack, token)
        return cls(
            team_id=team_id,
            team_name=team_name,
            client=client,
            source=SlackSource(settings.slack, client=client),
            notifier=Notifier(client, db, settings, workspace=team_id),
        )

    def channel_id(self, channel: str) -> str | None:
        """A channel id or "#name" as this workspace knows it (the same name is another channel
        in every workspace); a found name is remembered."""
        if channel not in self._channels:
            found = find_channel_id(self.client, channel)
            if found is None:
                return None
            self._channels[channel] = found
        return self._channels[channel]


class InstalledWorkspaces:
    """The installed workspaces, from the installation store (see the module docstring)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        if settings.slack is None or settings.slack_oauth is None:
            raise ConfigError("SLACK_CLIENT_ID is not set (needed for many workspaces)")
        self.settings = settings
        self.slack: SlackSettings = settings.slack
        self.db = db
        oauth = settings.slack_oauth
        self._store = EncryptedInstallationStore(
            oauth.client_id, db.engine, TokenCipher(oauth.token_key)
        )
        self._teams: dict[str, InstalledWorkspace] = {}
        self._lock = threading.Lock()

    def tokens(self) -> dict[str, tuple[str, str]]:
        """team id -> (team name, decrypted bot token) of the latest bot of every installed
        workspace. Org-wide (Enterprise Grid) installs have no team id and are left out."""
        bots = self._store.bots
        with self.db.engine.connect() as connection:
            found = connection.execute(
                sa.select(bots.c.team_id, bots.c.team_name, bots.c.bot_token)
                .where(
                    bots.c.client_id == self._store.client_id,
                    bots.c.team_id.is_not(None),
                    bots.c.bot_token.is_not(None),
                )
                .order_by(bots.c.installed_at, bots.c.id)  # the latest one wins below
            ).all()
        latest: dict[str, tuple[str, str]] = {}
        for team_id, team_name, sealed in found:
            try:
                token = self._store.cipher.decrypt(sealed)
            except ValueError as error:  # LEAKWATCH_TOKEN_KEY changed: this one cannot be read
                log.error("workspace %s skipped: %s", team_id, error)
                latest.pop(str(team_id), None)
                continue
            if token:
                latest[str(team_id)] = (str(team_name or ""), token)
        return latest

    def installed(self) -> list[InstalledWorkspace]:
        """Every installed workspace, oldest team id first; forgets uninstalled ones."""
        tokens = self.tokens()
        with self._lock:
            for gone in self._teams.keys() - tokens.keys():
                del self._teams[gone]
            for team_id, (team_name, token) in sorted(tokens.items()):
                team = self._teams.get(team_id)
                if team is None or team.client.token != token:  # new, or its token was replaced
                    self._teams[team_id] = self._build(team_id, team_name, token)
            return [self._teams[team_id] for team_id in sorted(tokens)]

    def get(self, team_id: str) -> InstalledWorkspace | None:
        return next((team for team in self.installed() if team.team_id == team_id), None)

    def _build(self, team_id: str, team_name: str, token: str) -> InstalledWorkspace:
        return InstalledWorkspace.connect(self.settings, self.db, team_id, team_name, token)

    def send_pending(self, now: datetime | None = None) -> int:
        """Send every installed workspace's outbox, each with its own token.

        Rows of a workspace that is no longer installed stay pending: no token may send them.
        """
        sent = 0
        for team in self.installed():
            sent += team.notifier.send_pending(now=now)
        return sent


def poll_workspaces(
    workspaces: InstalledWorkspaces,
    db: Database,
    detector: Scanner,
    *,
    now: datetime | None = None,
) -> dict[str, PollReport | None]:
    """The "slack" poll job: read every installed workspace once, each with its own token, and
    send what each poll queued with that workspace's notifier. A workspace that fails is logged
    and does not stop the others. Returns each team id's report (None: not read)."""
    reports: dict[str, PollReport | None] = {}
    for team in workspaces.installed():
        try:
            reports[team.team_id] = run_poll(
                db, team.source, detector, team.notifier, workspace=team.team_id, now=now
            )
        except Exception as error:  # one workspace's failure is not every workspace's
            log.error("poll of workspace %s failed: %s", team.team_id, type(error).__name__)
            reports[team.team_id] = None
    return reports


def post_due_digests(
    workspaces: InstalledWorkspaces, db: Database, settings: Settings, *,
    now: datetime | None = None,
) -> dict[str, DigestPost | None]:
    """The weekly digest of every installed workspace, posted to that workspace's digest
    channel (a "#name" is found in each workspace) and counting only its own findings. Each
    workspace's week is claimed on its own (Digest.workspace = team id): once per week each."""
    posts: dict[str, DigestPost | None] = {}
    channel = settings.digest_channel
    for team in workspaces.installed():
        try:
            posts[team.team_id] = post_due_digest(
                db,
                team.client,
                settings,
                now=now,
                workspace=team.team_id,
                post_to=partial(team.channel_id, channel),
            )
        except Exception as error:  # one workspace's failure is not every workspace's
            log.error("digest of workspace %s failed: %s", team.team_id, type(error).__name__)
            posts[team.team_id] = None
    return posts
