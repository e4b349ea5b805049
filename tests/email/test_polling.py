"""Mail through the whole poll: Dovecot -> ImapSource -> poll_source -> pipeline -> store.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bot.detection.engine import Detector
from bot.detection.fingerprint import Fingerprinter
from bot.polling import poll_source
from bot.store.db import Database
from bot.store.models import Cursor, Notification, Occurrence
from connectors.email import ImapCursor, ImapSource
from tests.email.conftest import ImapSettingsFactory
from tests.email.dovecot import DovecotServer, append, create, delete
from tests.email.messages import fake_key, headers
from tests.email.proxy import CuttingProxy

pytestmark = pytest.mark.service


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def detector() -> Detector:
    return Detector.default(Fingerprinter(b"email-tests-fingerprint-key-0001"))


def mail(number: int, key: str | None, to: str = "ops@corp.example") -> bytes:
    body = f"mail number {number}\r\n" + (f"here you go: {key}\r\n" if key else "")
    raw = headers(f"mail {number}", f"p{number}") + "Content-Type: text/plain\r\n\r\n" + body
    return raw.replace("To: ops@corp.example", f"To: {to}").encode()


def occurrences(db: Database) -> list[Occurrence]:
    with db.session() as session:
        rows = list(session.scalars(sa.select(Occurrence).order_by(Occurrence.id)))
        session.expunge_all()
    return rows


def notifications(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        query = sa.select(Notification.kind, Notification.recipient).order_by(Notification.id)
        return [(kind, recipient) for kind, recipient in session.execute(query)]


def cursor_of(db: Database, unit: str) -> str | None:
    with db.session() as session:
        query = sa.select(Cursor.value).where(Cursor.source == "email", Cursor.unit == unit)
        return session.scalars(query).one_or_none()


def test_a_key_mailed_outside_becomes_one_finding_for_the_sender(
    db: Database,
    detector: Detector,
    mailbox: imaplib.IMAP4,
    imap_settings: ImapSettingsFactory,
) -> None:
    key = fake_key(31)
    for number in range(6):
        to = "vendor@partner.test, ops@corp.example" if number == 4 else "ops@corp.example"
        append(mailbox, "INBOX", mail(number, key if number == 4 else None, to=to))
    source = ImapSource(imap_settings(), company_domains=("corp.example",))
    with source:
        report = poll_source(db, source, detector)
    assert report.documents == 6 and report.findings == 1
    [found] = occurrences(db)
    assert (found.source, found.unit, found.item_id) == ("email", "INBOX", "<p4@corp.example>")
    assert found.author_email == "dana@corp.example"
    assert found.title == "mail 4"
    assert found.is_external and found.audience == 2
    assert found.permalink is not None and found.permalink.startswith("imap://")
    assert ("alert", "email:dana@corp.example") in notifications(db)
    stored = ImapCursor.parse(cursor_of(db, "INBOX"))
    assert stored is not None and stored.uid == 6


def test_recreated_folder_is_rescanned_without_a_second_alert(
    db: Database,
    detector: Detector,
    mailbox: imaplib.IMAP4,
    imap_settings: ImapSettingsFactory,
) -> None:
    create(mailbox, "Vendors")
    for number in range(3):
        append(mailbox, "Vendors", mail(number, fake_key(40 + number)))
    source = ImapSource(imap_settings(folders=("Vendors",)))
    with source:
        poll_source(db, source, detector)
        sent_before = notifications(db)
        first_cursor = cursor_of(db, "Vendors")
        delete(mailbox, "Vendors")
        create(mailbox, "Vendors")
        for number in range(4):
            append(mailbox, "Vendors", mail(number, fake_key(40 + number)))
        report = poll_source(db, source, detector)
    assert report.documents == 4  # the whole folder was read again
    assert report.findings == 1  # only the new mail's key is new
    assert len(occurrences(db)) == 4
    new_alerts = [n for n in notifications(db)[len(sent_before) :] if n[0] == "alert"]
    assert len(new_alerts) == 1  # the three keys seen before are not alerted again
    old, new = ImapCursor.parse(first_cursor), ImapCursor.parse(cursor_of(db, "Vendors"))
    assert old is not None and new is not None and old.uidvalidity != new.uidvalidity


def test_same_mail_in_two_folders_is_one_occurrence(
    db: Database,
    detector: Detector,
    mailbox: imaplib.IMAP4,
    imap_settings: ImapSettingsFactory,
) -> None:
    create(mailbox, "Archive")
    raw = mail(1, fake_key(50))
    append(mailbox, "INBOX", raw)
    append(mailbox, "Archive", raw)
    with ImapSource(imap_settings(folders=("INBOX", "Archive"))) as source:
        report = poll_source(db, source, detector)
    assert report.documents == 2
    assert len(occurrences(db)) == 1
    assert [kind for kind, _ in notifications(db)].count("alert") == 1


def test_a_dropped_connection_resumes_from_the_committed_cursor(
    db: Database,
    detector: Detector,
    dovecot: DovecotServer,
    mailbox: imaplib.IMAP4,
    imap_settings: ImapSettingsFactory,
) -> None:
    for number in range(40):
        append(mailbox, "INBOX", mail(number, fake_key(100 + number)))
    proxy = CuttingProxy(dovecot.host, dovecot.port, cut_after=14000)
    try:
        source = ImapSource(imap_settings(port=proxy.port), batch_size=5)
        first = poll_source(db, source, detector, batch_size=5)
        assert first.stopped is not None and "connection lost" in first.stopped
        committed = ImapCursor.parse(cursor_of(db, "INBOX"))
        assert committed is not None and 0 < committed.uid < 40
        assert len(occurrences(db)) == committed.uid
        proxy.cut_after = None
        second = poll_source(db, source, detector, batch_size=5)
        source.close()
    finally:
        proxy.close()
    assert second.stopped is None
    assert len(occurrences(db)) == 40  # every key once: nothing lost, nothing twice
    assert [kind for kind, _ in notifications(db)].count("alert") == 40
    final = ImapCursor.parse(cursor_of(db, "INBOX"))
    assert final is not None and final.uid == 40
