"""The bot's clock: source polls, the weekly digest, the notifier's flush, reminders.

This is the only module that imports APScheduler (3.x). Jobs live in APScheduler's in-memory
store and are added at every start with fixed ids and `replace_existing=True`; nothing about the
schedule itself is persisted. What must survive a restart lives in our own tables: how far each
source was read (Cursor) and which digest weeks were claimed and posted (Digest).

    scheduler = schedule_bot(
        settings, db=db, client=client, notifier=notifier,
        polls=[poll_job(source, interval, db=db, detector=detector, notifier=notifier)],
    )   # or build_scheduler(settings, polls=..., digest=..., flush=..., reminders=...)
    post_missed_digest(db, client, settings)   # catch-up: the bot may have been down on Monday
    scheduler.start()

Jobs (ids are fixed):
    poll-<source>   every source's own interval; max_instances=1 and coalesce=True, so a slow
                    poll is never overlapped by the next one and missed runs collapse into one
    weekly-digest   CronTrigger(day_of_week=settings.digest_day, hour, minute, timezone=
                    settings.timezone). Not CronTrigger.from_crontab: in 3.x it counts weekdays
                    from 0 = Monday, so "0 9 * * 1" would fire on Tuesday. Misfire grace: 6 h.
    digest-catch-up hourly post_due_digest as well: posts a week that a misfire or a failed post
                    left unposted; a no-op (one query) once the week has its row
    notifier-flush  sends the outbox every 30 s (a poll sends its own alerts when it ends; this
                    covers real-time events, retries and reminders)
    reminders       every 15 min: queue reminders and escalations, then send them

With one workspace the digest counts every source and its row's workspace is "". With many
workspaces (bot/slack_app/workspaces.py post_due_digests) each workspace gets its own digest of
its own findings, in its own digest channel, with its own row (workspace = team id).

The digest goes out once per (workspace, channel, week), however many instances run:
    1. Claim: insert the Digest row (posted_at NULL) in its own transaction. The row is unique on
       (workspace, channel, week_start); the loser of a race gets IntegrityError and posts nothing.
    2. Post the message with chat.postMessage.
    3. Record: set posted_at and slack_ts on the row.
The message's first block carries the marker block_id `lw-digest-<week start>`.
If the post fails after the claim:
    - Slack answered with an error below 500 (not_in_channel, ratelimited, ...) or the connection
      was refused before a request was sent: nothing was posted. The claim is released (the row
      deleted) and the hourly catch-up job, here or in another instance, tries the week again.
    - Anything else (a 5xx, a timeout, a dropped connection) may have come after Slack stored
      the message. Still holding the claim, the poster waits a few seconds and looks for the
      marker in the channel's latest messages: found, the ts is recorded as posted; not found,
      the claim is released as above. slack_sdk's own 5xx retry is left out of this one call
      for the same reason.
    - If that check fails too, or the process dies between claim and record, the row stays
      with posted_at NULL and is never retried automatically: a second digest is worse than a
      late one. It is logged as an error; `python -m bot digest --post --force` posts that week
      again by hand.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, Protocol

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.notify.digest import Week, compute_digest, digest_blocks, digest_summary
from bot.notify.notifier import Notifier, queue_reminders
from bot.pipeline import Scanner
from bot.polling import PollAborted, PollReport, poll_source
from bot.store import models
from bot.store.db import Database
from connectors.base import Source

log = logging.getLogger(__name__)

DIGEST_JOB_ID: Final = "weekly-digest"
DIGEST_CATCH_UP_JOB_ID: Final = "digest-catch-up"
FLUSH_JOB_ID: Final = "notifier-flush"
REMINDERS_JOB_ID: Final = "reminders"
DIGEST_MISFIRE_GRACE_SECONDS: Final = 6 * 3600
DIGEST_CATCH_UP_SECONDS: Final = 3600
FLUSH_SECONDS: Final = 30
REMINDERS_SECONDS: Final = 900
VERIFY_DELAY_SECONDS: Final = 5.0
DIGEST_MARKER_PREFIX: Final = "lw-digest-"
DIGEST_WORKSPACE: Final = ""  # one digest for the whole deployment, every source included

Job = Callable[[], object]


class OutboxSender(Protocol):
    """What sends the outbox: a Notifier, or every installed workspace's (many workspaces)."""

    def send_pending(self, now: datetime | None = None) -> int: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PollJob:
    """One configured source: `poll()` reads it once; runs every `interval_seconds`."""

    source: str  # "slack", "confluence", "email": the job id is "poll-<source>"
    interval_seconds: float
    poll: Job

    @property
    def job_id(self) -> str:
        return f"poll-{self.source}"


