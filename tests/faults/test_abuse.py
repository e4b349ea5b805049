"""Abuse of the HTTP app (bot.slack_app.app.build_app + serve_http) and of what people type.

- Forged and replayed requests (bad signature, a signed timestamp older than five minutes, the
  body changed after signing, no signature) are refused with 401 for every kind of request
  (event, button, modal submission, slash command) and change nothing: no Slack call, no row.
- Someone who is neither the poster nor an admin cannot change a finding through any button,
  modal submission or slash command; each attempt is audited as refused.
- Slack markup in message text, file names, channel names, Confluence page titles and mail
  subjects reaches DMs and the digest as inert text: no <!channel>, no rewritten links, no
  extra blocks.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.notify import blocks as b
from bot.notify.digest import Week, compute_digest, digest_blocks
from bot.notify.notifier import Notifier
from bot.pipeline import ingest
from bot.polling import poll_source
from bot.slack_app.app import HttpServer, build_app, serve_http
from bot.store.db import Database
from bot.store.models import AuditEvent, Notification, Occurrence, ProcessedEvent, Secret
from connectors.base import Document
from connectors.slack import SlackSource
from tests.faults.conftest import Ledger
from tests.faults.keys import key_for
from tests.standins.slack import (
    Channel,
    SignedSender,
    SlackStandin,
    User,
    Workspace,
    iter_posted_text,
)

SIGNING_SECRET = "faults-signing-secret"


@dataclass
class App:
    ws: Workspace
    slack: SlackStandin
    db: Database
    settings: Settings
    server: HttpServer
    sender: SignedSender
    alice: User  # the poster
    bob: User  # neither poster nor admin
    sam: User  # a security admin
    general: Channel
    secret_id: int

    def state(self) -> dict[str, Any]:
        """Everything a request could change, in one comparable value."""
        with self.db.session() as session:
            secret = session.get(Secret, self.secret_id)
            assert secret is not None
            return {
                "status": (secret.status, secret.status_by, secret.status_reason),
                "audit": session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)),
                "events": session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)),
                "occurrences": session.scalar(
                    sa.select(sa.func.count()).select_from(Occurrence)),
                "outbox": session.scalar(sa.select(sa.func.count()).select_from(Notification)),
            }

    def audit(self) -> list[tuple[str, str]]:
        with self.db.session() as session:
            return [(e.actor, e.action)
                    for e in session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]

    def slack_writes(self) -> list[str]:
        writes = ("chat.", "views.", "conversations.join")
        return [c.method for c in self.slack.calls if c.method.startswith(writes)]


@pytest.fixture
def app(tmp_path: Path, detector: Detector, ledger: Ledger) -> Iterator[App]:
    ws = Workspace(team_id="T0ABUSE", name="Acme", domain="acme")
    alice = ws.add_user("alice", email="alice@acme.test")
    bob = ws.add_user("bob", email="bob@acme.test")
    sam = ws.add_user("sam", email="sam@acme.test")
    general = ws.add_channel("general", members=[alice, bob, sam, ws.bot])
    security = ws.add_channel("security", members=[sam, ws.bot])
    key = ledger.plant(key_for(3, 9100))
    ws.post(general, alice, f"prod key: {key}")
    url = f"sqlite:///{tmp_path / 'lw.db'}"
    db = Database(url)
    db.upgrade()
    with SlackStandin(ws) as slack:
        settings = Settings(
            database_url=url, security_channel=security.id, admins=(sam.id,),
            slack=SlackSettings(bot_token=slack.bot_token, signing_secret=SIGNING_SECRET,
                                api_url=slack.api_url, history_page_size=100),
        )
        assert settings.slack is not None
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        poll_source(db, SlackSource(settings.slack, client=client), detector,
                    workspace=ws.team_id)
        Notifier(client, db, settings).send_pending()
        with db.session() as session:
            secret_id = session.scalars(sa.select(Secret.id)).one()
        server = serve_http(build_app(settings, db, detector, client=client), "127.0.0.1", 0)
        server.start_in_background()
        sender = SignedSender(f"http://127.0.0.1:{server.port}/slack/events", SIGNING_SECRET,
                              slack)
        try:
            yield App(ws, slack, db, settings, server, sender, alice, bob, sam, general,
                      secret_id)
        finally:
            server.shutdown()
            server.server_close()
            ledger.slack("abuse", slack)
            db.dispose()
            ledger.database_files(tmp_path)


def _requests(app: App) -> dict[str, tuple[bytes, str]]:
    """One request of each kind that, properly signed, would change something."""
    key = key_for(4, 9100)
    event = {"type": "message", "channel": app.general.id, "user": app.bob.id,
             "text": f"another one {key}", "ts": f"{time.time():.6f}",
             "channel_type": "channel"}
    button = {
        "type": "block_actions", "user": {"id": app.alice.id, "team_id": app.ws.team_id},
        "team": {"id": app.ws.team_id}, "api_app_id": "A0STANDIN",
        "trigger_id": app.slack.issue_trigger_id(), "response_url": app.slack.url + "/actions/r",
        "actions": [{"action_id": b.ACTION_ROTATED, "block_id": "b", "type": "button",
                     "value": str(app.secret_id), "action_ts": "1"}],
        "container": {"type": "message"}, "channel": {"id": app.general.id},
        "message": {"ts": "1"},
    }
    view = {
        "type": "view_submission", "user": {"id": app.alice.id, "team_id": app.ws.team_id},
        "team": {"id": app.ws.team_id}, "api_app_id": "A0STANDIN",
        "trigger_id": app.slack.issue_trigger_id(),
        "view": {"id": "V1", "type": "modal", "callback_id": b.VIEW_NOT_SECRET,
                 "private_metadata": str(app.secret_id), "hash": "h",
                 "state": {"values": {b.REASON_BLOCK: {b.REASON_INPUT: {
                     "type": "plain_text_input", "value": "a test fixture"}}}}},
    }
    command = {"command": "/leakwatch", "text": "scan #general", "user_id": app.sam.id,
               "team_id": app.ws.team_id, "channel_id": app.general.id,
               "response_url": app.slack.url + "/commands/response",
               "trigger_id": app.slack.issue_trigger_id()}
    form = "application/x-www-form-urlencoded"
    return {
        "event": (app.sender.event_body(event, f"EvForged{time.time_ns()}"), "application/json"),
        "button": (urllib.parse.urlencode({"payload": json.dumps(button)}).encode(), form),
        "view": (urllib.parse.urlencode({"payload": json.dumps(view)}).encode(), form),
        "command": (urllib.parse.urlencode(command).encode(), form),
    }


def _unsigned(app: App, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(app.sender.url, data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_forged_and_replayed_requests_are_refused_and_change_nothing(app: App) -> None:
    before, writes = app.state(), app.slack_writes()
    refused = 0
    for kind, (body, ctype) in _requests(app).items():
        now = int(time.time())
        stale = now - 5 * 60 - 30  # signed correctly, but outside the five-minute window
        altered = body.replace(b"general", b"generaL") if b"general" in body else body + b" "
        attempts = {
            "bad signature": app.sender.send(body, ctype, signature="v0=" + "0" * 64),
            "other secret": app.sender.send(body, ctype, signature=SignedSender(
                "", "not-the-secret").sign(body, now), timestamp=now),
            "replayed": app.sender.send(body, ctype, timestamp=stale,
                                        signature=app.sender.sign(body, stale)),
            "future": app.sender.send(body, ctype, timestamp=now + 600,
                                      signature=app.sender.sign(body, now + 600)),
            "changed after signing": app.sender.send(altered, ctype, timestamp=now,
                                                     signature=app.sender.sign(body, now)),
        }
        for name, response in attempts.items():
            assert response.status == 401, f"{kind}, {name}: {response.status}"
            refused += 1
        assert _unsigned(app, body, ctype) == 401, f"{kind} without a signature"
        refused += 1
    time.sleep(0.5)  # anything accepted would now be running on a listener thread
    assert app.state() == before
    assert app.slack_writes() == writes

    # The same requests, signed properly, do take effect: the checks above could fail.
    for kind, (body, ctype) in _requests(app).items():
        assert app.sender.send(body, ctype).status == 200, kind
    assert app.slack.wait_for(lambda: app.state() != before, timeout=5)
    print(f"abuse: {refused} forged or replayed requests refused with 401, no side effects")


def _bob_attempts(app: App) -> list[tuple[str, Any]]:
    """Every way a finding can be changed from Slack, tried by bob."""
    value = str(app.secret_id)
    sender = app.sender
    dm = {"ts": "1", "text": "alert"}
    attempts: list[tuple[str, Any]] = []
    for action in (b.ACTION_ROTATED, b.ACTION_REOPEN, b.ACTION_NOT_SECRET, b.ACTION_DELETE,
                   b.ACTION_STEPS, b.ACTION_OPEN_KEYS):
        attempts.append((action, lambda a=action: sender.block_actions(
            app.bob, action_id=a, value=value, channel=app.general.id, message=dm)))
        attempts.append((f"{action} with a padded id", lambda a=action: sender.block_actions(
            app.bob, action_id=a, value=f"{value}|x", channel=app.general.id, message=dm)))
    attempts.append(("modal submission", lambda: sender.view_submission(
        app.bob, callback_id=b.VIEW_NOT_SECRET, private_metadata=value,
        values={b.REASON_BLOCK: {b.REASON_INPUT: {"type": "plain_text_input",
                                                  "value": "bob says so"}}})))
    for words in ("scan #general", f"scan <#{app.general.id}|general>", "digest preview",
                  f"rotated {value}", f"resolve {value}", f"ignore {value}"):
        attempts.append((f"/leakwatch {words}", lambda w=words: sender.slash_command(
            "/leakwatch", w, user=app.bob, channel=app.general.id)))
    return attempts


def test_a_bystander_cannot_change_a_finding_by_any_button_modal_or_command(app: App) -> None:
    for phase in ("open", "rotated"):
        if phase == "rotated":  # the poster may act: the state does change
            app.sender.block_actions(app.alice, action_id=b.ACTION_ROTATED,
                                     value=str(app.secret_id), channel=app.general.id,
                                     message={"ts": "1"})
            assert app.slack.wait_for(lambda: app.state()["status"][0] == "rotated")
        for name, attempt in _bob_attempts(app):
            before = app.state()
            deletes = len(app.slack.calls_to("chat.delete"))
            assert attempt().status == 200, name  # acknowledged, then refused
            time.sleep(0.15)
            after = app.state()
            assert after["status"] == before["status"], f"{name} changed the finding"
            assert after["occurrences"] == before["occurrences"]
            assert len(app.slack.calls_to("chat.delete")) == deletes, name
        assert not [v for v in app.slack.views.values()
                    if v.get("callback_id") == b.VIEW_NOT_SECRET], "bob got the reason modal"
    bob_actions = {action for actor, action in app.audit() if actor == app.bob.id}
    assert bob_actions, "refusals are audited"
    refusals = [action for actor, action in app.audit()
                if actor == app.bob.id and action.startswith("refused")]
    assert len(refusals) >= 2 * 3 * 2, refusals  # each status button and command, twice over
    assert not any(action.startswith("status:") for action in bob_actions)
    with app.db.session() as session:
        secret = session.get(Secret, app.secret_id)
        assert secret is not None and secret.status_by == app.alice.id


# --- markup injection ------------------------------------------------------------------------

HOSTILE = ("<!channel> <!here> <!everyone> <@U0ADMIN> <https://evil.example/x|acme.slack.com> "
           "*bold* _it_ ~s~ `c` ```block``` &lt;b&gt; <#C0FAKE|general> "
           '{"type":"section","text":{"type":"mrkdwn","text":"injected"}}')
FORBIDDEN = ("<!channel>", "<!here>", "<!everyone>", "<https://evil", "<@U0ADMIN>",
             "<#C0FAKE")


def _dangerous(texts: list[str]) -> list[str]:
    return [f"{bad!r} in {text[:120]!r}" for text in texts for bad in FORBIDDEN if bad in text]


def test_markup_in_messages_files_channels_pages_and_subjects_is_inert(
    tmp_path: Path, detector: Detector, ledger: Ledger
) -> None:
    ws = Workspace(team_id="T0INJECT", name="Acme", domain="acme")
    plain = ws.add_user("plain", email="plain@acme.test")
    users = {name: ws.add_user(name, email=f"{name}@acme.test")
             for name in ("texter", "filer", "chan", "pager", "mailer")}
    clean = ws.add_channel("clean", members=[plain, *users.values(), ws.bot])
    hostile_channel = ws.add_channel(f"x{HOSTILE}", members=[users["chan"], ws.bot])
    security = ws.add_channel("security", members=[ws.bot])
    keys = {name: ledger.plant(key_for(i, 9200)) for i, name in enumerate(
        ["plain", *users])}
    ws.post(clean, plain, f"the key: {keys['plain']}")
    ws.post(clean, users["texter"], f"{HOSTILE} the key: {keys['texter']} {HOSTILE}")
    file = ws.add_file(users["filer"], f"{HOSTILE}.txt", f"token = {keys['filer']}")
    ws.post(clean, users["filer"], "notes", files=[file])
    ws.post(hostile_channel, users["chan"], f"the key: {keys['chan']}")
    url = f"sqlite:///{tmp_path / 'lw.db'}"
    db = Database(url)
    db.upgrade()
    with SlackStandin(ws) as slack:
        slack_settings = SlackSettings(bot_token=slack.bot_token, signing_secret="s",
                                       api_url=slack.api_url, history_page_size=100)
        settings = Settings(database_url=url, security_channel=security.id,
                            slack=slack_settings)
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        poll_source(db, SlackSource(slack_settings, client=client), detector,
                    workspace=ws.team_id)
        # A Confluence page and a mail with hostile titles, written by the same people.
        documents = [
            Document(source="confluence", unit="ENG", unit_name=f"Eng {HOSTILE}", item_id="p1",
                     title=f"Runbook {HOSTILE}", text=f"token {keys['pager']}",
                     author_email="pager@acme.test", permalink="https://wiki.example/p1"),
            Document(source="email", unit="INBOX", unit_name="INBOX", item_id="<m1@x>",
                     title=f"Re: {HOSTILE}", text=f"use {keys['mailer']}",
                     author=f"mailer@acme.test {HOSTILE}", author_email="mailer@acme.test"),
        ]
        with db.session() as session:
            ingest(session, documents, detector, now=datetime.now(UTC), workspace=ws.team_id)
        Notifier(client, db, settings).send_pending()

        baseline = slack.dms_to(plain)
        assert len(baseline) == 1
        shape = [block["type"] for block in baseline[0].blocks or []]
        for name, user in users.items():
            dms = slack.dms_to(user)
            assert len(dms) == 1, f"{name}: {len(dms)} DMs"
            assert [block["type"] for block in dms[0].blocks or []] == shape, name
            assert not _dangerous(list(iter_posted_text(dms))), name
        shown = "\n".join(iter_posted_text(slack.posted))
        assert "&lt;!channel&gt;" in shown or "evil.example" in shown, "hostile names not shown"
        posted = list(iter_posted_text(slack.posted_in(security)))
        assert posted and not _dangerous(posted)

        with db.session() as session:
            now = datetime.now(UTC)
            week = Week.containing(now - timedelta(days=0), settings.timezone)
            digest = compute_digest(session, week, now=now + timedelta(days=7))
        digest_texts = list(iter_posted_text([_as_posted(digest_blocks(digest))]))
        assert not _dangerous(digest_texts)
        assert all(block.get("type") != "section" or "injected" not in json.dumps(block)
                   or "&lt;" in json.dumps(block) or '\\"type\\"' in json.dumps(block)
                   for block in digest_blocks(digest))
        ledger.slack("injection", slack)
    db.dispose()
    ledger.database_files(tmp_path)


def _as_posted(blocks: list[dict[str, Any]]) -> Any:
    from tests.standins.slack import Posted

    return Posted(channel="digest", ts="1", text="", blocks=blocks)
