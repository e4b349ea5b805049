"""Initial schema: secrets, occurrences, the notification outbox, cursors, audit, digests,
suppressions and processed Slack events.

Written by hand and checked against the models (tests/store/test_migrations.py). Constraint
names follow bot.store.models.NAMING_CONVENTION so later migrations can alter them by name;
check constraint names are wrapped in op.f() because that convention would prefix them again.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _workspace() -> sa.Column[str]:
    return sa.Column("workspace", sa.String(32), server_default="", nullable=False)


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("preview", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("risk_score", sa.Integer(), server_default="0", nullable=False),
        sa.Column("risk_level", sa.String(16), server_default="low", nullable=False),
        sa.Column("risk_reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("status_by", sa.String(255), nullable=True),
        _time("status_at", nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        _time("first_seen", nullable=False),
        _time("last_seen", nullable=False),
        sa.Column("regressions", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'rotated', 'not_a_secret', 'accepted')",
            name=op.f("ck_secrets_status"),
        ),
        sa.CheckConstraint(
            "risk_level IN ('critical', 'high', 'medium', 'low')",
            name=op.f("ck_secrets_risk_level"),
        ),
        sa.CheckConstraint("risk_score BETWEEN 0 AND 100", name=op.f("ck_secrets_risk_score")),
        sa.PrimaryKeyConstraint("id", name="pk_secrets"),
        sa.UniqueConstraint("workspace", "fingerprint", name="uq_secrets_workspace_fingerprint"),
    )
    op.create_index("ix_secrets_workspace_status", "secrets", ["workspace", "status"])

    op.create_table(
        "occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(255), nullable=False),
        sa.Column("unit_name", sa.String(255), server_default="", nullable=False),
        sa.Column("item_id", sa.String(512), nullable=False),
        sa.Column("title", sa.String(512), server_default="", nullable=False),
        sa.Column("author", sa.String(255), nullable=True),
        sa.Column("author_email", sa.String(320), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        _time("posted_at", nullable=True),
        _time("detected_at", nullable=False),
        _time("removed_at", nullable=True),
        sa.Column("line", sa.Integer(), server_default="1", nullable=False),
        sa.Column("column", sa.Integer(), server_default="1", nullable=False),
        sa.Column("audience", sa.Integer(), nullable=True),
        sa.Column("is_public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_external", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_anonymous", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_history", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "source IN ('slack', 'confluence', 'email', 'file')", name=op.f("ck_occurrences_source")
        ),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"],
            name="fk_occurrences_secret_id_secrets", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_occurrences"),
        sa.UniqueConstraint(
            "secret_id", "source", "item_id", name="uq_occurrences_secret_id_source_item_id"
        ),
    )
    op.create_index(
        "ix_occurrences_workspace_source_item_id", "occurrences", ["workspace", "source", "item_id"]
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("recipient", sa.String(330), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("created_at", nullable=False),
        _time("send_after", nullable=False),
        _time("sent_at", nullable=True),
        sa.Column("slack_channel", sa.String(64), nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.CheckConstraint(
            "kind IN ('alert', 'security_alert', 'reminder', 'escalation', 'regression')",
            name=op.f("ck_notifications_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_notifications_status")
        ),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"],
            name="fk_notifications_secret_id_secrets", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["occurrence_id"], ["occurrences.id"],
            name="fk_notifications_occurrence_id_occurrences", ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
    )
    op.create_index("ix_notifications_status_send_after", "notifications", ["status", "send_after"])
    op.create_index("ix_notifications_secret_id", "notifications", ["secret_id"])

    op.create_table(
        "cursors",
        sa.Column("workspace", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        _time("updated_at", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("last_error_at", nullable=True),
        sa.PrimaryKeyConstraint("workspace", "source", "unit", name="pk_cursors"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("secret_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        _time("at", nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"],
            name="fk_audit_events_secret_id_secrets", ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_secret_id", "audit_events", ["secret_id"])

    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        _time("posted_at", nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_digests"),
        sa.UniqueConstraint(
            "workspace", "channel", "week_start", name="uq_digests_workspace_channel_week_start"
        ),
    )

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        _workspace(),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("pattern", sa.String(512), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        _time("created_at", nullable=False),
        sa.CheckConstraint(
            "fingerprint IS NOT NULL OR pattern IS NOT NULL",
            name=op.f("ck_suppressions_fingerprint_or_pattern"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
    )
    op.create_index(
        "ix_suppressions_workspace_fingerprint", "suppressions", ["workspace", "fingerprint"]
    )

    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(128), nullable=False),
        _workspace(),
        _time("received_at", nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_processed_events"),
    )


def downgrade() -> None:
    # Indexes go with their tables; children before parents for the foreign keys.
    for table in (
        "processed_events",
        "suppressions",
        "digests",
        "audit_events",
        "cursors",
        "notifications",
        "occurrences",
        "secrets",
    ):
        op.drop_table(table)
