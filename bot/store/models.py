"""The tables of LeakWatch, as SQLAlchemy 2.0 typed models.

Nothing here may help someone who steals the database: a secret is kept only as a keyed HMAC
fingerprint and a masked preview. Every table carries `workspace` (the Slack team id, "" for
sources outside a workspace). Times are stored in UTC and always read back timezone-aware.

Alembic alone creates these tables (migrations/versions/); tests/store checks that the models
and the migrations agree.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.store.slack_tables import add_slack_tables

SECRET_STATUSES: Final = ("open", "rotated", "not_a_secret", "accepted")
RISK_LEVELS: Final = ("critical", "high", "medium", "low")
NOTIFICATION_KINDS: Final = ("alert", "security_alert", "reminder", "escalation", "regression")
NOTIFICATION_STATUSES: Final = ("pending", "sent", "failed")
SOURCES: Final = ("slack", "confluence", "email", "file")

# Constraint names are fixed so that migrations can name what they alter on every database.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


ITEM_ID_LENGTH: Final = 512
UNIT_LENGTH: Final = 255
TITLE_LENGTH: Final = 512


def fit_identifier(value: str, limit: int) -> str:
    """`value` if it fits in `limit` characters, else a stable shortened form that still tells
    values apart (its start and a SHA-256 of the whole): used for item ids and unit ids, which
    must stay unique and the same from run to run (a deep file path, a long Message-ID)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[: limit - len(digest) - 1]}#{digest}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware on every database.

    SQLite keeps no zone, PostgreSQL keeps `timestamptz`; both come back as aware UTC datetimes,
    so comparisons between stored and computed times never mix naive and aware values.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
        list[str]: sa.JSON(),
    }


def _workspace() -> Mapped[str]:
    return mapped_column(sa.String(32), default="", server_default="")


