"""The weekly digest goes out once per week: catch-up after downtime, races, failed posts."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.web import SlackResponse

import bot.scheduler
from bot.notify.digest import Week
from bot.scheduler import build_scheduler, post_digest_for_week, post_due_digest, post_missed_digest
from bot.store import models
from bot.store.db import Database
from tests.digest.seed import BERLIN
from tests.scheduler.conftest import Slack

MONDAY_NINE = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # Monday 26 Oct, 09:00 CET
WEDNESDAY = datetime(2026, 10, 28, 14, 0, tzinfo=UTC)


def digest_rows(db: Database) -> list[tuple[date, str | None, datetime | None]]:
    with db.session() as session:
        rows = session.execute(
            sa.select(
                models.Digest.week_start, models.Digest.slack_ts, models.Digest.posted_at
            ).order_by(models.Digest.week_start)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def mark_posted(db: Database, slack: Slack, week_start: date) -> None:
    with db.session() as session:
        session.add(
            models.Digest(
                workspace="",
                channel=slack.channel.id,
                week_start=week_start,
                posted_at=datetime(2026, 10, 19, 7, 0, tzinfo=UTC),
                slack_ts="1760000000.000001",
            )
        )


def test_a_digest_missed_while_down_is_posted_once_on_start(db: Database, slack: Slack) -> None:
    # The bot posted the week of 12 Oct, was down over Monday 26 Oct 09:00, starts on Wednesday.
    mark_posted(db, slack, date(2026, 10, 12))
    first = post_missed_digest(db, slack.client(), slack.settings, now=WEDNESDAY)
    assert first is not None and first.outcome == "posted"
    assert first.week.start == date(2026, 10, 19)
    assert len(slack.digests()) == 1
    assert digest_rows(db)[-1] == (date(2026, 10, 19), slack.digests()[0], WEDNESDAY)

    # Started again an hour later: the week has its row, nothing is posted.
    again = post_missed_digest(db, slack.client(), slack.settings, now=WEDNESDAY.replace(hour=15))
    assert again is not None and again.outcome == "already_claimed"
    assert len(slack.digests()) == 1


def test_a_new_installation_posts_no_digest_of_the_days_before_it(
    db: Database, slack: Slack
) -> None:
    # Installed on Wednesday with an empty store: the Monday digest was not missed.
    first = post_missed_digest(db, slack.client(), slack.settings, now=WEDNESDAY)
    assert first is not None and first.outcome == "before_install"
    # Neither the hourly catch-up nor another start posts it.
    later = post_due_digest(db, slack.client(), slack.settings, now=WEDNESDAY.replace(hour=16))
    assert later is not None and later.outcome == "already_claimed"
    assert slack.digests() == []
    # The next Monday at nine, the first digest goes out.
    next_monday = post_due_digest(
        db, slack.client(), slack.settings, now=MONDAY_NINE + timedelta(days=7)
    )
    assert next_monday is not None and next_monday.outcome == "posted"
    assert next_monday.week.start == date(2026, 10, 26)
    assert len(slack.digests()) == 1


def test_starting_before_the_digest_time_posts_nothing_new(db: Database, slack: Slack) -> None:
    mark_posted(db, slack, date(2026, 10, 12))
    # Monday 26 Oct 08:59 in Berlin: the week of 19 Oct is not due until 09:00.
    result = post_missed_digest(
        db, slack.client(), slack.settings, now=MONDAY_NINE.replace(minute=0, hour=7, second=59)
    )
    assert result is not None and result.outcome == "already_claimed"
    assert result.week.start == date(2026, 10, 12)
    assert slack.digests() == []


def test_the_scheduled_run_at_nine_posts_the_week_just_ended(db: Database, slack: Slack) -> None:
    result = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE)
    assert result is not None and result.outcome == "posted"
    assert result.week == Week(date(2026, 10, 19), BERLIN)
    [posted] = slack.standin.posted_in(slack.channel)
    assert "week of 2026-10-19" in posted.text


def test_racing_threads_post_the_week_once(db: Database, slack: Slack, database_url: str) -> None:
    instances = [Database(database_url) for _ in range(4)]  # four bot processes, one store
    start = threading.Barrier(len(instances))
    outcomes: list[str] = []

    def instance(database: Database) -> None:
        start.wait()
        result = post_due_digest(database, slack.client(), slack.settings, now=MONDAY_NINE)
        assert result is not None
        outcomes.append(result.outcome)

    threads = [threading.Thread(target=instance, args=(d,)) for d in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for database in instances:
        database.dispose()
    assert sorted(outcomes) == ["already_claimed"] * 3 + ["posted"]
    assert len(slack.digests()) == 1
    assert [row[:2] for row in digest_rows(db)] == [(date(2026, 10, 19), slack.digests()[0])]


def test_claims_race_without_a_check_first(db: Database, slack: Slack, database_url: str) -> None:
    # Skip the "is it claimed?" read: both go straight for the insert; the constraint decides.
    week = Week(date(2026, 10, 19), BERLIN)
    instances = [Database(database_url) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def instance(database: Database) -> None:
        start.wait()
        outcomes.append(
            post_digest_for_week(
                database, slack.client(), slack.settings, week, now=MONDAY_NINE
            ).outcome
        )

    threads = [threading.Thread(target=instance, args=(d,)) for d in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for database in instances:
        database.dispose()
    assert sorted(outcomes) == ["already_claimed", "posted"]
    assert len(slack.digests()) == 1


def test_two_running_schedulers_post_once(db: Database, slack: Slack, database_url: str) -> None:
    # Two bot processes whose catch-up job fires every 50 ms against the same store.
    instances = [Database(database_url) for _ in range(2)]
    schedulers = [
        build_scheduler(
            slack.settings,
            digest=lambda database=database: post_due_digest(  # type: ignore[misc]
                database, slack.client(), slack.settings
            ),
            digest_catch_up_seconds=0.05,
        )
        for database in instances
    ]
    for scheduler in schedulers:
        scheduler.start()
    try:
        assert slack.standin.wait_for(lambda: len(slack.digests()) >= 1, timeout=10)
        time.sleep(0.5)  # both keep firing; neither may post again
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        for database in instances:
            database.dispose()
    assert len(slack.digests()) == 1
    assert len(digest_rows(db)) == 1


def test_a_refused_post_releases_the_claim_and_is_retried(db: Database, slack: Slack) -> None:
    slack.standin.fail("chat.postMessage", error="not_in_channel")
    failed = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE)
    assert failed is not None and failed.outcome == "released"
    assert failed.error == "Slack error not_in_channel"
    assert digest_rows(db) == [] and slack.digests() == []

    retried = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE.replace(hour=9))
    assert retried is not None and retried.outcome == "posted"
    assert len(slack.digests()) == 1


@pytest.fixture(autouse=True)
def no_verify_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.scheduler, "VERIFY_DELAY_SECONDS", 0.0)


def test_after_a_5xx_the_channel_is_checked_and_the_week_retried(
    db: Database, slack: Slack
) -> None:
    # The stand-in's 503 stored nothing: the check finds no digest, so the claim is released.
    slack.standin.fail("chat.postMessage", status=503)
    failed = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE)
    assert failed is not None and failed.outcome == "released"
    assert len(slack.standin.calls_to("conversations.history")) == 1
    assert digest_rows(db) == [] and slack.digests() == []

    retried = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE.replace(hour=9))
    assert retried is not None and retried.outcome == "posted"
    assert len(slack.digests()) == 1


class AnswerLost(WebClient):
    """A real client whose chat.postMessage reaches Slack but whose answer never comes back."""

    def chat_postMessage(self, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        super().chat_postMessage(**kwargs)
        raise TimeoutError("The read operation timed out")


def test_a_post_whose_answer_was_lost_is_found_and_recorded(db: Database, slack: Slack) -> None:
    client = AnswerLost(token=slack.standin.bot_token, base_url=slack.standin.api_url)
    result = post_due_digest(db, client, slack.settings, now=MONDAY_NINE)
    assert result is not None and result.outcome == "posted"
    [ts] = slack.digests()
    assert result.slack_ts == ts
    assert digest_rows(db) == [(date(2026, 10, 19), ts, MONDAY_NINE)]
    again = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE.replace(hour=9))
    assert again is not None and again.outcome == "already_claimed"
    assert len(slack.digests()) == 1


def test_when_the_channel_cannot_be_checked_the_week_is_left_alone(
    db: Database, slack: Slack
) -> None:
    slack.standin.fail("chat.postMessage", status=503)
    slack.standin.fail("conversations.history", status=503)
    unsure = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE)
    assert unsure is not None and unsure.outcome == "unconfirmed"
    assert digest_rows(db) == [(date(2026, 10, 19), None, None)]

    later = post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE.replace(hour=9))
    assert later is not None and later.outcome == "already_claimed"
    assert slack.digests() == []
    # An operator can still force the week out; the row records that message.
    week = Week(date(2026, 10, 19), BERLIN)
    forced = post_digest_for_week(
        db, slack.client(), slack.settings, week, now=MONDAY_NINE.replace(hour=10), force=True
    )
    assert forced.outcome == "posted"
    assert digest_rows(db) == [
        (date(2026, 10, 19), slack.digests()[0], MONDAY_NINE.replace(hour=10))
    ]


def test_slack_sdks_5xx_retry_is_not_used_for_the_digest(db: Database, slack: Slack) -> None:
    client = slack.client()
    client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=2))  # as the notifier does
    slack.standin.fail("chat.postMessage", status=503)
    result = post_due_digest(db, client, slack.settings, now=MONDAY_NINE)
    assert result is not None and result.outcome == "released"
    assert len(slack.standin.calls_to("chat.postMessage")) == 1  # not re-sent blindly


def test_the_digest_carries_its_weeks_marker(db: Database, slack: Slack) -> None:
    post_due_digest(db, slack.client(), slack.settings, now=MONDAY_NINE)
    [posted] = slack.standin.posted_in(slack.channel)
    assert posted.blocks is not None
    assert posted.blocks[0]["block_id"] == "lw-digest-2026-10-19"


def test_no_digest_channel_means_no_digest(db: Database, slack: Slack) -> None:
    from dataclasses import replace

    settings = replace(slack.settings, digest_channel="")
    assert post_due_digest(db, slack.client(), settings, now=MONDAY_NINE) is None
    assert digest_rows(db) == [] and slack.standin.calls_to("chat.postMessage") == []
