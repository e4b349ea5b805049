"""Polling Slack through the pipeline and the notifier: what posters see in their DMs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bot.detection.fakes import fake_secret
from bot.polling import poll_source
from bot.store.models import Cursor
from connectors.base import Document, Unit
from connectors.slack import SlackSource
from tests.slack.conftest import Bot


def keys(rule: str, count: int) -> list[str]:
    return [fake_secret(rule, seed=n) for n in range(count)]


def test_backfill_finds_keys_in_messages_threads_and_files(bot_any_db: Bot) -> None:
    bot = bot_any_db
    ws, alice = bot.ws, bot.alice
    bob = ws.add_user("bob", email="bob@acme.test")
    infra = ws.add_channel("infra", private=True, members=[alice, bob, ws.bot])
    openai, github, stripe = (fake_secret("openai_project_key"), fake_secret("github_classic_pat"),
                              fake_secret("stripe_secret_key"))
    parent = ws.post(bot.general, alice, "deploy thread")
    for i in range(30):
        ws.post(bot.general, bob, f"chatter {i}")
    ws.post(bot.general, bob, f"use <https://api.example.test/?token={github}|this link>",
            thread=parent)
    env = ws.add_file(alice, ".env", f"OPENAI_API_KEY={openai}\n")
    ws.post(infra, alice, "config attached", files=[env])
    ws.post(infra, bob, f"```stripe: {stripe}```")

    report = bot.poll()

    assert report.units_failed == [] and report.findings == 3
    assert len(bot.slack.dms_to(alice)) == 1 and len(bot.slack.dms_to(bob)) == 2
    every_text = bot.dm_texts(alice) + bot.dm_texts(bob)
    assert not any(k in t for k in (openai, github, stripe) for t in every_text)
    items = {o.item_id for o in bot.occurrences()}
    assert items == {f"{infra.id}:{infra.messages[0].ts}:{env.id}",
                     f"{infra.id}:{infra.messages[1].ts}",
                     f"{bot.general.id}:{parent.replies[0].ts}"}


def test_incremental_poll_after_new_messages(bot: Bot) -> None:
    first, second = keys("openai_project_key", 2)
    bot.ws.post(bot.general, bot.alice, first)
    assert bot.poll().findings == 1
    bot.ws.post(bot.general, bot.alice, "unrelated")
    bot.ws.post(bot.general, bot.alice, second)
    bot.slack.reset_calls()
    report = bot.poll()
    assert report.findings == 1
    assert len(bot.slack.dms_to(bot.alice)) == 2
    bot.poll()  # reads past the security alert the bot itself posted
    bot.slack.reset_calls()
    assert bot.poll().documents == 0
    history = bot.slack.calls_to("conversations.history")
    assert len(history) == 2  # general and security-alerts: one call each when idle


def test_429_storm_during_a_poll(bot: Bot) -> None:
    for key in keys("anthropic_api_key", 3):
        bot.ws.post(bot.general, bot.alice, key)
    bot.slack.fail("conversations.list", times=2, status=429, retry_after=1)
    bot.slack.fail("conversations.history", times=3, status=429, retry_after=1)
    report = bot.poll()
    assert report.findings == 3 and report.stopped is None
    assert len(bot.slack.dms_to(bot.alice)) == 3
    statuses = [c.status for c in bot.slack.calls_to("conversations.history")]
    assert statuses.count(429) == 3


def test_missing_channel_is_recorded_and_others_are_read(bot: Bot) -> None:
    other = bot.ws.add_channel("other", members=[bot.alice, bot.ws.bot])
    bot.ws.post(other, bot.alice, fake_secret("openai_project_key"))
    bot.ws.post(bot.general, bot.alice, fake_secret("openai_project_key", seed=1))
    order = [u.id for u in bot.source().units()]
    assert order[0] == bot.general.id and other.id in order
    bot.slack.fail("conversations.history", times=1, error="channel_not_found")
    report = bot.poll()
    assert report.units_failed == [(bot.general.id, "channel_not_found")]
    assert report.findings == 1 and len(bot.slack.dms_to(bot.alice)) == 1
    with bot.db.session() as session:
        row = session.scalars(sa.select(Cursor).where(Cursor.unit == bot.general.id)).one()
        assert row.last_error == "channel_not_found" and row.value is None
    assert bot.poll().findings == 1  # the channel is back: read from where it stopped


class Crash(Exception):
    pass


class CrashingSource:
    """The real source, dying after `after` documents, as a killed process would."""

    def __init__(self, inner: SlackSource, after: int) -> None:
        self.inner, self.after, self.kind = inner, after, inner.kind

    def units(self) -> Iterator[Unit]:
        return self.inner.units()

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        for document, safe in self.inner.documents(unit, cursor):
            if self.after == 0:
                raise Crash
            self.after -= 1
            yield document, safe


def test_crash_and_resume_lose_nothing_and_alert_once(bot: Bot) -> None:
    all_keys = keys("openai_project_key", 12)
    for n, key in enumerate(all_keys):
        bot.ws.post(bot.general, bot.alice, f"message {n}: {key}")
        bot.ws.post(bot.general, bot.alice, f"filler {n}")
    source = bot.source(history_page_size=5)
    with pytest.raises(Crash):
        poll_source(bot.db, CrashingSource(source, after=13), bot.detector,
                    workspace=source.workspace, batch_size=4)
    bot.notifier().send_pending()
    before = len(bot.slack.dms_to(bot.alice))
    assert 0 < before < 12
    report = bot.poll(history_page_size=5)
    assert report.findings == 12 - before
    assert len(bot.slack.dms_to(bot.alice)) == 12
    assert len({o.item_id for o in bot.occurrences()}) == 12
