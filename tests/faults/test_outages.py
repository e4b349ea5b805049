"""Sources and services misbehaving during a poll: bursts of 429 and 5xx from Slack and
Confluence, answers lost after Slack did the work, IMAP connections cut mid-fetch at random
points, PostgreSQL restarted in the middle of a poll. Nothing lost, nothing doubled, and the
next poll succeeds by itself."""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.detection.engine import Detector
from bot.polling import poll_source
from bot.scheduler import run_poll
from bot.store.db import Database
from bot.store.models import Cursor, Notification, Occurrence
from connectors.confluence import ConfluenceSource
from connectors.email import ImapSource
from tests.confluence.conftest import API_TOKEN, Config, Waits
from tests.email.conftest import ImapSettingsFactory, account, dovecot, imap_settings, mailbox
from tests.email.dovecot import append
from tests.email.proxy import CuttingProxy
from tests.faults.conftest import FINGERPRINTER, Ledger
from tests.faults.keys import key_for
from tests.faults.lossy import LossyProxy
from tests.faults.scenario import SlackScenario, Wired, assert_nothing_lost_or_doubled
from tests.services import (
    POSTGRES_ADMIN_URL,
    POSTGRES_HOST,
    POSTGRES_PORT,
    is_port_open,
    unavailable,
)
from tests.standins.confluence import ConfluenceSite, ConfluenceStandin
from tests.standins.slack import SlackStandin

__all__ = ["account", "dovecot", "imap_settings", "mailbox"]  # fixtures of the email tests


@pytest.mark.slow
def test_slack_429_and_5xx_bursts_lose_nothing_and_double_nothing(
    tmp_path: Path, detector: Detector, ledger: Ledger
) -> None:
    scenario = SlackScenario.build(ledger, posters=8, channels=4, seed_base=8100)
    with SlackStandin(scenario.ws) as slack:
        wired = Wired.build(f"sqlite:///{tmp_path / 'lw.db'}", slack, scenario.security)
        slack.fail("conversations.list", times=2, status=429, retry_after=1)
        slack.fail("conversations.history", times=2, status=503)
        slack.fail("conversations.history", times=1, status=429, retry_after=1)
        slack.fail("conversations.history", times=5, status=500)  # beyond the SDK's retries
        slack.fail("users.info", times=2, status=502)
        slack.fail("conversations.open", times=1, status=429, retry_after=1)
        slack.fail("chat.postMessage", times=2, status=503)
        slack.fail("chat.postMessage", times=5, status=500)  # the row fails, retried later
        for _ in range(6):
            report = wired.poll(detector)
            wired.flush()
            if report.stopped is None and not report.units_failed and wired.unsent() == 0:
                break
        assert report.stopped is None and not report.units_failed
        figures = assert_nothing_lost_or_doubled(scenario, slack, wired.db)
        statuses = [c.status for c in slack.calls]
        assert statuses.count(429) >= 4 and sum(s >= 500 for s in statuses) >= 15

        # The bot carries on: a key pasted afterwards is found and sent by the next poll.
        late = scenario.ws.add_user("late", email="late@acme.test")
        scenario.posters.append(late)
        scenario.plant(late, scenario.channels[0], key_for(40, 8100), ledger)
        assert wired.poll(detector).stopped is None
        wired.flush()
        assert_nothing_lost_or_doubled(scenario, slack, wired.db)
        ledger.slack("slack bursts", slack)
    ledger.database_files(tmp_path)
    print(f"slack bursts: {figures}, {statuses.count(429)} x 429, "
          f"{sum(s >= 500 for s in statuses)} x 5xx")


@pytest.mark.parametrize("how", ["503", "hangup"])
def test_a_dm_whose_answer_is_lost_is_not_posted_twice(
    tmp_path: Path, detector: Detector, ledger: Ledger, how: str
) -> None:
    """Slack posted the DM but the answer never arrived (5xx after the work, or a dropped
    connection): the notifier must not post the same alert a second time."""
    scenario = SlackScenario.build(ledger, posters=4, channels=2, seed_base=8200 + len(how))
    with SlackStandin(scenario.ws) as slack:
        proxy = LossyProxy(slack.url)
        try:
            wired = Wired.build(f"sqlite:///{tmp_path / 'lw.db'}", slack, scenario.security)
            lossy = wired.with_api_url(proxy.api_url)
            lossy.poll(detector)
            proxy.lose("chat.postMessage", times=3, how=how)
            lossy.flush()
            assert proxy.lost == ["chat.postMessage"] * 3
            figures = assert_nothing_lost_or_doubled(scenario, slack, wired.db)
        finally:
            proxy.close()
        ledger.slack(f"lost answers ({how})", slack)
    ledger.database_files(tmp_path)
    print(f"lost answers ({how}): {figures}")


