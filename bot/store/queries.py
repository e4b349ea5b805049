"""Reads and writes of the store. Each function takes a Session and never commits: the caller
(a poll job, a Slack listener, a command) owns the unit of work, `with db.session() as s:`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from bot.detection.risk import LEVELS
from bot.logs import redact
from bot.store.models import (
    NOTIFICATION_STATUSES,
    SECRET_STATUSES,
    UNIT_LENGTH,
    AuditEvent,
    Cursor,
    Notification,
    Occurrence,
    ProcessedEvent,
    Secret,
    Suppression,
    fit_identifier,
)

_LEVEL_FLOOR = {level: floor for floor, level in LEVELS}
# The longest error text kept on a cursor or a notification; the rest is noise. Error texts
# come from outside (APIs, connectors) and are redacted before they are stored.
MAX_ERROR_CHARS = 2000


# --- inserts that tolerate a concurrent writer --------------------------------------------------


def insert_ignoring_conflicts(session: Session, model: Any, conflict: Sequence[str]) -> Any:
    """INSERT … ON CONFLICT (conflict) DO NOTHING into a model or table, SQLite or PostgreSQL."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing(index_elements=list(conflict))
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model).on_conflict_do_nothing(index_elements=list(conflict))
    raise NotImplementedError(f"unsupported database: {dialect}")


# --- cursors ------------------------------------------------------------------------------------


def get_cursor(session: Session, *, workspace: str, source: str, unit: str) -> Cursor | None:
    return session.get(Cursor, (workspace, source, fit_identifier(unit, UNIT_LENGTH)))


def get_cursor_value(session: Session, *, workspace: str, source: str, unit: str) -> str | None:
    cursor = get_cursor(session, workspace=workspace, source=source, unit=unit)
    return cursor.value if cursor is not None else None


def set_cursor(
    session: Session, *, workspace: str, source: str, unit: str, value: str | None, now: datetime
) -> Cursor:
    """Store how far `unit` has been read; a clean read clears the unit's last error."""
    cursor = _cursor_row(session, workspace=workspace, source=source, unit=unit, now=now)
    cursor.value = value
    cursor.updated_at = now
    cursor.last_error = None
    cursor.last_error_at = None
    return cursor


def record_unit_error(
    session: Session, *, workspace: str, source: str, unit: str, error: str, now: datetime
) -> Cursor:
    """Keep why a unit could not be read, beside its (unchanged) cursor."""
    cursor = _cursor_row(session, workspace=workspace, source=source, unit=unit, now=now)
    cursor.last_error = redact(error)[:MAX_ERROR_CHARS]
    cursor.last_error_at = now
    return cursor


def list_cursors(session: Session, *, source: str | None = None) -> list[Cursor]:
    query = sa.select(Cursor).order_by(Cursor.workspace, Cursor.source, Cursor.unit)
    if source is not None:
        query = query.where(Cursor.source == source)
    return list(session.scalars(query))


def _cursor_row(
    session: Session, *, workspace: str, source: str, unit: str, now: datetime
) -> Cursor:
    cursor = get_cursor(session, workspace=workspace, source=source, unit=unit)
    if cursor is None:
        unit = fit_identifier(unit, UNIT_LENGTH)
        cursor = Cursor(workspace=workspace, source=source, unit=unit, value=None, updated_at=now)
        session.add(cursor)
    return cursor


# --- secrets and findings -----------------------------------------------------------------------


def get_secret(session: Session, secret_id: int) -> Secret | None:
    return session.get(Secret, secret_id)


def find_secret(session: Session, *, workspace: str, fingerprint: str) -> Secret | None:
    return session.scalar(
        sa.select(Secret).where(Secret.workspace == workspace, Secret.fingerprint == fingerprint)
    )