def build_scheduler(
    settings: Settings,
    *,
    polls: Sequence[PollJob] = (),
    digest: Job | None = None,
    flush: Job | None = None,
    reminders: Job | None = None,
    flush_seconds: float = FLUSH_SECONDS,
    reminders_seconds: float = REMINDERS_SECONDS,
    digest_catch_up_seconds: float = DIGEST_CATCH_UP_SECONDS,
    poll_at_start: bool = True,
    scheduler: BaseScheduler | None = None,
) -> BaseScheduler:
    """A scheduler (not started) with the bot's jobs; pass `scheduler` to fill another one.

    Every job is a callable without arguments: wiring (bot/commands/run.py) binds the database,
    the Slack client and the notifier. Polls run once at start when `poll_at_start` is true.
    """
    scheduler = scheduler or BackgroundScheduler(timezone=settings.timezone)
    for poll in polls:
        scheduler.add_job(
            poll.poll,
            IntervalTrigger(seconds=poll.interval_seconds, timezone=settings.timezone),
            id=poll.job_id,
            name=f"poll {poll.source}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(poll.interval_seconds)),
            **({"next_run_time": utc_now()} if poll_at_start else {}),
        )
    if digest is not None:
        scheduler.add_job(
            digest,
            digest_trigger(settings),
            id=DIGEST_JOB_ID,
            name="weekly digest",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=DIGEST_MISFIRE_GRACE_SECONDS,
        )
        scheduler.add_job(
            digest,
            IntervalTrigger(seconds=digest_catch_up_seconds, timezone=settings.timezone),
            id=DIGEST_CATCH_UP_JOB_ID,
            name="weekly digest catch-up",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(digest_catch_up_seconds)),
        )
    for job, job_id, seconds in (
        (flush, FLUSH_JOB_ID, flush_seconds),
        (reminders, REMINDERS_JOB_ID, reminders_seconds),
    ):
        if job is not None:
            scheduler.add_job(
                job,
                IntervalTrigger(seconds=seconds, timezone=settings.timezone),
                id=job_id,
                name=job_id.replace("-", " "),
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(seconds)),
            )
    return scheduler


def schedule_bot(
    settings: Settings,
    *,
    db: Database,
    client: WebClient,
    notifier: Notifier,
    polls: Sequence[PollJob] = (),
    scheduler: BaseScheduler | None = None,
) -> BaseScheduler:
    """build_scheduler with the bot's own job functions bound to its database and clients."""
    return build_scheduler(
        settings,
        polls=polls,
        digest=lambda: post_due_digest(db, client, settings),
        flush=notifier.send_pending,
        reminders=lambda: queue_reminders_and_send(db, notifier, settings),
        scheduler=scheduler,
    )


def poll_job(
    source: Source,
    interval_seconds: float,
    *,
    db: Database,
    detector: Scanner,
    notifier: OutboxSender | None = None,
    workspace: str = "",
) -> PollJob:
    """A PollJob that reads `source` once through the pipeline, then sends what it queued."""
    return PollJob(
        source.kind,
        interval_seconds,
        lambda: run_poll(db, source, detector, notifier, workspace=workspace),
    )


# --- job functions -----------------------------------------------------------------------------