class Secret(Base):
    """One credential, identified by its fingerprint; where it was seen lives in `occurrences`."""

    __tablename__ = "secrets"
    __table_args__ = (
        sa.UniqueConstraint("workspace", "fingerprint"),
        sa.Index(None, "workspace", "status"),
        sa.CheckConstraint(_in("status", SECRET_STATUSES), name="status"),
        sa.CheckConstraint(_in("risk_level", RISK_LEVELS), name="risk_level"),
        sa.CheckConstraint("risk_score BETWEEN 0 AND 100", name="risk_score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = _workspace()
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # HMAC-SHA256 hex
    rule_id: Mapped[str] = mapped_column(sa.String(64))
    provider: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(128))
    preview: Mapped[str] = mapped_column(sa.String(64))  # masked: "sk-proj-…9fQa"
    severity: Mapped[str] = mapped_column(sa.String(16))
    risk_score: Mapped[int] = mapped_column(default=0, server_default="0")
    risk_level: Mapped[str] = mapped_column(sa.String(16), default="low", server_default="low")
    risk_reasons: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(sa.String(16), default="open", server_default="open")
    status_by: Mapped[str | None] = mapped_column(sa.String(255))
    status_at: Mapped[datetime | None]
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    regressions: Mapped[int] = mapped_column(default=0, server_default="0")

    occurrences: Mapped[list[Occurrence]] = relationship(
        back_populates="secret",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Occurrence.id",
    )

    def __repr__(self) -> str:
        return f"<Secret {self.id} {self.rule_id} {self.preview} {self.status}>"


class Occurrence(Base):
    """One place a secret was seen: a message, a page version, a mail, a file."""

    __tablename__ = "occurrences"
    __table_args__ = (
        sa.UniqueConstraint("secret_id", "source", "item_id"),
        # Edits and deletions arrive by item: find its occurrences without scanning the table.
        sa.Index(None, "workspace", "source", "item_id"),
        sa.CheckConstraint(_in("source", SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_id: Mapped[int] = mapped_column(sa.ForeignKey("secrets.id", ondelete="CASCADE"))
    workspace: Mapped[str] = _workspace()
    source: Mapped[str] = mapped_column(sa.String(16))
    unit: Mapped[str] = mapped_column(sa.String(UNIT_LENGTH))  # channel, space key, mail folder
    unit_name: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    item_id: Mapped[str] = mapped_column(sa.String(ITEM_ID_LENGTH))
    title: Mapped[str] = mapped_column(sa.String(TITLE_LENGTH), default="", server_default="")
    author: Mapped[str | None] = mapped_column(sa.String(255))  # Slack user id or email address
    author_email: Mapped[str | None] = mapped_column(sa.String(320))
    permalink: Mapped[str | None] = mapped_column(sa.Text)
    posted_at: Mapped[datetime | None]
    detected_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]  # message deleted, page or mail edited clean
    line: Mapped[int] = mapped_column(default=1, server_default="1")
    column: Mapped[int] = mapped_column(default=1, server_default="1")
    audience: Mapped[int | None]
    is_public: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_external: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_anonymous: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_history: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    secret: Mapped[Secret] = relationship(back_populates="occurrences")

    def __repr__(self) -> str:
        return f"<Occurrence {self.id} {self.source}:{self.unit}:{self.item_id}>"


class Notification(Base):
    """The outbox: one row per message to send, written in the same transaction as the finding.

    `dedupe_key` is unique, so a retried event or a re-polled message cannot queue a second DM.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index(None, "status", "send_after"),
        sa.Index(None, "secret_id"),
        sa.CheckConstraint(_in("kind", NOTIFICATION_KINDS), name="kind"),
        sa.CheckConstraint(_in("status", NOTIFICATION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = _workspace()
    secret_id: Mapped[int] = mapped_column(sa.ForeignKey("secrets.id", ondelete="CASCADE"))
    occurrence_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("occurrences.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(sa.String(24))
    recipient: Mapped[str] = mapped_column(sa.String(330))  # "user:U123", "email:a@b.c", "security"
    dedupe_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(sa.String(64))
    slack_ts: Mapped[str | None] = mapped_column(sa.String(32))
    thread_ts: Mapped[str | None] = mapped_column(sa.String(32))

    secret: Mapped[Secret] = relationship()
    occurrence: Mapped[Occurrence | None] = relationship()

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.kind} {self.recipient} {self.status}>"


class Cursor(Base):
    """How far a connector has read one unit; advanced only with that unit's committed documents."""

    __tablename__ = "cursors"

    workspace: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default="")
    source: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    unit: Mapped[str] = mapped_column(sa.String(UNIT_LENGTH), primary_key=True)
    value: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)  # None after a clean read
    last_error_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Who did what to which finding, when, and from where (slack, cli, pipeline, scheduler)."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index(None, "secret_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = _workspace()
    secret_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("secrets.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    origin: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Digest(Base):
    """Which week's digest went to which channel; a row exists once the week is claimed."""

    __tablename__ = "digests"
    __table_args__ = (sa.UniqueConstraint("workspace", "channel", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = _workspace()
    channel: Mapped[str] = mapped_column(sa.String(64))
    week_start: Mapped[date]
    posted_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None] = mapped_column(sa.String(32))


class Suppression(Base):
    """A fingerprint or a pattern marked "not a secret": matching keys are stored, never alerted.

    `pattern` is a shell-style glob matched against the key's value while it is in memory
    (`sk-test-*`), or `rule:<rule id>` to silence a whole credential type.
    """

    __tablename__ = "suppressions"
    __table_args__ = (
        sa.CheckConstraint(
            "fingerprint IS NOT NULL OR pattern IS NOT NULL", name="fingerprint_or_pattern"
        ),
        sa.Index(None, "workspace", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = _workspace()
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    pattern: Mapped[str | None] = mapped_column(sa.String(512))
    created_by: Mapped[str] = mapped_column(sa.String(255))
    reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEvent(Base):
    """Slack event ids already handled: Slack retries an event it thinks was not acked."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    workspace: Mapped[str] = _workspace()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# slack_sdk's OAuth stores keep their rows in tables that our migrations create.
add_slack_tables(Base.metadata)
