"""Store queries on SQLite and PostgreSQL: cursors, findings, the outbox, audit, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.pipeline import ingest
from bot.store import queries
from bot.store.db import Database
from bot.store.models import Cursor, Notification, Occurrence, Secret
from connectors.base import Document, Exposure
from tests.pipeline.keys import KeyDetector, key

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _doc(item: str, text: str, author: str = "U1", source: str = "slack") -> Document:
    return Document(source=source, unit="C1", item_id=item, text=text, workspace="T1",  # type: ignore[arg-type]
                    author=author, exposure=Exposure(audience=40, is_public=True))  # fmt: skip


def test_cursor_value_error_and_recovery(db: Database) -> None:
    where = {"workspace": "T1", "source": "slack", "unit": "C1"}
    with db.session() as s:
        assert queries.get_cursor_value(s, **where) is None
        queries.set_cursor(s, **where, value="1700000000.000100", now=NOW)
    with db.session() as s:
        queries.record_unit_error(s, **where, error="not_in_channel", now=NOW + timedelta(1))
    with db.session() as s:
        cursor = queries.get_cursor(s, **where)
        assert cursor is not None
        assert (cursor.value, cursor.last_error) == ("1700000000.000100", "not_in_channel")
        assert cursor.last_error_at == NOW + timedelta(1)
        queries.set_cursor(s, **where, value="1700000001.000000", now=NOW + timedelta(2))
    with db.session() as s:
        [cursor] = queries.list_cursors(s, source="slack")
        assert (cursor.value, cursor.last_error, cursor.updated_at) == (
            "1700000001.000000", None, NOW + timedelta(2),
        )  # fmt: skip


def test_times_come_back_aware_and_naive_times_are_refused(db: Database) -> None:
    berlin = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    with db.session() as s:
        s.add(Cursor(workspace="", source="email", unit="INBOX", updated_at=berlin))
    with db.session() as s:
        cursor = queries.get_cursor(s, workspace="", source="email", unit="INBOX")
        assert cursor is not None and cursor.updated_at == berlin
        assert cursor.updated_at.utcoffset() == timedelta(0)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), db.session() as s:
        s.add(Cursor(workspace="", source="email", unit="Sent", updated_at=datetime(2026, 1, 1)))


def test_a_failed_unit_of_work_leaves_nothing_behind(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        queries.set_cursor(s, workspace="T1", source="slack", unit="C9", value="5", now=NOW)
        s.flush()
        raise RuntimeError("crash before commit")
    with db.session() as s:
        assert queries.get_cursor(s, workspace="T1", source="slack", unit="C9") is None


def test_the_outbox_in_order_claimed_once_then_sent_or_failed(db: Database) -> None:
    with db.session() as s:
        ingest(s, [_doc(f"C1:{n}", key(n)) for n in range(3)], KeyDetector(), now=NOW)
        secret_id = s.scalars(sa.select(Secret.id)).first()
        assert secret_id is not None
        later = queries.enqueue_notification(
            s, workspace="T1", secret_id=secret_id, kind="reminder", recipient="user:U1",
            dedupe_key="reminder:1:1", now=NOW, send_after=NOW + timedelta(days=1),
        )  # fmt: skip
        again = queries.enqueue_notification(
            s, workspace="T1", secret_id=secret_id, kind="reminder", recipient="user:U1",
            dedupe_key="reminder:1:1", now=NOW,
        )  # fmt: skip
        assert (later, again) == (True, False)
    with db.session() as s:
        due = queries.pending_notifications(s, now=NOW)
        assert [n.kind for n in due] == ["alert", "security_alert"] * 3
        assert [n.id for n in due] == sorted(n.id for n in due)
        first = due[0].id
        assert queries.claim_notification(s, first, now=NOW, lease=timedelta(minutes=5))
        assert not queries.claim_notification(s, first, now=NOW)  # already taken
    with db.session() as s:
        assert first not in [n.id for n in queries.pending_notifications(s, now=NOW)]
        # the sender died: after the lease the row is due again, attempt counted
        assert queries.claim_notification(s, first, now=NOW + timedelta(minutes=6))
        queries.mark_notification_sent(s, first, now=NOW, slack_channel="D1", slack_ts="1.2")
        second = due[1].id
        queries.mark_notification_failed(s, second, error="ratelimited", now=NOW,
                                         retry_at=NOW + timedelta(minutes=1))  # fmt: skip
        third = due[2].id
        queries.mark_notification_failed(s, third, error="user_not_found", now=NOW)
    with db.session() as s:
        rows = {n.id: n for n in s.scalars(sa.select(Notification))}
        sent = rows[first]
        assert (sent.status, sent.attempts, sent.slack_ts) == ("sent", 2, "1.2")
        assert (rows[second].status, rows[second].last_error) == ("pending", "ratelimited")
        assert rows[third].status == "failed"
        assert queries.notification_counts(s) == {"pending": 5, "sent": 1, "failed": 1}


def test_findings_for_a_user_and_counts(db: Database) -> None:
    with db.session() as s:
        ingest(s, [
            _doc("C1:1", key(1), author="U1"),
            _doc("C1:2", key(2, "high"), author="U2"),
            _doc("m1", key(2, "high"), author="ann@example.com", source="email"),
            _doc("C1:3", key(3, "low"), author="U1"),
        ], KeyDetector(), now=NOW)  # fmt: skip
        rotated = queries.find_secret(
            s, workspace="T1", fingerprint=KeyDetector().scan(key(3, "low"))[0].fingerprint
        )
        assert rotated is not None
        queries.set_status(s, rotated, "rotated", by="U1", now=NOW, reason="new key")
    with db.session() as s:
        mine = queries.open_findings_for_user(s, workspace="T1", user="U1")
        assert [f.provider for f in mine] == ["OpenAI"]
        assert [f.provider for f in queries.open_findings_for_user(
            s, workspace="T1", user="ann@example.com")] == ["GitHub"]  # fmt: skip
        assert queries.counts_by_status(s) == {
            "open": 2, "rotated": 1, "not_a_secret": 0, "accepted": 0,
        }  # fmt: skip
        assert queries.counts_by_provider(s, status="open") == {"GitHub": 1, "OpenAI": 1}
        assert queries.counts_by_source(s) == {"email": 1, "slack": 3}
        assert [f.rule_id for f in queries.list_findings(s, min_level="high")] == [
            "openai_project_key", "github_classic_pat",
        ]  # fmt: skip
        trail = queries.audit_trail(s, rotated.id)
        assert [(e.action, e.actor, e.detail.get("reason")) for e in trail] == [
            ("detected", "leakwatch", None), ("status:rotated", "U1", "new key"),
        ]  # fmt: skip
        with pytest.raises(ValueError, match="unknown status"):
            queries.set_status(s, rotated, "fixed", by="U1", now=NOW)


def test_deleting_a_secret_takes_its_occurrences_and_outbox_rows(db: Database) -> None:
    with db.session() as s:
        ingest(s, [_doc("C1:1", key(1))], KeyDetector(), now=NOW)
    with db.session() as s:
        s.execute(sa.delete(Secret))  # by SQL: the database's foreign keys must cascade
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Occurrence)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


def test_a_slack_event_is_processed_once(db: Database) -> None:
    with db.session() as s:
        assert queries.mark_event_processed(s, event_id="Ev01", workspace="T1", now=NOW)
    with db.session() as s:
        assert not queries.mark_event_processed(s, event_id="Ev01", workspace="T1", now=NOW)