def run_poll(
    db: Database,
    source: Source,
    detector: Scanner,
    notifier: OutboxSender | None = None,
    *,
    workspace: str = "",
    now: datetime | None = None,
) -> PollReport | None:
    """One poll of `source`; new alerts go out at once rather than at the next flush.

    A source that cannot be read at all (PollAborted: bad credentials, a removed site) is logged
    with what to fix and polled again at the next interval; it does not stop other jobs.
    """
    try:
        report = poll_source(db, source, detector, workspace=workspace, now=now)
    except PollAborted as error:
        log.error("%s", error)
        return None
    if notifier is not None and report.notifications:
        notifier.send_pending(now=now)
    return report


def queue_reminders_and_send(
    db: Database, notifier: OutboxSender, settings: Settings, *, now: datetime | None = None
) -> int:
    """The reminders job: queue due reminders and escalations, then send the outbox.

    Returns how many rows were queued. Queuing is idempotent (dedupe keys per round), so a run
    repeated after a crash or by a second instance queues nothing twice.
    """
    now = now or utc_now()
    with db.session() as session:
        queued = queue_reminders(session, now, settings)
    notifier.send_pending(now=now)
    return queued


# --- when the digest is due --------------------------------------------------------------------


def digest_trigger(settings: Settings) -> CronTrigger:
    """Weekly at settings.digest_day and digest_time ("mon", "09:00"), in settings.timezone."""
    hour, minute = (int(part) for part in settings.digest_time.split(":"))
    return CronTrigger(
        day_of_week=settings.digest_day, hour=hour, minute=minute, timezone=settings.timezone
    )


def last_digest_time(settings: Settings, now: datetime) -> datetime:
    """The latest scheduled digest time at or before `now` (weekly: within the last 8 days)."""
    trigger = digest_trigger(settings)
    fire: datetime | None = trigger.get_next_fire_time(None, now - timedelta(days=8))
    latest: datetime | None = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire)
    if latest is None:  # unreachable for a weekly trigger
        raise RuntimeError("no digest time in the last 8 days")
    return latest.astimezone(UTC)


def due_week(settings: Settings, now: datetime) -> Week:
    """The week the latest scheduled digest reports on: the last one complete at that time."""
    return Week.last_complete(last_digest_time(settings, now), settings.timezone)


# --- posting it, once --------------------------------------------------------------------------

Outcome = Literal["posted", "already_claimed", "released", "unconfirmed", "before_install"]


@dataclass(frozen=True)
class DigestPost:
    week: Week
    channel: str
    outcome: Outcome
    slack_ts: str | None = None
    error: str | None = None


def post_due_digest(
    db: Database,
    client: WebClient,
    settings: Settings,
    *,
    now: datetime | None = None,
    workspace: str = DIGEST_WORKSPACE,
    post_to: Callable[[], str | None] | None = None,
) -> DigestPost | None:
    """The weekly-digest job: post the latest scheduled week's digest unless it was claimed.

    Idempotent, so it is also the catch-up after a restart and the hourly retry. Returns None
    when no digest channel is configured. `workspace` (a team id; many workspaces) counts only
    that workspace's findings and keeps its own once-per-week claim; `post_to` finds the channel
    id in that workspace, and is asked only when the week is still to be posted.
    """
    now = now or utc_now()
    if not settings.digest_channel:
        log.warning("weekly digest skipped: LEAKWATCH_DIGEST_CHANNEL is not set")
        return None
    week = due_week(settings, now)
    if is_week_claimed(db, settings.digest_channel, week.start, workspace=workspace):
        return DigestPost(week, settings.digest_channel, "already_claimed")
    return post_digest_for_week(
        db, client, settings, week, now=now, workspace=workspace, post_to=post_to
    )


def was_running_before(db: Database, moment: datetime, *, workspace: str) -> bool:
    """Whether LeakWatch had found or posted anything before `moment`: a digest row for the
    workspace, or a secret first seen earlier (any workspace when `workspace` is "")."""
    with db.session() as session:
        digests = sa.select(models.Digest.id).where(models.Digest.workspace == workspace)
        secrets = sa.select(models.Secret.id).where(models.Secret.first_seen < moment)
        if workspace != DIGEST_WORKSPACE:
            secrets = secrets.where(models.Secret.workspace == workspace)
        return (
            session.scalar(digests.limit(1)) is not None
            or session.scalar(secrets.limit(1)) is not None
        )


