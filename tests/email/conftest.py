"""Fixtures for the email tests: a real Dovecot on 127.0.0.1 and a fresh account per test."""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Callable, Iterator

import pytest

from bot.config import ImapSettings
from tests.email.dovecot import Account, DovecotServer, dovecot_missing
from tests.services import unavailable


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the session: a plain/STARTTLS port and a TLS port, self-signed cert."""
    reason = dovecot_missing()
    if reason:
        unavailable(reason)
    server = DovecotServer()
    try:
        server.start()
    except RuntimeError as error:
        server.stop()
        unavailable(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def account(dovecot: DovecotServer) -> Account:
    """A new mail user with an empty INBOX."""
    return dovecot.add_user()


@pytest.fixture
def mailbox(dovecot: DovecotServer, account: Account) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP client for the test's own account, to APPEND and inspect mail."""
    connection = dovecot.client(account)
    try:
        yield connection
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            connection.logout()


ImapSettingsFactory = Callable[..., ImapSettings]


@pytest.fixture
def imap_settings(dovecot: DovecotServer, account: Account) -> ImapSettingsFactory:
    """Settings for the test account; keyword arguments override (security, folders, port…)."""

    def build(**overrides: object) -> ImapSettings:
        security = str(overrides.pop("security", "plain"))
        values: dict[str, object] = {
            "host": dovecot.host,
            "user": account.user,
            "password": account.password,
            "port": dovecot.tls_port if security == "ssl" else dovecot.port,
            "security": security,
            "folders": ("INBOX",),
        }
        values.update(overrides)
        return ImapSettings(**values)  # type: ignore[arg-type]

    return build