def test_confluence_429_and_5xx_bursts_lose_nothing_and_double_nothing(
    tmp_path: Path, detector: Detector, ledger: Ledger
) -> None:
    site = ConfluenceSite(cloud=True)
    reader = site.add_user("LeakWatch Reader", "leakwatch@example.com")
    site.add_api_token(reader, API_TOKEN)
    authors = [site.add_user(f"Author {i}", f"author{i}@example.com") for i in range(6)]
    planted: list[str] = []
    for s in range(3):
        space = site.add_space(f"SP{s}")
        for p in range(12):
            body = f"<p>runbook {s}.{p}</p>"
            if p % 4 == 1:
                key = ledger.plant(key_for(s * 12 + p, 8300))
                planted.append(key)
                body += f"<p>token: <code>{key}</code></p>"
            site.add_page(space, f"Page {s}.{p}", body, authors[(s + p) % len(authors)])
    db = Database(f"sqlite:///{tmp_path / 'lw.db'}")
    db.upgrade()
    with ConfluenceStandin(site) as standin:
        config = Config(url=standin.url, user=reader.email, token=API_TOKEN)
        source = ConfluenceSource(config, sleep=Waits(), cloud=True)  # type: ignore[arg-type]
        standin.fail(r"/rest/api/space$", 429, times=2, retry_after=1)
        standin.fail(r"/rest/api/search$", 429, times=3, retry_after=2)
        standin.fail(r"/rest/api/search$", 503, times=2)
        standin.fail(r"/rest/api/space/SP\d$", 500, times=3)
        standin.fail(r"/rest/api/search$", 502, times=1)
        polls = 0
        while True:
            polls += 1
            report = poll_source(db, source, detector)
            if report.stopped is None and not report.units_failed:
                break
            assert polls < 8, f"still failing: {report.units_failed} {report.stopped}"
        statuses = [c.status for c in standin.calls]
        ledger.confluence("confluence bursts", standin)
    with db.session() as session:
        occurrences = list(session.scalars(sa.select(Occurrence)))
        found = {o.secret.fingerprint for o in occurrences}
        alerts = list(session.scalars(sa.select(Notification)
                                      .where(Notification.kind == "alert")))
    assert found == {FINGERPRINTER.of(key) for key in planted}
    assert len(occurrences) == len(planted)  # nothing twice
    assert len(alerts) == len(planted)
    assert statuses.count(429) == 5 and sum(s >= 500 for s in statuses) >= 3
    db.dispose()
    ledger.database_files(tmp_path)
    print(f"confluence bursts: {len(planted)} keys in {polls} polls, "
          f"{statuses.count(429)} x 429, {sum(s >= 500 for s in statuses)} x 5xx")


