"""When jobs run: the digest's weekly trigger in a configured zone, and the jobs the bot adds."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.scheduler import (
    DIGEST_CATCH_UP_JOB_ID,
    DIGEST_JOB_ID,
    FLUSH_JOB_ID,
    REMINDERS_JOB_ID,
    PollJob,
    build_scheduler,
    digest_trigger,
    due_week,
    last_digest_time,
)

BERLIN = ZoneInfo("Europe/Berlin")


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": "sqlite://",
        "timezone": BERLIN,
        "digest_channel": "C0DIGEST",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def fire_times(settings: Settings, now: datetime, count: int) -> list[datetime]:
    trigger = digest_trigger(settings)
    times: list[datetime] = []
    previous = None
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now if previous is None else previous)
        assert fire is not None
        times.append(fire.astimezone(UTC))
        previous = fire
    return times


@pytest.mark.parametrize(
    ("clock", "expected_utc"),
    [
        # Summer time ends on Sunday 25 Oct 2026: 09:00 CEST is 07:00 UTC, 09:00 CET is 08:00 UTC.
        (
            datetime(2026, 10, 14, 12, 0, tzinfo=UTC),
            [
                datetime(2026, 10, 19, 7, 0),
                datetime(2026, 10, 26, 8, 0),
                datetime(2026, 11, 2, 8, 0),
            ],
        ),
        # Summer time starts on Sunday 29 Mar 2026.
        (
            datetime(2026, 3, 20, 12, 0, tzinfo=UTC),
            [datetime(2026, 3, 23, 8, 0), datetime(2026, 3, 30, 7, 0), datetime(2026, 4, 6, 7, 0)],
        ),
    ],
)
def test_digest_fires_monday_nine_local_across_a_dst_change(
    clock: datetime, expected_utc: list[datetime]
) -> None:
    times = fire_times(settings(), clock, 3)
    assert times == [t.replace(tzinfo=UTC) for t in expected_utc]
    for fire in times:
        local = fire.astimezone(BERLIN)
        assert (local.strftime("%A"), local.hour, local.minute) == ("Monday", 9, 0)


def test_digest_day_and_time_come_from_settings() -> None:
    times = fire_times(
        settings(digest_day="fri", digest_time="16:30", timezone=ZoneInfo("America/New_York")),
        datetime(2026, 3, 2, tzinfo=UTC),
        2,
    )
    # New York switches to summer time on 8 Mar 2026: 16:30 EST = 21:30 UTC, EDT = 20:30 UTC.
    assert times == [
        datetime(2026, 3, 6, 21, 30, tzinfo=UTC),
        datetime(2026, 3, 13, 20, 30, tzinfo=UTC),
    ]


def test_last_digest_time_is_the_latest_scheduled_one_not_after_now() -> None:
    config = settings()
    monday_nine = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert last_digest_time(config, monday_nine) == monday_nine
    assert last_digest_time(config, monday_nine + timedelta(days=3)) == monday_nine
    just_before = monday_nine - timedelta(seconds=1)
    assert last_digest_time(config, just_before) == datetime(2026, 10, 19, 7, 0, tzinfo=UTC)


def test_due_week_is_the_week_that_ended_before_the_digest() -> None:
    config = settings()
    assert due_week(config, datetime(2026, 10, 26, 8, 0, tzinfo=UTC)).start == date(2026, 10, 19)
    assert due_week(config, datetime(2026, 10, 26, 7, 59, tzinfo=UTC)).start == date(2026, 10, 12)
    # Late on Sunday UTC is already Monday in Berlin, but before 09:00: still last week's digest.
    assert due_week(config, datetime(2026, 11, 1, 23, 30, tzinfo=UTC)).start == date(2026, 10, 19)


def noop() -> None:
    pass


def test_build_scheduler_adds_each_job_once_with_fixed_ids() -> None:
    config = settings()
    polls = [PollJob("slack", 300, noop), PollJob("confluence", 900, noop)]
    scheduler = build_scheduler(
        config, polls=polls, digest=noop, flush=noop, reminders=noop, poll_at_start=False
    )
    # A second build on the same scheduler (a restart path) replaces rather than duplicates.
    build_scheduler(
        config,
        polls=polls,
        digest=noop,
        flush=noop,
        reminders=noop,
        poll_at_start=False,
        scheduler=scheduler,
    )
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert sorted(jobs) == sorted(
            [
                "poll-slack",
                "poll-confluence",
                DIGEST_JOB_ID,
                DIGEST_CATCH_UP_JOB_ID,
                FLUSH_JOB_ID,
                REMINDERS_JOB_ID,
            ]
        )
        assert jobs["poll-slack"].trigger.interval == timedelta(seconds=300)
        assert jobs["poll-confluence"].trigger.interval == timedelta(seconds=900)
        for job in jobs.values():
            assert (job.max_instances, job.coalesce) == (1, True)
        assert jobs[DIGEST_JOB_ID].misfire_grace_time >= 3600
        next_digest = jobs[DIGEST_JOB_ID].next_run_time.astimezone(BERLIN)
        assert (next_digest.strftime("%A"), next_digest.hour, next_digest.minute) == (
            "Monday",
            9,
            0,
        )
        assert next_digest > datetime.now(UTC)
        assert next_digest - datetime.now(UTC) <= timedelta(days=7)
    finally:
        scheduler.shutdown(wait=False)


def test_a_slow_poll_is_never_overlapped_by_its_next_run() -> None:
    running = 0
    most = 0
    runs = 0
    lock = threading.Lock()

    def slow_poll() -> None:
        nonlocal running, most, runs
        with lock:
            running += 1
            runs += 1
            most = max(most, running)
        time.sleep(0.5)
        with lock:
            running -= 1

    scheduler = build_scheduler(settings(), polls=[PollJob("slack", 0.1, slow_poll)])
    scheduler.start()
    try:
        time.sleep(1.6)
    finally:
        scheduler.shutdown(wait=True)
    assert runs >= 2  # it did run repeatedly, starting at once ...
    assert most == 1  # ... but never two at a time
