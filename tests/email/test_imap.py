"""ImapSource against a real Dovecot: backfill, incremental polls, UIDVALIDITY resets, dropped
connections, TLS, and a mailbox left exactly as it was."""

from __future__ import annotations

import imaplib
import ssl

import pytest

from connectors.base import (
    Document,
    FatalSourceError,
    SourceAuthError,
    TransientSourceError,
    Unit,
    UnitError,
)
from connectors.email import ImapCursor, ImapSource
from tests.email.conftest import ImapSettingsFactory
from tests.email.dovecot import Account, DovecotServer, append, create, delete, flags_of
from tests.email.messages import CASES, fake_key, headers
from tests.email.proxy import CuttingProxy

pytestmark = pytest.mark.service


def mail(number: int, key: str | None = None, to: str = "ops@corp.example") -> bytes:
    body = f"mail number {number}\r\n" + (f"key: {key}\r\n" if key else "")
    raw = headers(f"mail {number}", f"m{number}") + "Content-Type: text/plain\r\n\r\n" + body
    return raw.replace("To: ops@corp.example", f"To: {to}").encode()


def poll(source: ImapSource, folder: str, cursor: str | None) -> tuple[list[Document], str | None]:
    """What a poll job does: read the folder, keep the last cursor handed out."""
    documents = []
    for document, next_cursor in source.documents(Unit(folder, folder), cursor):
        documents.append(document)
        cursor = next_cursor
    return documents, cursor


