"""kill -9 during a backfill: the real CLI (`python -m bot poll`) in a subprocess against the
stand-in Slack, killed at random points and restarted until a run completes on its own.

Afterwards every planted key is stored once, every outbox row is sent, and every poster has
exactly one DM. A kill between chat.postMessage and recording the ts leaves a row claimed for
its lease (5 minutes); the test then runs the next flush as it would happen after the lease, and
the notifier must find its earlier message by its marker instead of posting a second one.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import load_settings
from bot.detection.fingerprint import Fingerprinter
from bot.notify.notifier import LEASE, Notifier
from bot.store.db import Database
from bot.store.models import Notification, Occurrence, Secret, utcnow
from tests.faults.conftest import Ledger, bot_command, bot_environment
from tests.faults.keys import key_for
from tests.standins.slack import SlackStandin, User, Workspace

KILLS = 22
CHANNELS = 12
NOISE_PER_CHANNEL = 45
POSTERS = 16
MARKER = re.compile(r"^lw-n-(\d+)$")


def _seed() -> int:
    return int(os.environ.get("LEAKWATCH_FAULT_SEED") or time.time_ns() % 1_000_000)


def _workspace(rng: random.Random, ledger: Ledger) -> tuple[Workspace, dict[str, str], list[User]]:
    """Channels full of chatter, one key per poster: in a message, a thread reply or a file."""
    ws = Workspace(team_id="T0KILL", name="Acme", domain="acme")
    posters = [ws.add_user(f"poster{i}", email=f"poster{i}@acme.test") for i in range(POSTERS)]
    bystanders = [ws.add_user(f"reader{i}", email=f"reader{i}@acme.test") for i in range(6)]
    people = [u.id for u in posters + bystanders]
    channels = [
        ws.add_channel(f"team-{i}", private=i % 4 == 3, members=[*people, ws.bot.id])
        for i in range(CHANNELS)
    ]
    ws.add_channel("security", members=[ws.bot.id, bystanders[0].id])
    parents = []
    for channel in channels:
        for j in range(NOISE_PER_CHANNEL):
            message = ws.post(channel, rng.choice(bystanders), f"status update {j}: all green")
            if j % 15 == 0:
                parents.append(message)
    planted: dict[str, str] = {}  # poster id -> key
    for i, poster in enumerate(posters):
        key = ledger.plant(key_for(i, seed_base=7000))
        planted[poster.id] = key
        channel = rng.choice(channels)
        if i % 4 == 1:
            parent = rng.choice(parents)
            ws.post(parent.channel, poster, f"try this one {key}", thread=parent)
        elif i % 4 == 2:
            file = ws.add_file(poster, f"notes-{i}.txt", f"config:\n  token = {key}\n")
            ws.post(channel, poster, "my notes", files=[file])
        else:
            ws.post(channel, poster, f"here you go: {key} (do not share)")
    return ws, planted, posters


def _wait_for_calls(slack: SlackStandin, count: int, process: subprocess.Popen[str],
                    limit: float = 60.0) -> bool:
    """Until the stand-in has received `count` calls in all; False if the run ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(slack.calls) >= count:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def _wait_for_post(slack: SlackStandin, process: subprocess.Popen[str],
                   limit: float = 60.0) -> None:
    before = len(slack.calls_to("chat.postMessage"))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if len(slack.calls_to("chat.postMessage")) > before:
            return
        time.sleep(0.002)