def post_missed_digest(
    db: Database, client: WebClient, settings: Settings, *, now: datetime | None = None
) -> DigestPost | None:
    """At start: if the latest scheduled digest time passed while the bot was down, post it.

    On a new installation nothing was missed: the bot did not exist when that digest was due.
    Then the week is marked done without a post (a Digest row with no Slack ts), so that
    neither this start nor the hourly catch-up posts a digest of the days before the install;
    the first digest goes out at the next scheduled time.
    """
    now = now or utc_now()
    due = last_digest_time(settings, now)
    if settings.digest_channel and not was_running_before(db, due, workspace=DIGEST_WORKSPACE):
        week = due_week(settings, now)
        try:
            with db.session() as session:
                session.add(models.Digest(workspace=DIGEST_WORKSPACE,
                                          channel=settings.digest_channel,
                                          week_start=week.start, posted_at=now))
        except IntegrityError:  # another instance starting at the same time marked it first
            pass
        log.info("new installation: the first weekly digest goes out after %s", due)
        return DigestPost(week, settings.digest_channel, "before_install")
    result = post_due_digest(db, client, settings, now=now)
    if result is not None and result.outcome == "posted":
        log.info("posted the missed digest for the week of %s", result.week.start)
    return result


def is_week_claimed(
    db: Database, channel: str, week_start: date, *, workspace: str = DIGEST_WORKSPACE
) -> bool:
    with db.session() as session:
        return (
            session.scalar(
                sa.select(models.Digest.id).where(
                    models.Digest.workspace == workspace,
                    models.Digest.channel == channel,
                    models.Digest.week_start == week_start,
                )
            )
            is not None
        )