def test_backfill_reads_every_folder_in_batches(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    create(mailbox, "Projects")
    key = fake_key(21)
    uids = [append(mailbox, "INBOX", mail(n, key if n == 17 else None)) for n in range(25)]
    for n in range(25, 30):
        append(mailbox, "Projects", mail(n))
    settings = imap_settings(folders=("INBOX", "Projects"))
    with ImapSource(settings, company_domains=("corp.example",), batch_size=7) as source:
        assert [unit.id for unit in source.units()] == ["INBOX", "Projects"]
        inbox, inbox_cursor = poll(source, "INBOX", None)
        projects, _ = poll(source, "Projects", None)
    assert [d.title for d in inbox] == [f"mail {n}" for n in range(25)]
    assert [d.title for d in projects] == [f"mail {n}" for n in range(25, 30)]
    assert {d.unit for d in inbox} == {"INBOX"} and {d.unit for d in projects} == {"Projects"}
    assert [d.item_id for d in inbox if key in d.text] == ["<m17@corp.example>"]
    parsed = ImapCursor.parse(inbox_cursor)
    assert parsed is not None and parsed.uid == uids[-1]
    first = inbox[0]
    assert first.author == "dana@corp.example"
    assert first.exposure.audience == 1 and not first.exposure.is_external
    assert first.permalink is not None and f";UID={uids[0]}" in first.permalink


def test_incremental_poll_reads_only_new_mail(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    for n in range(3):
        append(mailbox, "INBOX", mail(n))
    with ImapSource(imap_settings()) as source:
        first, cursor = poll(source, "INBOX", None)
        assert len(first) == 3
        nothing, same = poll(source, "INBOX", cursor)
        assert nothing == [] and same == cursor
        for n in range(3, 5):
            append(mailbox, "INBOX", mail(n, to="x@vendor.test"))
        new, cursor = poll(source, "INBOX", cursor)
    assert [d.title for d in new] == ["mail 3", "mail 4"]


def test_a_poll_after_the_newest_mail_was_deleted_reads_nothing(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    # UIDNEXT is now above the cursor, but "UID SEARCH UID n:*" answers with the highest UID,
    # which was read already: it must not come back as new mail.
    for n in range(3):
        append(mailbox, "INBOX", mail(n))
    with ImapSource(imap_settings()) as source:
        _, cursor = poll(source, "INBOX", None)
        extra = append(mailbox, "INBOX", mail(3))
        mailbox.select("INBOX")
        mailbox.uid("STORE", str(extra), "+FLAGS.SILENT", r"(\Deleted)")
        mailbox.expunge()
        later = ImapCursor.parse(cursor)
        assert later is not None
        documents, _ = poll(source, "INBOX", f"{later.uidvalidity}:{later.uid}")
    assert documents == []


def test_changed_uidvalidity_rescans_with_the_same_item_ids(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    create(mailbox, "Vendors")
    for n in range(4):
        append(mailbox, "Vendors", mail(n, fake_key(n)))
    with ImapSource(imap_settings(folders=("Vendors",))) as source:
        before, cursor = poll(source, "Vendors", None)
        # The folder is deleted and recreated (a server rebuild does the same): new UIDVALIDITY.
        delete(mailbox, "Vendors")
        create(mailbox, "Vendors")
        for n in range(5):
            append(mailbox, "Vendors", mail(n, fake_key(n)))
        after, new_cursor = poll(source, "Vendors", cursor)
    old, new = ImapCursor.parse(cursor), ImapCursor.parse(new_cursor)
    assert old is not None and new is not None and old.uidvalidity != new.uidvalidity
    assert len(after) == 5  # the whole folder again, although old UIDs 1-4 were "read"
    assert [d.item_id for d in after[:4]] == [d.item_id for d in before]
    assert [d.permalink for d in after[:4]] != [d.permalink for d in before]


def test_dropped_connection_mid_fetch_is_transient_and_the_next_poll_resumes(
    dovecot: DovecotServer, mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    for n in range(30):
        append(mailbox, "INBOX", mail(n, fake_key(n)))
    proxy = CuttingProxy(dovecot.host, dovecot.port, cut_after=9000)  # within the 2nd batch
    try:
        source = ImapSource(imap_settings(port=proxy.port), batch_size=5)
        committed: str | None = None
        read: list[str] = []
        with pytest.raises(TransientSourceError, match="connection lost"):
            for document, cursor in source.documents(Unit("INBOX"), None):
                read.append(document.title)
                committed = cursor
        assert 0 < len(read) < 30
        proxy.cut_after = None
        rest, _ = poll(source, "INBOX", committed)  # reconnects by itself
        source.close()
    finally:
        proxy.close()
    assert read + [d.title for d in rest] == [f"mail {n}" for n in range(30)]
    assert proxy.connections == 2


def test_reading_leaves_mail_unread_and_the_mailbox_unchanged(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory, tls_context: ssl.SSLContext
) -> None:
    uids = [append(mailbox, "INBOX", case.build(fake_key(1))) for case in CASES[:5]]
    mailbox.select("INBOX", readonly=True)
    status_before = mailbox.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    with ImapSource(imap_settings(security="ssl"), ssl_context=tls_context) as source:
        documents, _ = poll(source, "INBOX", None)
    assert len(documents) == 5
    for uid in uids:
        assert "\\Seen" not in flags_of(mailbox, "INBOX", uid)
    assert mailbox.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)") == status_before


@pytest.fixture
def tls_context(dovecot: DovecotServer) -> ssl.SSLContext:
    return dovecot.tls_context()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_and_starttls(
    security: str,
    mailbox: imaplib.IMAP4,
    imap_settings: ImapSettingsFactory,
    tls_context: ssl.SSLContext,
) -> None:
    append(mailbox, "INBOX", mail(1))
    with ImapSource(imap_settings(security=security), ssl_context=tls_context) as source:
        documents, _ = poll(source, "INBOX", None)
    assert [d.title for d in documents] == ["mail 1"]


def test_an_untrusted_certificate_is_refused(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    source = ImapSource(imap_settings(security="ssl"), ssl_context=ssl.create_default_context())
    with pytest.raises(FatalSourceError, match="certificate"):
        poll(source, "INBOX", None)


def test_plain_is_refused_off_loopback_unless_allowed(imap_settings: ImapSettingsFactory) -> None:
    source = ImapSource(imap_settings(host="imap.corp.example"))
    with pytest.raises(FatalSourceError, match="IMAP_ALLOW_PLAIN"):
        poll(source, "INBOX", None)


def test_wrong_password_names_the_settings_and_not_the_password(
    imap_settings: ImapSettingsFactory,
) -> None:
    wrong = "not-the-password-" + fake_key(9)[-8:]
    source = ImapSource(imap_settings(password=wrong))
    with pytest.raises(SourceAuthError) as raised:
        poll(source, "INBOX", None)
    assert "IMAP_USER" in str(raised.value) and "IMAP_PASSWORD" in str(raised.value)
    assert wrong not in str(raised.value)


def test_a_missing_folder_is_a_unit_error_and_others_still_read(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    append(mailbox, "INBOX", mail(1))
    with ImapSource(imap_settings(folders=("Gone", "INBOX"))) as source:
        with pytest.raises(UnitError) as raised:
            poll(source, "Gone", None)
        assert raised.value.unit == "Gone"
        documents, _ = poll(source, "INBOX", None)
    assert len(documents) == 1


def test_star_reads_every_folder_including_non_ascii_names(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    from connectors.email import encode_mutf7

    create(mailbox, encode_mutf7("Entwürfe"))
    create(mailbox, "Team Notes")
    create(mailbox, "Projects.Alpha")  # "Projects" is listed too, as \Noselect
    with ImapSource(imap_settings(folders=("*",))) as source:
        folders = sorted(unit.id for unit in source.units())
        assert folders == ["Entwürfe", "INBOX", "Projects.Alpha", "Team Notes"]
        append(mailbox, encode_mutf7("Entwürfe"), mail(7))
        append(mailbox, "Team Notes", mail(8))
        drafts, _ = poll(source, "Entwürfe", None)
        notes, _ = poll(source, "Team Notes", None)
    assert [d.title for d in drafts] == ["mail 7"] and drafts[0].unit == "Entwürfe"
    assert [d.title for d in notes] == ["mail 8"]


def test_a_malformed_mail_is_recorded_and_skipped(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    append(mailbox, "INBOX", mail(1))
    bad = append(mailbox, "INBOX", b"\x00\x01 no headers here at all\r\n")
    append(mailbox, "INBOX", mail(3))
    with ImapSource(imap_settings()) as source:
        documents, _ = poll(source, "INBOX", None)
        assert [d.title for d in documents] == ["mail 1", "mail 3"]
        assert [(p.unit, p.item) for p in source.problems] == [("INBOX", f"uid {bad}")]


def test_an_empty_inbox_yields_nothing(imap_settings: ImapSettingsFactory) -> None:
    # A fresh account whose INBOX was never opened: EXAMINE must not fail or create anything.
    with ImapSource(imap_settings()) as source:
        documents, cursor = poll(source, "INBOX", None)
    assert documents == [] and cursor is None


def test_a_kept_connection_closed_while_idle_is_reopened(
    dovecot: DovecotServer, mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    append(mailbox, "INBOX", mail(1))
    proxy = CuttingProxy(dovecot.host, dovecot.port)
    try:
        with ImapSource(imap_settings(port=proxy.port)) as source:
            _, cursor = poll(source, "INBOX", None)
            proxy.drop_all()  # the server's autologout, between two polls
            append(mailbox, "INBOX", mail(2))
            documents, _ = poll(source, "INBOX", cursor)
    finally:
        proxy.close()
    assert [d.title for d in documents] == ["mail 2"]
    assert proxy.connections == 2


def test_no_server_listening_is_transient(imap_settings: ImapSettingsFactory) -> None:
    from tests.email.dovecot import free_port

    source = ImapSource(imap_settings(port=free_port()))
    with pytest.raises(TransientSourceError, match="cannot connect"):
        poll(source, "INBOX", None)


def test_configured_from_the_environment_with_a_private_ca(
    dovecot: DovecotServer,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.config import load_settings

    settings = load_settings(
        {
            "IMAP_HOST": "localhost",
            "IMAP_PORT": str(dovecot.port),
            "IMAP_USER": account.user,
            "IMAP_PASSWORD": account.password,
            "IMAP_SECURITY": "starttls",
            "IMAP_FOLDERS": "INBOX, Shared",
            "LEAKWATCH_COMPANY_DOMAINS": "corp.example",
        },
        env_file=None,
    )
    assert settings.imap is not None
    client = dovecot.client(account)
    create(client, "Shared")
    append(client, "Shared", mail(5, to="x@vendor.test"))
    client.logout()
    # A server certificate from a private CA is trusted the standard OpenSSL way.
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert_file))
    with ImapSource(settings.imap, company_domains=settings.company_domains) as source:
        assert [unit.id for unit in source.units()] == ["INBOX", "Shared"]
        documents, _ = poll(source, "Shared", None)
    assert [d.exposure.is_external for d in documents] == [True]


def test_an_unreadable_last_mail_is_not_fetched_again(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    append(mailbox, "INBOX", mail(1))
    bad = append(mailbox, "INBOX", b"\x00\x01 no headers here at all\r\n")
    with ImapSource(imap_settings()) as source:
        documents, cursor = poll(source, "INBOX", None)
        assert [d.text for d in documents if d.title] and not documents[-1].text
        assert cursor is not None and cursor.endswith(f":{bad}")
        again, _ = poll(source, "INBOX", cursor)
    assert again == []
    assert len(source.problems) == 1


def test_a_giant_mail_is_read_up_to_the_cap_and_marked_truncated(
    mailbox: imaplib.IMAP4, imap_settings: ImapSettingsFactory
) -> None:
    key = fake_key(60)
    filler = "".join(f"line {n} of a long log\r\n" for n in range(3000))
    raw = mail(1, key).replace(b"mail number 1", b"mail number 1\r\n" + filler.encode())
    append(mailbox, "INBOX", raw)
    with ImapSource(imap_settings(), message_max_bytes=4096) as source:
        [document], _ = poll(source, "INBOX", None)
    assert "line 10 of a long log" in document.text
    assert key not in document.text  # it sits past the first 4096 bytes
    assert document.extra["truncated"] == f"first 4096 of {len(raw)} bytes read"
