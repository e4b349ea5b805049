"""The notifier: the only code that posts to Slack. It drains the outbox exactly once, in order.

    notifier = Notifier(client, db, settings, admin_client=None)
    notifier.send_pending(now=None) -> int          # messages posted (or found posted)
    notifier.refresh_finding(secret_id) -> int      # chat.update every message about a finding
    notifier.delete_source_message(secret_id) -> int  # chat.delete with the admin's user token
    queue_reminders(session, now, settings) -> int  # reminder and escalation rows (scheduler job)

Routing of an outbox row (models.Notification):
    "user:U…"   -> the user's DM (conversations.open). Bots, deactivated and unknown users are
                   routed to the security channel, with the reason.
    "email:…"   -> users.lookupByEmail, then as above; no Slack account -> the security channel.
    "security"  -> settings.security_channel.
A further occurrence of a secret already DMed goes into the thread of the first DM (thread_ts);
the same for further security alerts of one secret in the security channel.

Exactly once, and the crash window. Each row goes through four short transactions:
  1. claim   `queries.claim_notification`: one conditional UPDATE counts the attempt and pushes
             `send_after` past a lease, so no other sender (thread, replica) takes it;
  2. route   the resolved channel and thread are written to the row before posting;
  3. post    chat.postMessage, whose first block carries the row's marker (block_id
             `lw-n-<row id>`); slack_sdk waits out 429s (Retry-After: Slack did not post).
             After a 5xx or a dropped connection Slack may have posted: the notifier looks
             for the marker before posting again (up to POST_TRIES posts per attempt);
  4. record  status=sent with channel and ts.
If the process dies between 3 and 4, the row becomes due again when the lease runs out. Before
posting a row that was attempted before and has a recorded channel, the notifier looks for its
marker in that conversation (conversations.history, or .replies for a thread) and, if the
message is there, records it instead of posting again. Only if that lookup itself fails does it
post again: for a leaked key a second DM is better than none. A Slack error is kept on the row
as `method: error_code` (never message text, so never a secret); transient errors retry with
back-off up to `max_attempts`, permanent ones fail the row at once.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.notify import blocks
from bot.notify.findings import finding_of
from bot.notify.playbooks import playbook_for
from bot.store import queries
from bot.store.db import Database
from bot.store.models import Notification, Occurrence, Secret, utcnow

log = logging.getLogger(__name__)

MARKER_PREFIX = "lw-n-"
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 6
POST_TRIES = 3  # chat.postMessage calls per attempt, each after checking for an earlier post
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout", "team_added_to_org"}
)  # fmt: skip
UNREACHABLE_USER_ERRORS = frozenset(
    {"user_not_found", "users_not_found", "user_disabled", "cannot_dm_bot", "account_inactive"}
)
USER_CACHE_SECONDS = 3600.0
REMINDER_LIMIT = 5  # reminders per finding; the escalation covers the rest
TOP_LEVEL_KINDS = ("alert", "regression", "security_alert", "reminder", "escalation")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_SLACK_TS = re.compile(r"^\d{9,11}\.\d{1,6}$")
_PERMALINK_TS = re.compile(r"/archives/([A-Z0-9]+)/p(\d{10})(\d{6})")


class _Permanent(Exception):
    """The row cannot be sent as it is; retrying will not help."""


class _Skip(Exception):
    """The row no longer needs sending (the finding was closed before its reminder)."""


@dataclass(frozen=True)
class _Route:
    channel: str
    thread_ts: str | None = None
    note: str | None = None  # why a poster's alert went to the security channel


@dataclass(frozen=True)
class _Job:
    id: int
    kind: str
    recipient: str
    attempts: int
    previous_channel: str | None
    previous_thread: str | None
    secret_id: int
    finding: blocks.Finding
    hours_open: float


def _add_retry_handlers(client: WebClient) -> None:
    kinds = {type(h) for h in client.retry_handlers}
    if RateLimitErrorRetryHandler not in kinds:
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    if ServerErrorRetryHandler not in kinds:
        client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=2))


def _posting_client(client: WebClient) -> WebClient:
    """`client` for chat.postMessage: retries a 429 only. After a 5xx or a dropped connection
    the message may have been posted; posting again at once would DM the poster twice."""
    posting = copy.copy(client)
    posting.retry_handlers = [
        h for h in client.retry_handlers if isinstance(h, RateLimitErrorRetryHandler)
    ]
    return posting


def _outcome_unknown(error: Exception) -> bool:
    """A failed post that Slack may still have carried out: a 5xx, or no answer at all."""
    if isinstance(error, SlackApiError):
        return error.response is None or error.response.status_code >= 500
    return isinstance(error, OSError)


def slack_error(method: str, error: Exception) -> str:
    """What a failed call keeps on the row: the method and Slack's error code, nothing else."""
    if isinstance(error, SlackApiError):
        code = error.response.get("error") if error.response is not None else None
        status = error.response.status_code if error.response is not None else 0
        return f"{method}: {code or f'http {status}'}"
    return f"{method}: {type(error).__name__}"