@pytest.mark.slow
def test_kill_9_at_random_points_then_every_key_found_and_one_dm_each(
    tmp_path: Path, ledger: Ledger
) -> None:
    seed = _seed()
    rng = random.Random(seed)
    ws, planted, posters = _workspace(rng, ledger)
    with SlackStandin(ws) as slack:
        security = next(c for c in ws.channels.values() if c.name == "security")
        team = [c for c in ws.channels.values() if c.name.startswith("team-")]
        env = bot_environment(
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_API_URL=slack.api_url,
            SLACK_HISTORY_PAGE_SIZE="15",
            LEAKWATCH_DATA_DIR=str(tmp_path / "data"),
            DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'leakwatch.db'}",
            LEAKWATCH_SECURITY_CHANNEL=security.id,
        )
        phases: Counter[str] = Counter()
        killed = 0
        runs = 0
        logs: list[str] = []
        late_posters: list[User] = []
        expected = 60  # Slack calls a run makes; learnt from the runs that complete
        while True:
            runs += 1
            assert runs <= 2 * KILLS + 10, f"the poll never completed (seed {seed})"
            before = len(slack.calls)
            process = subprocess.Popen(bot_command("poll"), env=env, cwd=tmp_path, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if killed < KILLS:
                mode = rng.random()
                if mode < 0.2:  # during start-up: settings, key file, migrations
                    time.sleep(rng.uniform(0.0, 5.0))
                elif mode < 0.4:  # right after Slack took a DM, before its ts is stored
                    _wait_for_post(slack, process)
                elif _wait_for_calls(slack, before + rng.randint(1, expected), process):
                    time.sleep(rng.uniform(0.0, 0.1))  # in a request, or in a commit
                if process.poll() is None:
                    last = slack.calls[-1].method if len(slack.calls) > before else "start-up"
                    process.send_signal(signal.SIGKILL)
                    killed += 1
                    phases[last] += 1
            out, err = process.communicate(timeout=120)
            logs.append(out + err)
            ledger.text(f"kill run {runs} output", out + err)
            if process.returncode != -signal.SIGKILL:
                expected = max(3, len(slack.calls) - before)
            if process.returncode == -signal.SIGKILL:
                # People keep talking while the bot is down: the next run has work to do.
                for j in range(20):
                    ws.post(rng.choice(team), rng.choice(posters), f"while down {killed}.{j}")
                if rng.random() < 0.4:
                    poster = ws.add_user(f"late{killed}", email=f"late{killed}@acme.test")
                    late = ledger.plant(key_for(100 + killed, seed_base=7000))
                    ws.post(rng.choice(team), poster, f"new: {late}")
                    planted[poster.id] = late
                    late_posters.append(poster)
                continue
            assert process.returncode == 0, f"run {runs} failed (seed {seed}):\n{out}\n{err}"
            if killed >= KILLS:
                break

        # The next flush after the lease: rows whose post was cut off before its ts was stored.
        settings = load_settings(dict(env), env_file=None)
        db = Database(settings.database_url)
        with db.session() as session:
            stuck = session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                   .where(Notification.status != "sent")) or 0
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        Notifier(client, db, settings).send_pending(now=utcnow() + LEASE + timedelta(minutes=1))

        fingerprinter = Fingerprinter((tmp_path / "data").joinpath(
            settings.fingerprint_key_file.name).read_bytes())
        with db.session() as session:
            secrets = {s.fingerprint: s.id for s in session.scalars(sa.select(Secret))}
            occurrences = Counter(o.secret_id for o in session.scalars(sa.select(Occurrence)))
            statuses = Counter(n.status for n in session.scalars(sa.select(Notification)))
            security_rows = session.scalar(
                sa.select(sa.func.count()).select_from(Notification)
                .where(Notification.kind == "security_alert")) or 0
        db.dispose()

        # Every planted key is stored, once, with exactly one occurrence.
        for poster, key in planted.items():
            fingerprint = fingerprinter.of(key)
            assert fingerprint in secrets, f"key of {poster} lost (seed {seed})"
            assert occurrences[secrets[fingerprint]] == 1, f"seed {seed}"
        assert len(secrets) == len(planted), f"seed {seed}"
        assert set(statuses) == {"sent"}, f"unsent rows {statuses} (seed {seed})"

        # Each poster has exactly one DM; nobody else has any.
        for poster in posters + late_posters:
            assert len(slack.dms_to(poster)) == 1, f"{poster.name} (seed {seed})"
        for user in ws.users.values():
            if user.id not in planted:
                assert slack.dms_to(user) == []
        # No outbox row reached Slack twice: each marker is in exactly one live message.
        markers = Counter(
            int(found.group(1))
            for posted in slack.posted if not posted.deleted and not posted.ephemeral
            for block in posted.blocks or []
            if (found := MARKER.match(str(block.get("block_id", ""))))
        )
        assert markers and max(markers.values()) == 1, f"doubled rows (seed {seed})"
        assert len(slack.posted_in(security)) == security_rows, f"seed {seed}"

        ledger.slack("kill -9 backfill", slack)
    ledger.database_files(tmp_path)
    ledger.text("kill -9 figures", f"runs={runs} killed={killed} phases={dict(phases)} "
                f"stuck_after_last_run={stuck} keys={len(planted)}")
    print(f"kill -9: seed {seed}, {runs} runs, {killed} kills, phases {dict(phases)}, "
          f"{stuck} rows recovered after the lease, {len(planted)} keys, "
          f"{len(posters) + len(late_posters)} posters with one DM each")