def post_digest_for_week(
    db: Database,
    client: WebClient,
    settings: Settings,
    week: Week,
    *,
    now: datetime | None = None,
    force: bool = False,
    verify_delay: float | None = None,
    workspace: str = DIGEST_WORKSPACE,
    post_to: Callable[[], str | None] | None = None,
) -> DigestPost:
    """Claim the week, post its digest to settings.digest_channel, record the message ts.

    `force` posts even when the week is already claimed (an operator's repeat), and records
    the new message on the existing row. `verify_delay` (default VERIFY_DELAY_SECONDS): how
    long to wait, after a post whose outcome is unknown, before looking for it in the channel.
    `workspace` and `post_to`: see post_due_digest. The claim is kept under the channel as
    configured; the message goes to the id `post_to` finds (None: not found, nothing posted).
    """
    now = now or utc_now()
    channel = settings.digest_channel
    if not channel:
        raise ValueError("LEAKWATCH_DIGEST_CHANNEL is not set")
    target = channel
    if post_to is not None:
        found = post_to()
        if found is None:
            log.error("weekly digest not posted: the channel %s was not found", channel)
            return DigestPost(week, channel, "released", error="channel_not_found")
        target = found
    if not _claim_week(db, channel, week.start, workspace) and not force:
        log.info("digest for the week of %s already claimed for %s", week.start, channel)
        return DigestPost(week, channel, "already_claimed")

    try:
        with db.session() as session:
            digest = compute_digest(
                session,
                week,
                now=now,
                workspaces=None if workspace == DIGEST_WORKSPACE else (workspace,),
            )
        blocks, text = digest_blocks(digest), digest_summary(digest)
    except Exception:
        if not force:
            _release_claim(db, channel, week.start, workspace)
        raise
    marker = digest_marker(week)
    blocks[0] = {**blocks[0], "block_id": marker}

    client = _without_server_error_retries(client)
    try:
        response = client.chat_postMessage(
            channel=target, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        slack_ts: str | None = str(response.get("ts") or "") or None
    except Exception as error:
        why = _why(error)
        if not _nothing_was_posted(error):
            time.sleep(VERIFY_DELAY_SECONDS if verify_delay is None else verify_delay)
            try:
                slack_ts = find_posted_digest(client, target, marker)
            except Exception as check_error:
                log.error(
                    "weekly digest for %s may or may not have been posted (%s), and the channel "
                    "could not be checked (%s); not retried: see `python -m bot digest --post "
                    "--force`",
                    week.start,
                    why,
                    _why(check_error),
                )
                return DigestPost(week, channel, "unconfirmed", error=why)
        else:
            slack_ts = None
        if slack_ts is None:
            if not force:
                _release_claim(db, channel, week.start, workspace)
            log.error("weekly digest for %s not posted, will retry: %s", week.start, why)
            return DigestPost(week, channel, "released", error=why)
        log.info("weekly digest for %s was posted despite %s", week.start, why)

    try:
        with db.session() as session:
            session.execute(
                sa.update(models.Digest)
                .where(
                    models.Digest.workspace == workspace,
                    models.Digest.channel == channel,
                    models.Digest.week_start == week.start,
                )
                .values(posted_at=now, slack_ts=slack_ts)
            )
    except Exception as error:  # posted, but not recorded: the claim keeps it from repeating
        log.error("weekly digest for %s posted but not recorded: %s", week.start, _why(error))
        return DigestPost(week, channel, "unconfirmed", slack_ts, _why(error))
    log.info("weekly digest for the week of %s posted to %s", week.start, channel)
    return DigestPost(week, channel, "posted", slack_ts)


def digest_marker(week: Week) -> str:
    """The block_id of a digest's first block: finds the message again in the channel."""
    return f"{DIGEST_MARKER_PREFIX}{week.start.isoformat()}"


def find_posted_digest(client: WebClient, channel: str, marker: str) -> str | None:
    """The ts of the digest carrying `marker` among the channel's latest messages, or None.

    Fifteen messages: the page size Slack allows apps outside its Marketplace, and plenty a few
    seconds after the post.
    """
    response = client.conversations_history(channel=channel, limit=15)
    for message in response.get("messages") or []:
        if any(block.get("block_id") == marker for block in message.get("blocks") or []):
            return str(message["ts"])
    return None


def _without_server_error_retries(client: WebClient) -> WebClient:
    """The same client minus slack_sdk's 5xx retry: a 5xx may come after Slack stored the
    message, so retrying it blindly could post the digest twice. Rate-limit retries stay (a 429
    stored nothing)."""
    handlers = [h for h in client.retry_handlers if not isinstance(h, ServerErrorRetryHandler)]
    if len(handlers) == len(client.retry_handlers):
        return client
    copy = WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=dict(client.headers),
        logger=client.logger,
        retry_handlers=handlers,
    )
    copy.default_params = dict(client.default_params)  # team_id, when one was given
    return copy


def _claim_week(db: Database, channel: str, week_start: date, workspace: str) -> bool:
    try:
        with db.session() as session:
            session.add(models.Digest(workspace=workspace, channel=channel, week_start=week_start))
    except IntegrityError:
        return False
    return True


def _release_claim(db: Database, channel: str, week_start: date, workspace: str) -> None:
    with db.session() as session:
        session.execute(
            sa.delete(models.Digest).where(
                models.Digest.workspace == workspace,
                models.Digest.channel == channel,
                models.Digest.week_start == week_start,
                models.Digest.posted_at.is_(None),
            )
        )


def _nothing_was_posted(error: Exception) -> bool:
    """True when the failure proves Slack did not post: it answered no, or was never reached."""
    if isinstance(error, SlackApiError):
        # Slack's 5xx may come after the message was stored; every other answer means "no".
        return bool(error.response.status_code < 500)
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return isinstance(error.reason, ConnectionRefusedError | socket.gaierror)
    return isinstance(error, ConnectionRefusedError)


def _why(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack error {error.response.get('error', 'unknown')}"
    return type(error).__name__