@pytest.mark.service
def test_imap_cut_at_random_points_resumes_until_every_mail_is_read(
    tmp_path: Path, detector: Detector, ledger: Ledger, dovecot,  # type: ignore[no-untyped-def]
    mailbox, imap_settings: ImapSettingsFactory,  # type: ignore[no-untyped-def]
) -> None:
    rng = random.Random(20261127)
    keys = [ledger.plant(key_for(i, 8400)) for i in range(30)]
    for number, key in enumerate(keys):
        body = f"mail {number}\r\nthe token is {key}\r\n" + "filler line\r\n" * rng.randint(50, 200)
        raw = (f"From: dev{number}@corp.example\r\nTo: ops@corp.example\r\n"
               f"Subject: mail {number}\r\nMessage-ID: <m{number}@corp.example>\r\n"
               f"Content-Type: text/plain\r\n\r\n{body}")
        append(mailbox, "INBOX", raw.encode())
    db = Database(f"sqlite:///{tmp_path / 'lw.db'}")
    db.upgrade()
    proxy = CuttingProxy(dovecot.host, dovecot.port, cut_after=rng.randint(2000, 12000))
    cuts = 0
    try:
        source = ImapSource(imap_settings(port=proxy.port), batch_size=4)
        for _ in range(30):
            report = poll_source(db, source, detector, batch_size=4)
            if report.stopped is None and not report.units_failed:
                break
            cuts += 1
            proxy.cut_after = rng.randint(2000, 12000)  # the next connection drops elsewhere
        source.close()
    finally:
        proxy.close()
    with db.session() as session:
        occurrences = list(session.scalars(sa.select(Occurrence)))
        found = {o.secret.fingerprint for o in occurrences}
        alerts = session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                .where(Notification.kind == "alert"))
        cursor = session.scalar(sa.select(Cursor.value).where(Cursor.source == "email"))
    assert cuts >= 3, "the proxy should have cut several connections"
    assert report.stopped is None
    assert found == {FINGERPRINTER.of(k) for k in keys}
    assert len(occurrences) == len(keys) and alerts == len(keys)
    assert cursor is not None
    db.dispose()
    ledger.database_files(tmp_path)
    print(f"imap: {cuts} connections cut mid-fetch, {len(keys)} keys once each")


# --- PostgreSQL restarted in the middle of a poll ------------------------------------------


def _cluster() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path(
        "/etc/postgresql").is_dir() else []
    return versions[-1] if versions else ""


def _pg_ctl(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", action],
                   check=True, capture_output=True, timeout=120)


def _wait_for_postgres(limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def restartable_postgres() -> Iterator[str]:
    """A fresh database on a cluster this test restarts; the cluster runs again afterwards,
    whatever happened. (Its own admin connections are not pooled: a restart kills them.)"""
    if not is_port_open(POSTGRES_HOST, POSTGRES_PORT):
        unavailable(f"PostgreSQL is not listening on {POSTGRES_HOST}:{POSTGRES_PORT}")
    if not _cluster() or subprocess.run(["which", "pg_ctlcluster"],
                                        capture_output=True).returncode != 0:
        unavailable("pg_ctlcluster is not available to restart PostgreSQL")
    name = f"leakwatch_faults_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        if not _wait_for_postgres(limit=10):
            _pg_ctl("start")
        assert _wait_for_postgres(), "PostgreSQL did not come back"
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.service
@pytest.mark.slow
def test_postgres_restart_mid_poll_loses_nothing_and_the_next_poll_succeeds(
    restartable_postgres: str, detector: Detector, ledger: Ledger
) -> None:
    scenario = SlackScenario.build(ledger, posters=10, channels=8, noise=60, seed_base=8500)
    with SlackStandin(scenario.ws) as slack:
        wired = Wired.build(restartable_postgres, slack, scenario.security)
        restarted = threading.Event()

        def restart_when_reading() -> None:
            # mid-poll: after a few pages of history, while batches are being committed
            while len(slack.calls_to("conversations.history")) < 6:
                time.sleep(0.005)
            _pg_ctl("restart")
            restarted.set()

        restarter = threading.Thread(target=restart_when_reading, daemon=True)
        restarter.start()
        errors: list[str] = []
        # What the scheduler's poll job does, at each interval, until the restart is over.
        polls = 0
        while True:
            polls += 1
            try:
                report = run_poll(wired.db, wired.source, detector, wired.notifier,
                                  workspace=wired.source.workspace)
            except sa.exc.OperationalError as error:  # the job fails; APScheduler logs it
                errors.append(type(error.orig).__name__ if error.orig else "OperationalError")
                report = None
            if restarted.is_set() and report is not None and report.stopped is None:
                break
            assert polls < 20, f"the bot did not carry on after the restart: {errors}"
            time.sleep(0.5)
        restarter.join(timeout=60)
        assert restarted.is_set()
        # One more poll on the same engine: nothing stale is left in the connection pool.
        after = run_poll(wired.db, wired.source, detector, wired.notifier,
                         workspace=wired.source.workspace)
        assert after is not None and after.stopped is None and not after.units_failed
        wired.flush()
        figures = assert_nothing_lost_or_doubled(scenario, slack, wired.db)
        ledger.slack("postgres restart", slack)
        ledger.postgres("postgres restart", restartable_postgres)
        wired.db.dispose()
    print(f"postgres restart: {polls} polls, failed polls {errors}, {figures}")
