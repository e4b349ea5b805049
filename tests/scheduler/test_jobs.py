"""The reminders job and the poll job, with the real notifier and the stand-in Slack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.notify.notifier import Notifier
from bot.scheduler import poll_job, queue_reminders_and_send, schedule_bot
from bot.store import models
from bot.store.db import Database
from connectors.base import Document, FatalSourceError, Unit
from tests.digest.seed import Seen, add_secret
from tests.scheduler.conftest import Slack

NOW = datetime(2026, 10, 28, 10, 0, tzinfo=UTC)


def test_reminders_are_queued_then_sent_once(db: Database, slack: Slack) -> None:
    alice = slack.standin.ws.add_user("alice", email="alice@acme.test")
    first_dm_at = NOW - timedelta(hours=25)  # reminder_hours is 24: one reminder is due
    with db.session() as session:
        secret = add_secret(
            session, "A", provider="OpenAI", risk=95, first_seen=first_dm_at,
            seen=[Seen("slack", "C0GENERAL", "general", first_dm_at, alice.id)],
        )  # fmt: skip
        session.add(
            models.Notification(
                workspace="", secret_id=secret.id, occurrence_id=secret.occurrences[0].id,
                kind="alert", recipient=f"user:{alice.id}", dedupe_key="alert:1",
                status="sent", created_at=first_dm_at, send_after=first_dm_at,
                sent_at=first_dm_at, slack_channel="D0ALICE", slack_ts="1.000001",
            )
        )  # fmt: skip
    notifier = Notifier(slack.client(), db, slack.settings)

    assert queue_reminders_and_send(db, notifier, slack.settings, now=NOW) == 1
    assert len(slack.standin.dms_to(alice)) == 1
    # The next run (or a second instance) an hour later: the same round, nothing new.
    later = NOW + timedelta(hours=1)
    assert queue_reminders_and_send(db, notifier, slack.settings, now=later) == 0
    assert len(slack.standin.dms_to(alice)) == 1
    with db.session() as session:
        kinds = session.scalars(
            sa.select(models.Notification.kind).order_by(models.Notification.id)
        )
        assert list(kinds) == ["alert", "reminder"]


class OneChannel:
    """A minimal source: #general holding one message by `author`."""

    kind = "slack"

    def __init__(self, text: str, author: str, *, broken: bool = False) -> None:
        self.text = text
        self.author = author
        self.broken = broken

    def units(self) -> Iterator[Unit]:
        if self.broken:
            raise FatalSourceError("invalid_auth: the bot token was revoked")
        return iter([Unit("C0GENERAL", "general")])

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        if cursor is None:  # the cursor after this one message is its id
            yield Document("slack", unit.id, "1001", self.text, author=self.author), "1001"


DETECTOR = Detector.default(Fingerprinter(b"scheduler tests only"))


def test_a_poll_job_stores_findings_and_sends_their_alerts_at_once(
    db: Database, slack: Slack
) -> None:
    poster = slack.standin.ws.add_user("poster")
    source = OneChannel(f"here is {fake_secret('openai_project_key', 11)}", poster.id)
    notifier = Notifier(slack.client(), db, slack.settings)
    job = poll_job(source, 60, db=db, detector=DETECTOR, notifier=notifier)
    assert (job.job_id, job.interval_seconds) == ("poll-slack", 60)

    job.poll()
    assert len(slack.standin.dms_to(poster)) == 1  # the alert went out with the poll
    job.poll()  # the cursor moved on: nothing read twice, nothing sent twice
    assert len(slack.standin.dms_to(poster)) == 1
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(models.Secret)) == 1


def test_a_source_that_cannot_be_read_is_logged_not_raised(
    db: Database, slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    source = OneChannel("", "U0X", broken=True)
    job = poll_job(source, 60, db=db, detector=DETECTOR)
    job.poll()  # APScheduler keeps the job; the next interval tries again
    assert "polling slack stopped: invalid_auth: the bot token was revoked" in caplog.text


def test_schedule_bot_binds_every_job(db: Database, slack: Slack) -> None:
    notifier = Notifier(slack.client(), db, slack.settings)
    polls = [poll_job(OneChannel("", "U0X"), 300, db=db, detector=DETECTOR, notifier=notifier)]
    scheduler = schedule_bot(
        slack.settings, db=db, client=slack.client(), notifier=notifier, polls=polls
    )
    scheduler.start(paused=True)
    try:
        assert sorted(job.id for job in scheduler.get_jobs()) == [
            "digest-catch-up", "notifier-flush", "poll-slack", "reminders", "weekly-digest",
        ]  # fmt: skip
        # The digest job is the real one: run by hand now, it posts the week due now.
        scheduler.get_job("weekly-digest").func()
        assert len(slack.digests()) == 1
    finally:
        scheduler.shutdown(wait=False)
