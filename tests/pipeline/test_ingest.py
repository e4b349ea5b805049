"""The pipeline: what is stored and who is told, for new, repeated, edited and rotated keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.pipeline import ingest, mark_item_removed
from bot.store import queries
from bot.store.db import Database
from bot.store.models import AuditEvent, Notification, Occurrence, Secret
from connectors.base import Document, Exposure
from tests.pipeline.keys import KeyDetector, key

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PUBLIC = Exposure(audience=1240, is_public=True)
DM = Exposure(audience=2)


def slack(item: str, text: str, *, author: str | None = "U100", exposure: Exposure = PUBLIC,
          channel: str = "C1") -> Document:  # fmt: skip
    return Document(
        source="slack", unit=channel, unit_name="#general", item_id=f"{channel}:{item}",
        text=text, workspace="T1", author=author, exposure=exposure,
        permalink=f"https://example.slack.com/archives/{channel}/p{item}",
        posted_at=NOW - timedelta(hours=1),
    )  # fmt: skip


def notifications(db: Database) -> list[tuple[str, str, str]]:
    with db.session() as s:
        rows = s.scalars(sa.select(Notification).order_by(Notification.id))
        return [(n.kind, n.recipient, n.dedupe_key.split(":")[0]) for n in rows]


def snapshot(db: Database) -> dict[str, list[Any]]:
    with db.session() as s:
        return {
            table: [tuple(row) for row in s.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in ("secrets", "occurrences", "notifications", "audit_events")
        }


def test_a_new_key_is_stored_masked_and_its_author_and_security_are_told(
    db: Database, detector: KeyDetector
) -> None:
    raw = key(1)
    with db.session() as s:
        result = ingest(s, [slack("1.0", f"here you go {raw}"), slack("2.0", "thanks!")],
                        detector, now=NOW)  # fmt: skip
    assert (result.documents, result.matches, result.new_secrets, result.new_occurrences) == (
        2, 1, 1, 1,
    )  # fmt: skip
    assert result.notifications == 2
    with db.session() as s:
        secret = s.scalars(sa.select(Secret)).one()
        assert secret.preview == detector.scan(raw)[0].preview
        assert raw not in repr(secret.__dict__)
        assert (secret.status, secret.risk_level) == ("open", "critical")
        assert "posted in a public channel with 1,240 members" in secret.risk_reasons
        occurrence = s.scalars(sa.select(Occurrence)).one()
        assert (occurrence.item_id, occurrence.author, occurrence.line, occurrence.column) == (
            "C1:1.0", "U100", 1, 13,
        )  # fmt: skip
        assert occurrence.permalink is not None and occurrence.is_public
    assert notifications(db) == [("alert", "user:U100", "alert"),
                                 ("security_alert", "security", "security_alert")]  # fmt: skip


def test_ingesting_the_same_documents_again_changes_nothing(
    db: Database, detector: KeyDetector
) -> None:
    documents = [slack(f"{n}.0", f"key {key(n)}") for n in range(3)] + [slack("9.0", "hi")]
    with db.session() as s:
        ingest(s, documents, detector, now=NOW)
    before = snapshot(db)
    with db.session() as s:
        again = ingest(s, documents, detector, now=NOW + timedelta(minutes=5))
    assert (again.new_secrets, again.new_occurrences, again.notifications, again.removed) == (
        0, 0, 0, 0,
    )  # fmt: skip
    assert again.matches == 3
    assert snapshot(db) == before


def test_one_key_in_three_places_is_one_finding_with_three_occurrences(
    db: Database, detector: KeyDetector
) -> None:
    raw = key("shared", "medium")
    documents = [
        slack("1.0", raw, exposure=DM),
        Document(source="email", unit="INBOX", item_id="<m1@example.com>", text=f"key: {raw}",
                 author="Ann <ann@example.com>", author_email="ann@example.com"),
        Document(source="confluence", unit="OPS", item_id="page:42:v3", text=raw,
                 author="5b10ac8d82e05b22cc7d4ef5"),
    ]  # fmt: skip
    with db.session() as s:
        result = ingest(s, documents, detector, now=NOW, workspace="T1")
    assert (result.new_secrets, result.new_occurrences) == (1, 3)
    with db.session() as s:
        [finding] = queries.list_findings(s)
        assert sorted(o.source for o in finding.occurrences) == ["confluence", "email", "slack"]
    assert notifications(db) == [
        ("alert", "user:U100", "alert"),
        ("alert", "email:ann@example.com", "alert"),
        ("alert", "security", "alert"),
    ]


def test_risk_is_that_of_the_most_exposed_occurrence(db: Database, detector: KeyDetector) -> None:
    raw = key(7)
    with db.session() as s:
        ingest(s, [slack("1.0", raw, exposure=DM)], detector, now=NOW)
    with db.session() as s:
        secret = s.scalars(sa.select(Secret)).one()
        assert secret.risk_level == "medium"
        assert "in a direct message" in secret.risk_reasons
        low_score = secret.risk_score
    with db.session() as s:
        ingest(s, [slack("2.0", raw, channel="C2")], detector, now=NOW)
        ingest(s, [slack("3.0", raw, exposure=DM, channel="D3")], detector, now=NOW)
    with db.session() as s:
        secret = s.scalars(sa.select(Secret)).one()
        assert secret.risk_score > low_score
        assert secret.risk_level == "critical"
        assert "posted in a public channel with 1,240 members" in secret.risk_reasons
    kinds = [kind for kind, _, _ in notifications(db)]
    assert kinds.count("alert") == 3
    assert kinds.count("security_alert") == 1  # once, when the risk became critical


def test_an_edit_that_removes_the_key_marks_the_occurrence_removed(
    db: Database, detector: KeyDetector
) -> None:
    raw = key(3)
    with db.session() as s:
        ingest(s, [slack("1.0", f"oops {raw}")], detector, now=NOW)
    with db.session() as s:
        result = ingest(s, [slack("1.0", "oops (removed)")], detector, now=NOW + timedelta(1))
    assert result.removed == 1
    with db.session() as s:
        assert s.scalars(sa.select(Occurrence)).one().removed_at == NOW + timedelta(1)
    with db.session() as s:  # put back by a later edit: live again, nobody told twice
        result = ingest(s, [slack("1.0", f"oops {raw}")], detector, now=NOW + timedelta(2))
    assert (result.new_occurrences, result.notifications) == (0, 0)
    with db.session() as s:
        assert s.scalars(sa.select(Occurrence)).one().removed_at is None


def test_two_versions_of_one_item_in_one_call_are_taken_in_order(
    db: Database, detector: KeyDetector
) -> None:
    with db.session() as s:
        result = ingest(s, [slack("1.0", key(4)), slack("1.0", "edited clean")], detector, now=NOW)
    assert (result.new_occurrences, result.removed) == (1, 1)
    assert [kind for kind, _, _ in notifications(db)] == ["alert", "security_alert"]


def test_a_deleted_item_marks_its_occurrences_removed(db: Database, detector: KeyDetector) -> None:
    with db.session() as s:
        ingest(s, [slack("1.0", f"{key(5)} {key(6, 'low')}")], detector, now=NOW)
    with db.session() as s:
        removed = mark_item_removed(s, source="slack", workspace="T1", item_id="C1:1.0", now=NOW)
        again = mark_item_removed(s, source="slack", workspace="T1", item_id="C1:1.0", now=NOW)
    assert (removed, again) == (2, 0)
    with db.session() as s:
        assert all(o.removed_at == NOW for o in s.scalars(sa.select(Occurrence)))


def test_a_rotated_key_seen_in_a_new_place_is_a_regression(
    db: Database, detector: KeyDetector
) -> None:
    raw = key(8)
    with db.session() as s:
        ingest(s, [slack("1.0", raw)], detector, now=NOW)
    with db.session() as s:
        secret = s.scalars(sa.select(Secret)).one()
        queries.set_status(s, secret, "rotated", by="U100", now=NOW, reason="new key issued")
    with db.session() as s:  # the old message, polled again: still rotated, no alert
        result = ingest(s, [slack("1.0", raw)], detector, now=NOW + timedelta(1))
    assert (result.regressions, result.notifications) == (0, 0)
    with db.session() as s:
        result = ingest(s, [slack("5.0", f"try {raw}", author="U200")], detector,
                        now=NOW + timedelta(2))  # fmt: skip
    assert (result.regressions, result.new_secrets, result.notifications) == (1, 0, 2)
    with db.session() as s:
        secret = s.scalars(sa.select(Secret)).one()
        assert (secret.status, secret.regressions) == ("open", 1)
        actions = [e.action for e in s.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
        assert actions == ["detected", "status:rotated", "regression"]
    assert notifications(db)[-2:] == [("regression", "user:U200", "alert"),
                                      ("security_alert", "security", "security_alert")]  # fmt: skip


def test_suppressed_keys_are_recorded_but_nobody_is_told(
    db: Database, detector: KeyDetector
) -> None:
    by_fingerprint, by_glob, by_rule = key(10), key(11, "high"), key(12, "low")
    with db.session() as s:
        fingerprint = detector.scan(by_fingerprint)[0].fingerprint
        queries.add_suppression(s, workspace="T1", created_by="U9", now=NOW,
                                fingerprint=fingerprint, reason="sample key in docs")
        queries.add_suppression(s, workspace="T1", created_by="U9", now=NOW,
                                pattern=by_glob[:14] + "*")
        queries.add_suppression(s, workspace="T1", created_by="U9", now=NOW,
                                pattern="rule:stripe_test_secret_key")  # fmt: skip
    with db.session() as s:
        result = ingest(
            s, [slack("1.0", by_fingerprint), slack("2.0", by_glob), slack("3.0", by_rule),
                slack("4.0", key(13, "high"))], detector, now=NOW,
        )  # fmt: skip
    assert (result.new_secrets, result.suppressed) == (4, 3)
    with db.session() as s:
        statuses = queries.counts_by_status(s)
    assert (statuses["not_a_secret"], statuses["open"]) == (3, 1)
    assert [recipient for _, recipient, _ in notifications(db)] == ["user:U100", "security"]


def test_a_key_marked_not_a_secret_is_not_alerted_again(
    db: Database, detector: KeyDetector
) -> None:
    raw = key(14)
    with db.session() as s:
        ingest(s, [slack("1.0", raw)], detector, now=NOW)
        secret = s.scalars(sa.select(Secret)).one()
        queries.set_status(s, secret, "not_a_secret", by="U100", now=NOW)
    with db.session() as s:
        result = ingest(s, [slack("2.0", raw)], detector, now=NOW)
    assert (result.new_occurrences, result.suppressed, result.notifications) == (1, 1, 0)


def test_work_per_batch_is_a_few_queries_not_one_per_document(
    db: Database, detector: KeyDetector
) -> None:
    statements: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))  # fmt: skip
    documents = [
        slack(f"{n}.0", f"key {key(n)}" if n % 100 == 0 else f"message {n}") for n in range(5000)
    ]
    with db.session() as s:
        result = ingest(s, documents, detector, now=NOW)
    assert (result.documents, result.new_secrets, result.notifications) == (5000, 50, 100)
    assert detector.scanned == 5000
    assert len(statements) < 60, f"{len(statements)} statements for 5,000 documents"


def test_without_an_author_a_high_risk_key_goes_to_security_once(
    db: Database, detector: KeyDetector
) -> None:
    page = Document(source="confluence", unit="OPS", item_id="page:7:v1", text=key(20),
                    exposure=Exposure(is_public=True, is_anonymous=True))  # fmt: skip
    with db.session() as s:
        ingest(s, [page], detector, now=NOW)
    assert notifications(db) == [("security_alert", "security", "security_alert")]


def test_two_writers_ingesting_the_same_messages_alert_once(db: Database) -> None:
    import threading

    documents = [slack(f"{n}.0", f"key {key(n)} and {key(n + 100, 'high')}") for n in range(20)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with db.session() as s:
                barrier.wait(timeout=10)
                ingest(s, documents, KeyDetector(), now=NOW)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Secret)) == 40
        assert s.scalar(sa.select(sa.func.count()).select_from(Occurrence)) == 40
        kinds = s.scalars(sa.select(Notification.kind)).all()
    assert kinds.count("alert") == 40 and kinds.count("security_alert") == 40


def test_one_new_key_in_several_messages_of_one_batch(db: Database, detector: KeyDetector) -> None:
    raw = key(30)
    documents = [slack(f"{n}.0", f"{raw} {raw}", author=f"U{n}") for n in range(3)]
    with db.session() as s:
        result = ingest(s, documents, detector, now=NOW)
    assert (result.matches, result.new_secrets, result.new_occurrences) == (6, 1, 3)
    assert notifications(db) == [
        ("alert", "user:U0", "alert"),
        ("security_alert", "security", "security_alert"),
        ("alert", "user:U1", "alert"),
        ("alert", "user:U2", "alert"),
    ]


def test_a_naive_time_is_refused(db: Database, detector: KeyDetector) -> None:
    with db.session() as s, pytest.raises(ValueError, match="aware"):
        ingest(s, [slack("1.0", "hello")], detector, now=datetime(2026, 1, 1))


def test_long_ids_and_names_are_stored_and_still_tell_items_apart(
    db: Database, detector: KeyDetector
) -> None:
    deep = "/".join(["very-long-directory-name"] * 40)  # a path of 999 characters
    documents = [
        Document(source="file", unit=deep, unit_name=deep, item_id=f"{deep}/{name}",
                 title=deep + name, text=key(40 + n), author="x" * 400)
        for n, name in enumerate(("a.env", "b.env"))
    ]  # fmt: skip
    with db.session() as s:
        first = ingest(s, documents, detector, now=NOW)
    with db.session() as s:
        again = ingest(s, documents, detector, now=NOW)
        removed = mark_item_removed(s, source="file", workspace="", item_id=f"{deep}/a.env",
                                    now=NOW)  # fmt: skip
    assert (first.new_occurrences, again.new_occurrences, removed) == (2, 0, 1)
    with db.session() as s:
        items = s.scalars(sa.select(Occurrence.item_id).order_by(Occurrence.id)).all()
    assert len(set(items)) == 2 and all(len(item) <= 512 for item in items)
    assert items[0].startswith("very-long-directory-name/")