def _is_transient(error: Exception) -> bool:
    if isinstance(error, SlackApiError):
        if error.response is None:
            return True
        return error.response.status_code >= 500 or error.response.get("error") in TRANSIENT_ERRORS
    return isinstance(error, SlackClientError | OSError)


def slack_message_ref(occurrence: Occurrence) -> tuple[str, str] | None:
    """(channel id, message ts) of a Slack occurrence, from its item id or permalink."""
    if occurrence.source != "slack":
        return None
    # item ids are "C1:ts" for a message and "C1:ts:F1" for a file shared in it
    ts = next((part for part in occurrence.item_id.split(":") if _SLACK_TS.match(part)), None)
    if ts is not None:
        return occurrence.unit, ts
    found = _PERMALINK_TS.search(occurrence.permalink or "")
    if found:
        return found.group(1), f"{found.group(2)}.{found.group(3)}"
    return None


class Notifier:
    """Sends the outbox (see the module docstring for routing and the exactly-once rules)."""

    def __init__(
        self,
        client: WebClient,
        db: Database,
        settings: Settings,
        admin_client: WebClient | None = None,
        *,
        batch_size: int = 100,
        max_attempts: int = MAX_ATTEMPTS,
        lease: timedelta = LEASE,
        clock: Callable[[], datetime] = utcnow,
        workspace: str | None = None,
    ) -> None:
        """`workspace`: send only that workspace's rows (one Notifier per installed workspace,
        each with that workspace's bot token); None sends every row (a single workspace)."""
        self.workspace = workspace
        self.client = client
        self.db = db
        self.settings = settings
        self.admin_client = admin_client
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.lease = lease
        self.clock = clock
        # recipient -> (when asked, Slack user id, why unreachable or None)
        self._users: dict[str, tuple[float, str | None, str | None]] = {}
        self._dm_channels: dict[str, str] = {}
        self._security_id: str | None = None
        _add_retry_handlers(client)
        if admin_client is not None:
            _add_retry_handlers(admin_client)
        self._post_client = _posting_client(client)

    @property
    def can_delete(self) -> bool:
        """An admin's user token is configured: the DM offers "Delete the message"."""
        return self.admin_client is not None

    # -- the outbox ----------------------------------------------------------------------------

    def send_pending(self, now: datetime | None = None) -> int:
        """Send every due outbox row, oldest first; returns how many are now in Slack."""
        now = now or self.clock()
        done = 0
        with self.db.session() as session:
            due = [
                n.id
                for n in queries.pending_notifications(
                    session, now=now, limit=self.batch_size, workspace=self.workspace
                )
            ]
        for row_id in due:
            if self._send_one(row_id, now):
                done += 1
        return done

    def _send_one(self, row_id: int, now: datetime) -> bool:
        with self.db.session() as session:
            if not queries.claim_notification(session, row_id, now=now, lease=self.lease):
                return False
            job = self._job(session, row_id, now)
        method = "route"
        try:
            if job.kind in ("reminder", "escalation") and not job.finding.is_open:
                raise _Skip(f"not sent: the finding is {job.finding.status}")
            route = self._route(job)
            with self.db.session() as session:
                session.execute(
                    sa.update(Notification)
                    .where(Notification.id == job.id)
                    .values(slack_channel=route.channel, thread_ts=route.thread_ts)
                )
            ts = None
            if job.attempts > 1 and job.previous_channel:
                method = "conversations.history"
                ts = self._find_posted(job, route)
            if ts is None:
                method = "chat.postMessage"
                ts = self._post(job, route)
            with self.db.session() as session:
                queries.mark_notification_sent(
                    session,
                    job.id,
                    now=now,
                    slack_channel=route.channel,
                    slack_ts=ts,
                    thread_ts=route.thread_ts,
                )
            return True
        except _Skip as skip:
            with self.db.session() as session:
                queries.mark_notification_sent(session, job.id, now=now)
                session.execute(
                    sa.update(Notification)
                    .where(Notification.id == job.id)
                    .values(last_error=str(skip))
                )
            return False
        except _Permanent as permanent:
            self._fail(job, str(permanent), now, retry=False)
            return False
        except (SlackApiError, SlackClientError, OSError) as error:
            self._fail(job, slack_error(method, error), now, retry=_is_transient(error))
            return False

    def _fail(self, job: _Job, error: str, now: datetime, retry: bool) -> None:
        retry_at = None
        if retry and job.attempts < self.max_attempts:
            retry_at = now + timedelta(minutes=min(2 ** (job.attempts - 1), 60))
        log.warning("notification %s (%s) not sent: %s", job.id, job.kind, error)
        with self.db.session() as session:
            queries.mark_notification_failed(
                session, job.id, error=error, now=now, retry_at=retry_at
            )

    def _job(self, session: Session, row_id: int, now: datetime) -> _Job:
        row = session.get(Notification, row_id)
        assert row is not None
        secret = row.secret
        first = secret.first_seen
        if row.kind in ("reminder", "escalation"):  # how long the poster has known
            first = self._first_sent_at(session, secret.id) or first
        return _Job(
            id=row.id,
            kind=row.kind,
            recipient=row.recipient,
            attempts=row.attempts,
            previous_channel=row.slack_channel,
            previous_thread=row.thread_ts,
            secret_id=secret.id,
            finding=finding_of(secret, row.occurrence),
            hours_open=max((now - first).total_seconds() / 3600, 0.0),
        )

    @staticmethod
    def _first_sent_at(session: Session, secret_id: int) -> datetime | None:
        return session.scalar(
            sa.select(sa.func.min(Notification.sent_at)).where(
                Notification.secret_id == secret_id,
                Notification.kind.in_(("alert", "regression")),
                Notification.status == "sent",
            )
        )

    # -- routing -------------------------------------------------------------------------------

    def _route(self, job: _Job) -> _Route:
        note = None
        if job.recipient == "security":
            channel = self._security_channel(None)
        else:
            user_id, why = self._resolve_user(job.recipient)
            if user_id is None or why is not None:
                if job.kind == "reminder":
                    raise _Skip(f"not sent: {why}; the escalation goes to the security channel")
                note = f"Could not tell the poster directly: {why}."
                channel = self._security_channel(why)
            else:
                channel = self._dm_channel(user_id)
        return _Route(channel=channel, thread_ts=self._thread_of(job, channel), note=note)

    def _security_channel(self, why: str | None) -> str:
        """The security channel's id (a configured #name is looked up once)."""
        channel = self.settings.security_channel
        if not channel:
            reason = f"{why}, and " if why else ""
            raise _Permanent(f"{reason}no security channel is set (LEAKWATCH_SECURITY_CHANNEL)")
        if self._security_id is None:
            self._security_id = find_channel_id(self.client, channel)
            if self._security_id is None:
                raise _Permanent(f"the security channel {channel} was not found; invite the bot")
        return self._security_id

    def _resolve_user(self, recipient: str) -> tuple[str | None, str | None]:
        """(user id, why they cannot get a DM); why is None for a reachable person.

        Answers are kept for USER_CACHE_SECONDS: a long-running notifier notices a deactivation.
        """
        kind, _, address = recipient.partition(":")
        if kind not in ("user", "email") or not address:
            raise _Permanent(f"unknown recipient {kind!r}")
        cached = self._users.get(recipient)
        if cached is not None and time.monotonic() - cached[0] < USER_CACHE_SECONDS:
            return cached[1], cached[2]
        user_id: str | None = address
        try:
            if kind == "email":
                user = self.client.users_lookupByEmail(email=address)["user"]
                user_id = str(user["id"])
            else:
                user = self.client.users_info(user=address)["user"]
            why = _unreachable(user)
        except SlackApiError as error:
            if error.response.get("error") not in UNREACHABLE_USER_ERRORS:
                raise
            user_id, why = (
                None,
                (
                    "the author's email address has no Slack account"
                    if kind == "email"
                    else "the poster is not a member of this workspace"
                ),
            )
        self._users[recipient] = (time.monotonic(), user_id, why)
        return user_id, why

    def _dm_channel(self, user_id: str) -> str:
        if user_id not in self._dm_channels:
            opened = self.client.conversations_open(users=user_id)
            self._dm_channels[user_id] = str(opened["channel"]["id"])
        return self._dm_channels[user_id]

    def _thread_of(self, job: _Job, channel: str) -> str | None:
        """The ts of the first message about this secret in `channel`, if there is one."""
        if job.kind not in ("alert", "security_alert"):
            return None
        with self.db.session() as session:
            ts: str | None = session.scalar(
                sa.select(Notification.slack_ts)
                .where(
                    Notification.secret_id == job.secret_id,
                    Notification.kind.in_(("alert", "regression", "security_alert")),
                    Notification.status == "sent",
                    Notification.slack_channel == channel,
                    Notification.slack_ts.is_not(None),
                    Notification.thread_ts.is_(None),
                    Notification.id != job.id,
                )
                .order_by(Notification.id)
                .limit(1)
            )
        return ts

    # -- posting -------------------------------------------------------------------------------

    def _message(self, job: _Job, route: _Route) -> blocks.Message:
        finding = job.finding
        playbook = playbook_for(finding.rule_id, finding.provider)
        if route.thread_ts is not None:
            return blocks.further_occurrence_message(finding)
        if job.kind in ("alert", "regression") and route.note is None:
            return blocks.alert_message(
                finding, playbook, self.can_delete, regression=job.kind == "regression"
            )
        if job.kind == "reminder":
            return blocks.reminder_message(finding, playbook, job.hours_open, self.can_delete)
        if job.kind == "escalation":
            return blocks.escalation_message(finding, playbook, job.hours_open, self.can_delete)
        return blocks.security_alert_message(finding, playbook, self.can_delete, note=route.note)

    def _post(self, job: _Job, route: _Route) -> str:
        message = self._message(job, route)
        payload = _with_marker(message.blocks, job.id)
        tries = 0
        while True:
            tries += 1
            try:
                reply = self._post_client.chat_postMessage(
                    channel=route.channel,
                    text=message.text,
                    blocks=payload,
                    thread_ts=route.thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                return str(reply["ts"])
            except (SlackApiError, OSError) as error:
                if tries >= POST_TRIES or not _outcome_unknown(error):
                    raise
            # Slack may have posted it before the failure: look before posting again.
            found = self._find_posted(job, route)
            if found is not None:
                return found

    def _find_posted(self, job: _Job, route: _Route) -> str | None:
        """The ts of this row's message if an earlier attempt posted it (crash recovery)."""
        marker = f"{MARKER_PREFIX}{job.id}"
        try:
            if route.thread_ts:
                reply = self.client.conversations_replies(
                    channel=route.channel, ts=route.thread_ts, limit=100
                )
            else:
                reply = self.client.conversations_history(channel=route.channel, limit=100)
        except SlackApiError as error:
            log.warning(
                "notification %s: could not check for an earlier post (%s); posting",
                job.id,
                slack_error("conversations.history", error),
            )
            return None
        for message in reply.get("messages") or []:
            if any(b.get("block_id") == marker for b in message.get("blocks") or []):
                return str(message["ts"])
        return None

    # -- after a click ---------------------------------------------------------------------------

    def refresh_finding(self, secret_id: int) -> int:
        """Update in place every top-level message about a finding (new state, who set it)."""
        with self.db.session() as session:
            secret = session.get(Secret, secret_id)
            if secret is None:
                return 0
            rows = session.scalars(
                sa.select(Notification)
                .where(
                    Notification.secret_id == secret_id,
                    Notification.status == "sent",
                    Notification.slack_ts.is_not(None),
                    Notification.thread_ts.is_(None),
                    Notification.kind.in_(TOP_LEVEL_KINDS),
                )
                .order_by(Notification.id)
            ).all()
            first = self._first_sent_at(session, secret_id) or secret.first_seen
            jobs = [
                (
                    _Job(
                        id=row.id,
                        kind=row.kind,
                        recipient=row.recipient,
                        attempts=row.attempts,
                        previous_channel=row.slack_channel,
                        previous_thread=None,
                        secret_id=secret_id,
                        finding=finding_of(secret, row.occurrence),
                        hours_open=max((self.clock() - first).total_seconds() / 3600, 0.0),
                    ),
                    str(row.slack_channel),
                    str(row.slack_ts),
                    row.last_error,
                )
                for row in rows
            ]
        updated = 0
        for job, channel, ts, _ in jobs:
            is_dm = channel.startswith("D")
            route = _Route(
                channel=channel,
                note=None
                if is_dm or job.kind != "alert"
                else "The poster could not be told directly.",
            )
            message = self._message(job, route)
            try:
                self.client.chat_update(
                    channel=channel,
                    ts=ts,
                    text=message.text,
                    blocks=_with_marker(message.blocks, job.id),
                )
                updated += 1
            except SlackApiError as error:
                log.warning(
                    "could not update message of notification %s: %s",
                    job.id,
                    slack_error("chat.update", error),
                )
        return updated

    def tell(self, user_id: str, text: str) -> None:
        """A short DM to one person (a refusal or a result where no response_url exists)."""
        self.client.chat_postMessage(channel=user_id, text=text)

    def delete_source_message(self, secret_id: int, now: datetime | None = None) -> int:
        """Delete the Slack messages holding the secret, with the admin's user token.

        Returns how many were deleted. Raises `PermissionError` without an admin token.
        """
        if self.admin_client is None:
            raise PermissionError("no admin token (SLACK_ADMIN_TOKEN) is configured")
        now = now or self.clock()
        with self.db.session() as session:
            occurrences = session.scalars(
                sa.select(Occurrence).where(
                    Occurrence.secret_id == secret_id,
                    Occurrence.source == "slack",
                    Occurrence.removed_at.is_(None),
                )
            ).all()
            refs = [(o.id, slack_message_ref(o)) for o in occurrences]
        deleted: list[int] = []
        for occurrence_id, ref in refs:
            if ref is None:
                continue
            try:
                self.admin_client.chat_delete(channel=ref[0], ts=ref[1])
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    raise
            deleted.append(occurrence_id)
        if deleted:
            with self.db.session() as session:
                session.execute(
                    sa.update(Occurrence).where(Occurrence.id.in_(deleted)).values(removed_at=now)
                )
        return len(deleted)


def find_channel_id(client: WebClient, channel: str) -> str | None:
    """The id of a channel given as an id or a name ("#security"), in the client's workspace.

    A name is looked up with conversations.list (the bot sees private channels it is in);
    None when no channel has that name. The same name may be a different channel in every
    workspace, so each workspace resolves it with its own client.
    """
    if _CHANNEL_ID.match(channel):
        return channel
    name = channel.lstrip("#").lower()
    for page in client.conversations_list(
        types="public_channel,private_channel", exclude_archived=True, limit=200
    ):
        for found in page.get("channels") or []:
            if str(found.get("name", "")).lower() == name:
                return str(found["id"])
    return None


def _unreachable(user: dict[str, Any]) -> str | None:
    if user.get("deleted"):
        return "the poster's account is deactivated"
    if user.get("is_bot") or user.get("is_app_user"):
        return "the poster is a bot"
    return None


def _with_marker(message_blocks: list[dict[str, Any]], row_id: int) -> list[dict[str, Any]]:
    """The blocks with the outbox row's marker as the first block's block_id."""
    if not message_blocks:
        return message_blocks
    first = {**message_blocks[0], "block_id": f"{MARKER_PREFIX}{row_id}"}
    return [first, *message_blocks[1:]]


# -- reminders and escalations (a scheduler job) --------------------------------------------------


def queue_reminders(session: Session, now: datetime, settings: Settings) -> int:
    """Queue reminders to posters and escalations to the security channel for open findings.

    Every `settings.reminder_hours` after the poster's first DM while the finding is open, one
    reminder (at most REMINDER_LIMIT); once `settings.escalation_hours` have passed, one
    escalation. Dedupe keys (`reminder:<secret>:<n>`, `escalation:<secret>`) make repeated runs
    harmless. Never commits; returns the number of rows queued.
    """
    first_dm = (
        sa.select(
            Notification.secret_id,
            sa.func.min(Notification.sent_at).label("sent_at"),
            sa.func.min(Notification.id).label("row_id"),
        )
        .where(
            Notification.kind.in_(("alert", "regression")),
            Notification.status == "sent",
            Notification.slack_channel.like("D%"),
            Notification.thread_ts.is_(None),
        )
        .group_by(Notification.secret_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            Secret.id, Secret.workspace, Secret.first_seen, first_dm.c.sent_at, first_dm.c.row_id
        )
        .join(first_dm, first_dm.c.secret_id == Secret.id, isouter=True)
        .where(Secret.status == "open")
    ).all()
    reminder = timedelta(hours=settings.reminder_hours)
    escalation = timedelta(hours=settings.escalation_hours)
    queued = 0
    for secret_id, workspace, first_seen, dm_sent_at, dm_row_id in rows:
        if dm_sent_at is not None and dm_row_id is not None:
            round_ = int((now - dm_sent_at) / reminder)
            if 1 <= round_ <= REMINDER_LIMIT:
                recipient = session.scalar(
                    sa.select(Notification.recipient).where(Notification.id == dm_row_id)
                )
                queued += queries.enqueue_notification(
                    session,
                    workspace=workspace,
                    secret_id=secret_id,
                    kind="reminder",
                    recipient=str(recipient),
                    dedupe_key=f"reminder:{secret_id}:{round_}",
                    now=now,
                )
        since = dm_sent_at or first_seen
        if settings.security_channel and now - since >= escalation:
            queued += queries.enqueue_notification(
                session,
                workspace=workspace,
                secret_id=secret_id,
                kind="escalation",
                recipient="security",
                dedupe_key=f"escalation:{secret_id}",
                now=now,
            )
    return queued