def list_findings(
    session: Session,
    *,
    workspace: str | None = None,
    status: str | Sequence[str] | None = None,
    provider: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    rule_id: str | None = None,
    min_level: str | None = None,
    limit: int | None = None,
) -> list[Secret]:
    """Secrets with their occurrences, riskiest first, then most recently seen."""
    query = sa.select(Secret).options(selectinload(Secret.occurrences))
    if workspace is not None:
        query = query.where(Secret.workspace == workspace)
    if status is not None:
        query = query.where(Secret.status.in_(_as_list(status)))
    if provider is not None:
        wanted = [name.lower() for name in _as_list(provider)]
        query = query.where(sa.func.lower(Secret.provider).in_(wanted))
    if rule_id is not None:
        query = query.where(Secret.rule_id == rule_id)
    if source is not None:
        query = query.where(
            sa.exists().where(
                Occurrence.secret_id == Secret.id, Occurrence.source.in_(_as_list(source))
            )
        )
    if min_level is not None:
        query = query.where(Secret.risk_score >= _LEVEL_FLOOR[min_level])
    query = query.order_by(Secret.risk_score.desc(), Secret.last_seen.desc(), Secret.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def open_findings_for_user(session: Session, *, workspace: str, user: str) -> list[Secret]:
    """Open secrets that `user` (a Slack user id or an email address) posted somewhere."""
    authored = sa.exists().where(
        Occurrence.secret_id == Secret.id,
        sa.or_(Occurrence.author == user, Occurrence.author_email == user),
    )
    query = (
        sa.select(Secret)
        .options(selectinload(Secret.occurrences))
        .where(Secret.workspace == workspace, Secret.status == "open", authored)
        .order_by(Secret.risk_score.desc(), Secret.first_seen)
    )
    return list(session.scalars(query))


def counts_by_status(session: Session, *, workspace: str | None = None) -> dict[str, int]:
    """Every status with its number of secrets, zeros included."""
    query = sa.select(Secret.status, sa.func.count()).group_by(Secret.status)
    if workspace is not None:
        query = query.where(Secret.workspace == workspace)
    counts = dict.fromkeys(SECRET_STATUSES, 0)
    counts.update({status: count for status, count in session.execute(query)})
    return counts


def counts_by_provider(
    session: Session, *, workspace: str | None = None, status: str | None = None
) -> dict[str, int]:
    query = sa.select(Secret.provider, sa.func.count()).group_by(Secret.provider)
    if workspace is not None:
        query = query.where(Secret.workspace == workspace)
    if status is not None:
        query = query.where(Secret.status == status)
    rows = session.execute(query.order_by(sa.func.count().desc(), Secret.provider))
    return dict(rows.all())


def counts_by_source(
    session: Session, *, workspace: str | None = None, status: str | None = None
) -> dict[str, int]:
    """Number of distinct secrets seen in each source (a secret in two sources counts twice)."""
    query = (
        sa.select(Occurrence.source, sa.func.count(sa.distinct(Occurrence.secret_id)))
        .join(Secret, Secret.id == Occurrence.secret_id)
        .group_by(Occurrence.source)
    )
    if workspace is not None:
        query = query.where(Secret.workspace == workspace)
    if status is not None:
        query = query.where(Secret.status == status)
    return dict(session.execute(query.order_by(Occurrence.source)).all())


def set_status(
    session: Session,
    secret: Secret,
    status: str,
    *,
    by: str,
    now: datetime,
    reason: str | None = None,
    origin: str = "slack",
) -> Secret:
    """Change a secret's status, keeping who, when and why, and write it to the audit trail."""
    if status not in SECRET_STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(SECRET_STATUSES)}")
    previous = secret.status
    secret.status = status
    secret.status_by = by
    secret.status_at = now
    secret.status_reason = reason
    record_audit(
        session,
        workspace=secret.workspace,
        secret_id=secret.id,
        actor=by,
        action=f"status:{status}",
        origin=origin,
        detail={"from": previous, "to": status, "reason": reason or ""},
        now=now,
    )
    return secret


# --- audit --------------------------------------------------------------------------------------


def record_audit(
    session: Session,
    *,
    workspace: str,
    secret_id: int | None,
    actor: str,
    action: str,
    origin: str,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        workspace=workspace,
        secret_id=secret_id,
        actor=actor,
        action=action,
        origin=origin,
        detail=dict(detail or {}),
        at=now,
    )
    session.add(event)
    return event


def audit_trail(session: Session, secret_id: int) -> list[AuditEvent]:
    query = sa.select(AuditEvent).where(AuditEvent.secret_id == secret_id)
    return list(session.scalars(query.order_by(AuditEvent.at, AuditEvent.id)))


# --- suppressions -------------------------------------------------------------------------------


def add_suppression(
    session: Session,
    *,
    workspace: str,
    created_by: str,
    now: datetime,
    reason: str = "",
    fingerprint: str | None = None,
    pattern: str | None = None,
    origin: str = "slack",
) -> Suppression:
    """Mark a fingerprint, a value glob (`sk-test-*`) or a rule (`rule:<id>`) as not a secret."""
    if fingerprint is None and pattern is None:
        raise ValueError("a suppression needs a fingerprint or a pattern")
    suppression = Suppression(
        workspace=workspace,
        fingerprint=fingerprint,
        pattern=pattern,
        created_by=created_by,
        reason=reason,
        created_at=now,
    )
    session.add(suppression)
    secret = (
        find_secret(session, workspace=workspace, fingerprint=fingerprint)
        if fingerprint is not None
        else None
    )
    session.flush()
    record_audit(
        session,
        workspace=workspace,
        secret_id=secret.id if secret is not None else None,
        actor=created_by,
        action="suppress",
        origin=origin,
        detail={"suppression": suppression.id, "pattern": pattern or "", "reason": reason},
        now=now,
    )
    return suppression


@dataclass(frozen=True)
class Suppressions:
    """The suppressions of some workspaces, ready to test matches against in memory."""

    fingerprints: Mapping[tuple[str, str], Suppression]
    patterns: Sequence[tuple[str, re.Pattern[str] | None, str | None, Suppression]]

    def find(
        self, *, workspace: str, fingerprint: str, rule_id: str, value: str
    ) -> Suppression | None:
        found = self.fingerprints.get((workspace, fingerprint))
        if found is not None:
            return found
        for scope, regex, rule, suppression in self.patterns:
            if scope != workspace:
                continue
            if rule is not None and rule == rule_id:
                return suppression
            if regex is not None and regex.fullmatch(value):
                return suppression
        return None