CONFLUENCE_KILLS = 12


@pytest.mark.slow
def test_kill_9_during_a_confluence_backfill_then_every_key_once(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The same for Confluence: `python -m bot poll --no-send` against the stand-in site, killed
    at random points; afterwards each planted key is stored once with one queued alert."""
    from tests.confluence.conftest import API_TOKEN
    from tests.standins.confluence import ConfluenceSite, ConfluenceStandin

    seed = _seed()
    rng = random.Random(seed)
    site = ConfluenceSite(cloud=True)
    reader = site.add_user("LeakWatch Reader", "leakwatch@example.com")
    site.add_api_token(reader, API_TOKEN)
    authors = [site.add_user(f"Author {i}", f"author{i}@example.com") for i in range(8)]
    planted: list[str] = []
    for s in range(6):
        space = site.add_space(f"KS{s}")
        for p in range(30):
            body = f"<p>runbook {s}.{p}</p>" + "<p>steps and notes</p>" * 5
            if p % 5 == 2:
                key = ledger.plant(key_for(s * 30 + p, 7600))
                planted.append(key)
                body += f"<ac:structured-macro ac:name='code'><ac:plain-text-body><![CDATA[" \
                        f"export TOKEN={key}]]></ac:plain-text-body></ac:structured-macro>"
            site.add_page(space, f"Page {s}.{p}", body, authors[(s + p) % len(authors)])
    with ConfluenceStandin(site) as standin:
        env = bot_environment(
            CONFLUENCE_URL=standin.url, CONFLUENCE_USER=reader.email, CONFLUENCE_TOKEN=API_TOKEN,
            LEAKWATCH_DATA_DIR=str(tmp_path / "data"),
            DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'leakwatch.db'}",
        )
        killed = runs = 0
        expected = 40
        while True:
            runs += 1
            assert runs <= 3 * CONFLUENCE_KILLS + 5, f"the poll never completed (seed {seed})"
            before = len(standin.calls)
            process = subprocess.Popen(bot_command("poll", "--no-send"), env=env, cwd=tmp_path,
                                       text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if killed < CONFLUENCE_KILLS:
                deadline = time.monotonic() + 60
                target = before + rng.randint(1, expected)
                while (time.monotonic() < deadline and process.poll() is None
                       and len(standin.calls) < target):
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.1))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    killed += 1
            out, err = process.communicate(timeout=120)
            ledger.text(f"confluence kill run {runs} output", out + err)
            if process.returncode == -signal.SIGKILL:
                continue
            assert process.returncode == 0, f"run {runs} failed (seed {seed}):\n{out}\n{err}"
            expected = max(3, len(standin.calls) - before)
            if killed >= CONFLUENCE_KILLS:
                break
        ledger.confluence("confluence kill -9", standin)

    settings = load_settings(dict(env), env_file=None)
    fingerprinter = Fingerprinter(settings.fingerprint_key_file.read_bytes())
    db = Database(settings.database_url)
    with db.session() as session:
        secrets = {s.fingerprint: s.id for s in session.scalars(sa.select(Secret))}
        occurrences = Counter(o.secret_id for o in session.scalars(sa.select(Occurrence)))
        alerts = Counter(n.secret_id for n in session.scalars(
            sa.select(Notification).where(Notification.kind == "alert")))
    db.dispose()
    for key in planted:
        secret_id = secrets.get(fingerprinter.of(key))
        assert secret_id is not None, f"a key was lost (seed {seed})"
        assert occurrences[secret_id] == 1 and alerts[secret_id] == 1, f"seed {seed}"
    assert len(secrets) == len(planted)
    ledger.database_files(tmp_path)
    print(f"confluence kill -9: seed {seed}, {runs} runs, {killed} kills, "
          f"{len(planted)} keys once each")
