"""A Slack workspace with planted keys, the bot's parts wired to it, and the checks every fault
test ends with: each key stored once, each outbox row sent, one DM per poster, no row twice."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.notify.notifier import Notifier
from bot.polling import PollReport, poll_source
from bot.store.db import Database
from bot.store.models import Notification, Occurrence, Secret, utcnow
from connectors.slack import SlackSource, build_client
from tests.faults.conftest import FINGERPRINTER, Ledger
from tests.faults.keys import key_for
from tests.standins.slack import Channel, SlackStandin, User, Workspace

MARKER = re.compile(r"^lw-n-(\d+)$")


@dataclass
class SlackScenario:
    ws: Workspace
    posters: list[User]
    channels: list[Channel]
    security: Channel
    planted: dict[str, str] = field(default_factory=dict, repr=False)  # poster id -> key

    @classmethod
    def build(cls, ledger: Ledger, *, posters: int = 8, channels: int = 4, noise: int = 30,
              seed_base: int = 0) -> SlackScenario:
        ws = Workspace(team_id="T0FAULT", name="Acme", domain="acme")
        people = [ws.add_user(f"poster{i}", email=f"poster{i}@acme.test") for i in range(posters)]
        reader = ws.add_user("reader", email="reader@acme.test")
        chans = [ws.add_channel(f"team-{i}", members=[*people, reader, ws.bot])
                 for i in range(channels)]
        security = ws.add_channel("security", members=[ws.bot, reader])
        for i, channel in enumerate(chans):
            for j in range(noise):
                ws.post(channel, reader, f"status {i}.{j}: fine")
        scenario = cls(ws, people, chans, security)
        for i, poster in enumerate(people):
            scenario.plant(poster, chans[i % channels], key_for(i, seed_base), ledger)
        return scenario

    def plant(self, poster: User, channel: Channel, key: str, ledger: Ledger) -> None:
        ledger.plant(key)
        self.ws.post(channel, poster, f"here you go: {key}")
        self.planted[poster.id] = key


@dataclass
class Wired:
    """The bot's parts as `python -m bot poll` wires them, talking to `api_url`."""

    db: Database
    settings: Settings
    client: WebClient
    source: SlackSource
    notifier: Notifier

    @classmethod
    def build(cls, database_url: str, slack: SlackStandin, security: Channel,
              api_url: str | None = None) -> Wired:
        slack_settings = SlackSettings(bot_token=slack.bot_token, signing_secret="s",
                                       api_url=api_url or slack.api_url, history_page_size=15)
        settings = Settings(database_url=database_url, security_channel=security.id,
                            slack=slack_settings)
        db = Database(database_url)
        db.upgrade()
        client = build_client(slack_settings)
        source = SlackSource(slack_settings, client=client, sleep=lambda _: None)
        return cls(db, settings, client, source, Notifier(client, db, settings))

    def with_api_url(self, api_url: str) -> Wired:
        assert self.settings.slack is not None
        slack_settings = replace(self.settings.slack, api_url=api_url)
        settings = replace(self.settings, slack=slack_settings)
        client = build_client(slack_settings)
        source = SlackSource(slack_settings, client=client, sleep=lambda _: None)
        return Wired(self.db, settings, client, source, Notifier(client, self.db, settings))

    def poll(self, detector: Detector) -> PollReport:
        return poll_source(self.db, self.source, detector, workspace=self.source.workspace)

    def flush(self, rounds: int = 8, start: datetime | None = None) -> None:
        """Send the outbox the way the scheduler does, hours apart, until nothing is due."""
        moment = start or utcnow()
        for _ in range(rounds):
            self.notifier.send_pending(now=moment)
            if self.unsent() == 0:
                return
            moment += timedelta(hours=2)

    def unsent(self) -> int:
        with self.db.session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                  .where(Notification.status != "sent")) or 0


def assert_nothing_lost_or_doubled(
    scenario: SlackScenario, slack: SlackStandin, db: Database
) -> dict[str, int]:
    """Every planted key once (one occurrence), every row sent, one DM per poster, no marker
    twice. Returns figures for the report."""
    fingerprints = {poster: FINGERPRINTER.of(key)
                    for poster, key in scenario.planted.items()}
    with db.session() as session:
        secrets = {s.fingerprint: s.id for s in session.scalars(sa.select(Secret))}
        occurrences = Counter(o.secret_id for o in session.scalars(sa.select(Occurrence)))
        statuses = Counter(n.status for n in session.scalars(sa.select(Notification)))
        security_rows = session.scalar(
            sa.select(sa.func.count()).select_from(Notification)
            .where(Notification.kind == "security_alert")) or 0
    for poster, fingerprint in fingerprints.items():
        assert fingerprint in secrets, f"the key of {poster} was lost"
        assert occurrences[secrets[fingerprint]] == 1, f"the key of {poster} was stored twice"
    assert len(secrets) == len(scenario.planted)
    assert set(statuses) == {"sent"}, f"outbox rows not sent: {statuses}"
    for user in scenario.ws.users.values():
        expected = 1 if user.id in scenario.planted else 0
        assert len(slack.dms_to(user)) == expected, f"{user.name}: {len(slack.dms_to(user))} DMs"
    markers = Counter(
        int(found.group(1))
        for posted in slack.posted if not posted.deleted and not posted.ephemeral
        for block in posted.blocks or []
        if (found := MARKER.match(str(block.get("block_id", ""))))
    )
    assert markers and max(markers.values()) == 1, "an outbox row reached Slack twice"
    assert len(slack.posted_in(scenario.security)) == security_rows
    return {"keys": len(secrets), "rows": sum(statuses.values()),
            "dms": sum(len(slack.dms_to(p)) for p in scenario.posters)}