def load_suppressions(session: Session, workspaces: Iterable[str]) -> Suppressions:
    rows = session.scalars(
        sa.select(Suppression).where(Suppression.workspace.in_(set(workspaces)))
    ).all()
    fingerprints: dict[tuple[str, str], Suppression] = {}
    patterns: list[tuple[str, re.Pattern[str] | None, str | None, Suppression]] = []
    for row in rows:
        if row.fingerprint is not None:
            fingerprints[(row.workspace, row.fingerprint)] = row
        if row.pattern is not None:
            if row.pattern.startswith("rule:"):
                patterns.append((row.workspace, None, row.pattern[5:], row))
            else:
                glob = re.compile(fnmatch.translate(row.pattern))
                patterns.append((row.workspace, glob, None, row))
    return Suppressions(fingerprints=fingerprints, patterns=patterns)


# --- the notification outbox --------------------------------------------------------------------


def pending_notifications(
    session: Session, *, now: datetime, limit: int = 100, workspace: str | None = None
) -> list[Notification]:
    """Notifications due for sending, oldest first."""
    query = sa.select(Notification).where(
        Notification.status == "pending", Notification.send_after <= now
    )
    if workspace is not None:
        query = query.where(Notification.workspace == workspace)
    return list(session.scalars(query.order_by(Notification.id).limit(limit)))


def claim_notification(
    session: Session,
    notification_id: int,
    *,
    now: datetime,
    lease: timedelta = timedelta(minutes=5),
) -> bool:
    """Take a due notification for sending; False if someone else has it or it is not due.

    The claim pushes `send_after` past the lease and counts the attempt, in one conditional
    UPDATE, so two senders (threads or replicas) never both get the row. Commit the claim before
    posting; if the sender dies, the row becomes due again when the lease runs out.
    """
    result = session.execute(
        sa.update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == "pending",
            Notification.send_after <= now,
        )
        .values(attempts=Notification.attempts + 1, send_after=now + lease)
        .execution_options(synchronize_session=False)
    )
    claimed: bool = result.rowcount == 1  # type: ignore[attr-defined]
    if claimed:
        notification = session.get(Notification, notification_id)
        if notification is not None:
            session.refresh(notification)
    return claimed


def mark_notification_sent(
    session: Session,
    notification_id: int,
    *,
    now: datetime,
    slack_channel: str | None = None,
    slack_ts: str | None = None,
    thread_ts: str | None = None,
) -> None:
    session.execute(
        sa.update(Notification)
        .where(Notification.id == notification_id)
        .values(
            status="sent",
            sent_at=now,
            last_error=None,
            slack_channel=slack_channel,
            slack_ts=slack_ts,
            thread_ts=thread_ts,
        )
        .execution_options(synchronize_session="fetch")
    )


def mark_notification_failed(
    session: Session,
    notification_id: int,
    *,
    error: str,
    now: datetime,
    retry_at: datetime | None = None,
) -> None:
    """Record a failed send: pending again at `retry_at`, or failed for good without one."""
    values: dict[str, Any] = {"last_error": redact(error)[:MAX_ERROR_CHARS]}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["send_after"] = retry_at
    session.execute(
        sa.update(Notification)
        .where(Notification.id == notification_id)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )


def notification_counts(session: Session) -> dict[str, int]:
    query = sa.select(Notification.status, sa.func.count()).group_by(Notification.status)
    counts = dict.fromkeys(NOTIFICATION_STATUSES, 0)
    counts.update(dict(session.execute(query).all()))
    return counts


def enqueue_notification(
    session: Session,
    *,
    workspace: str,
    secret_id: int,
    kind: str,
    recipient: str,
    dedupe_key: str,
    now: datetime,
    occurrence_id: int | None = None,
    send_after: datetime | None = None,
) -> bool:
    """Queue one message unless one with the same dedupe key exists; True if queued."""
    statement = insert_ignoring_conflicts(session, Notification, ["dedupe_key"]).values(
        workspace=workspace,
        secret_id=secret_id,
        occurrence_id=occurrence_id,
        kind=kind,
        recipient=recipient,
        dedupe_key=dedupe_key,
        status="pending",
        attempts=0,
        created_at=now,
        send_after=send_after or now,
    )
    return session.execute(statement.returning(Notification.id)).first() is not None


# --- Slack events -------------------------------------------------------------------------------


def mark_event_processed(
    session: Session, *, event_id: str, now: datetime, workspace: str = ""
) -> bool:
    """Remember a Slack event id; False if it was already seen (a retry)."""
    statement = insert_ignoring_conflicts(session, ProcessedEvent, ["event_id"]).values(
        event_id=event_id, workspace=workspace, received_at=now
    )
    return session.execute(statement.returning(ProcessedEvent.event_id)).first() is not None


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
