"""Many workspaces: two workspaces install LeakWatch through the OAuth flow, and the running bot
(BotService in HTTP mode) polls, DMs, reminds and posts the digest in each with that workspace's
own token, never mixing them; uninstalling one stops its polls; a click from one workspace
cannot touch the other's findings.

Slack has one API host for every workspace. Here each workspace is its own stand-in server, and
`SlackRouter` plays Slack's host in front of them: a call goes to the stand-in that issued its
token (oauth.v2.access: its code), so a call made with the wrong workspace's token lands in the
wrong workspace, where the test sees it.

The two workspaces are built alike, so their users and channels have the same ids (Alice is
U0000003 in both): only the workspace tells them apart, as with an Enterprise Grid user who is in
two workspaces. A check that forgot the workspace would let Alice of one act on the other's keys.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
import sqlalchemy as sa

from bot.config import ConfigError, Settings, load_settings
from bot.detection.fakes import fake_secret
from bot.detection.masking import mask
from bot.notify import blocks
from bot.scheduler import queue_reminders_and_send
from bot.service import BotService
from bot.slack_app.workspaces import InstalledWorkspaces, post_due_digests
from bot.store import models
from tests.install.standins import OAuthSlack
from tests.install.test_oauth import CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET, _install
from tests.standins.slack import (
    Channel,
    SignedSender,
    User,
    Workspace,
    iter_posted_text,
)


class SlackRouter:
    """Slack's API host in front of several stand-in workspaces (see the module docstring)."""

    def __init__(self, *workspaces: OAuthSlack) -> None:
        self.workspaces = workspaces
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = router.owner(self.path, self.headers.get("Authorization", ""), body,
                                      self.headers.get("Content-Type", ""))
                if target is None:
                    self._reply(200, json.dumps({"ok": False, "error": "invalid_auth"}).encode(),
                                {"Content-Type": "application/json"})
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "authorization")}
                request = urllib.request.Request(target.url + self.path, data=body,
                                                 headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, data, answer_headers = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as error:
                    status, data, answer_headers = error.code, error.read(), error.headers
                self._reply(status, data, {k: v for k, v in answer_headers.items()
                                           if k.lower() in ("content-type", "retry-after")})

            do_GET = do_POST

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def owner(self, path: str, authorization: str, body: bytes, ctype: str) -> OAuthSlack | None:
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        if body and "json" in ctype:
            params.update(json.loads(body))
        elif body:
            params.update(urllib.parse.parse_qsl(body.decode()))
        if path.startswith("/api/oauth.v2.access"):
            code = str(params.get("code", ""))
            return next((ws for ws in self.workspaces if code in ws._codes), None)
        token = (authorization[7:].strip() if authorization.lower().startswith("bearer ")
                 else str(params.get("token", "")))
        return next((ws for ws in self.workspaces if token in ws.tokens), None)

    def __enter__(self) -> SlackRouter:
        Thread(target=self._server.serve_forever, daemon=True,
               kwargs={"poll_interval": 0.05}).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Team:
    """One workspace of the test: its stand-in, people and channels, and the key Alice pastes."""

    slack: OAuthSlack
    alice: User
    general: Channel
    security: Channel
    digests: Channel
    key: str

    @property
    def ws(self) -> Workspace:
        return self.slack.ws

    @property
    def token(self) -> str:
        return self.slack.installed_tokens[0]

    def calls_with_token(self, token: str) -> list[str]:
        return [call.method for call in self.slack.calls if call.token == token]

    def dm_texts(self) -> str:
        return " ".join(iter_posted_text(self.slack.dms_to(self.alice)))


def _team(
    team_id: str, name: str, seed: int
) -> tuple[Workspace, User, tuple[Channel, Channel, Channel], str]:
    ws = Workspace(team_id=team_id, name=name, domain=name.lower())
    alice = ws.add_user("alice", email=f"alice@{name.lower()}.test")
    channels = (
        ws.add_channel("general", members=[alice.id, ws.bot.id]),
        ws.add_channel("security", members=[ws.bot.id]),
        ws.add_channel("leak-digest", members=[ws.bot.id]),
    )
    ws.add_user("secops", email=f"secops@{name.lower()}.test")  # LEAKWATCH_ADMINS
    return ws, alice, channels, fake_secret("groq_api_key", seed=seed)


@dataclass
class Running:
    bot: BotService
    a: Team
    b: Team
    settings: Settings

    @property
    def workspaces(self) -> InstalledWorkspaces:
        assert self.bot.workspaces is not None
        return self.bot.workspaces

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.http_port}/slack/events"

    def sender(self, team: Team) -> SignedSender:
        return SignedSender(self.events_url, SIGNING_SECRET, team.slack)

    def poll(self) -> None:
        """The scheduler's "slack" poll job, run now."""
        job = self.bot.scheduler.get_job("poll-slack")
        assert job is not None
        job.func()

    def secret_of(self, team: Team) -> models.Secret:
        with self.bot.db.session() as session:
            secret = session.scalars(
                sa.select(models.Secret).where(models.Secret.workspace == team.ws.team_id)
            ).one()
            session.expunge(secret)
            return secret


@pytest.fixture
def running(database_url: str, tmp_path: Path) -> Iterator[Running]:
    ws_a, alice_a, channels_a, key_a = _team("T0ALPHA", "Alpha", seed=1)
    ws_b, alice_b, channels_b, key_b = _team("T0BRAVO", "Bravo", seed=2)
    assert alice_a.id == alice_b.id and channels_a[0].id == channels_b[0].id  # see the docstring
    slack_a = OAuthSlack(ws_a, CLIENT_ID, CLIENT_SECRET)
    slack_b = OAuthSlack(ws_b, CLIENT_ID, CLIENT_SECRET)
    with slack_a, slack_b, SlackRouter(slack_a, slack_b) as router:
        settings = load_settings({
            "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "LEAKWATCH_TOKEN_KEY": "a passphrase only the operator knows",
            "SLACK_API_URL": router.api_url,
            "DATABASE_URL": database_url,
            "LEAKWATCH_DATA_DIR": str(tmp_path),
            "LEAKWATCH_SECURITY_CHANNEL": "#security",  # a name: a different id in each
            "LEAKWATCH_DIGEST_CHANNEL": "#leak-digest",
            "SLACK_POLL_INTERVAL": "3600",  # the test runs the poll job itself
            "LEAKWATCH_ADMINS": next(u.id for u in ws_a.users.values() if u.name == "secops"),
        })
        bot = BotService(settings)
        bot.start(http_port=0, http_host="127.0.0.1")
        bot.scheduler.pause()  # the test runs every job when it wants, not the clock
        try:
            base = f"http://127.0.0.1:{bot.http_port}"
            for slack in (slack_a, slack_b):
                _install(base, slack)
            a = Team(slack_a, alice_a, *channels_a, key_a)
            b = Team(slack_b, alice_b, *channels_b, key_b)
            yield Running(bot, a, b, settings)
        finally:
            bot.stop()


def _post_keys(running: Running) -> None:
    for team in (running.a, running.b):
        team.ws.post(team.general, team.alice, f"GROQ_API_KEY={team.key}")


def _next_monday(moment: datetime, at: time) -> datetime:
    day = moment.date() + timedelta(days=7 - moment.weekday())
    return datetime.combine(day, at, tzinfo=UTC)


def test_both_workspaces_are_installed_with_their_own_tokens(running: Running) -> None:
    installed = running.workspaces.installed()
    assert [(w.team_id, w.client.token) for w in installed] == [
        ("T0ALPHA", running.a.token),
        ("T0BRAVO", running.b.token),
    ]
    assert running.bot.scheduler.get_job("poll-slack") is not None


def test_a_poll_dms_each_poster_with_their_own_workspace_token(running: Running) -> None:
    _post_keys(running)
    running.poll()

    a, b = running.a, running.b
    assert len(a.slack.dms_to(a.alice)) == 1 and len(b.slack.dms_to(b.alice)) == 1
    # Each DM names that workspace's key, never the other's.
    assert mask(a.key) in a.dm_texts() and mask(b.key) not in a.dm_texts()
    assert mask(b.key) in b.dm_texts() and mask(a.key) not in b.dm_texts()
    assert a.key not in a.dm_texts() and b.key not in b.dm_texts()
    # Every call at each workspace came with its own token: none with the other's, none empty.
    for team, other in ((a, b), (b, a)):
        assert {call.token for call in team.slack.calls} <= {team.token}
        assert team.calls_with_token(other.token) == []
    with running.bot.db.session() as session:
        rows = session.execute(
            sa.select(models.Notification.workspace, models.Notification.recipient,
                      models.Notification.status)
        ).all()
    sent = {(workspace, recipient) for workspace, recipient, status in rows if status == "sent"}
    assert len(rows) == len(sent) and {w for w, _ in sent} == {"T0ALPHA", "T0BRAVO"}
    for team, other in ((a, b), (b, a)):  # a high-risk key: each "#security" hears of its own
        assert (team.ws.team_id, "security") in sent
        alerts = " ".join(iter_posted_text(team.slack.posted_in(team.security)))
        assert mask(team.key) in alerts and mask(other.key) not in alerts


def test_a_reinstalled_workspace_is_read_with_its_new_token(running: Running) -> None:
    a = running.a
    first = running.workspaces.get("T0ALPHA")
    assert first is not None and first.client.token == a.token
    _install(f"http://127.0.0.1:{running.bot.http_port}", a.slack)  # e.g. to grant a new scope
    old, new = a.slack.installed_tokens
    calls_with_old = len(a.calls_with_token(old))

    a.ws.post(a.general, a.alice, f"GROQ_API_KEY={a.key}")
    running.poll()

    again = running.workspaces.get("T0ALPHA")
    assert again is not None and again.client.token == new and again.source.client is not None
    assert again.source.client.token == new and again.notifier.client.token == new
    assert len(a.slack.dms_to(a.alice)) == 1
    assert len(a.calls_with_token(old)) == calls_with_old  # the replaced token is not used
    assert [call.token for call in a.slack.calls_to("chat.postMessage")] == [new, new]


def test_one_workspace_outbox_is_never_sent_with_the_other_token(running: Running) -> None:
    a, b = running.a, running.b
    a.ws.post(a.general, a.alice, f"GROQ_API_KEY={a.key}")
    # Bravo's poll alone queues nothing for Alpha; Alpha's row waits for Alpha's notifier.
    bravo = running.workspaces.get("T0BRAVO")
    alpha = running.workspaces.get("T0ALPHA")
    assert bravo is not None and alpha is not None
    from bot.polling import poll_source

    report = poll_source(running.bot.db, alpha.source, running.bot.detector, workspace="T0ALPHA")
    assert report.notifications == 2  # Alice's DM and the security channel's alert
    assert bravo.notifier.send_pending() == 0  # Bravo's token does not touch Alpha's rows
    assert b.slack.calls_to("chat.postMessage") == [] and b.slack.dms_to(b.alice) == []

    assert running.workspaces.send_pending() == 2
    assert len(a.slack.dms_to(a.alice)) == 1 and len(a.slack.posted_in(a.security)) == 1
    assert all(call.token == a.token for call in a.slack.calls_to("chat.postMessage"))
    assert b.slack.dms_to(b.alice) == []  # Alice has the same user id in Bravo: still nothing


def test_reminders_go_out_per_workspace(running: Running) -> None:
    _post_keys(running)
    running.poll()
    later = datetime.now(UTC) + timedelta(hours=25)
    queued = queue_reminders_and_send(running.bot.db, running.workspaces, running.settings,
                                      now=later)
    assert queued == 2
    for team, other in ((running.a, running.b), (running.b, running.a)):
        dms = team.slack.dms_to(team.alice)
        assert len(dms) == 2  # the alert, then one reminder
        reminder = " ".join(iter_posted_text(dms[1:]))
        assert mask(team.key) in reminder and mask(other.key) not in reminder
        assert all(c.token == team.token for c in team.slack.calls_to("chat.postMessage"))


def test_the_digest_is_posted_once_per_workspace_with_only_its_own_findings(
    running: Running,
) -> None:
    _post_keys(running)
    running.poll()
    monday = _next_monday(datetime.now(UTC), time(9, 30))  # its digest covers this week

    first = post_due_digests(running.workspaces, running.bot.db, running.settings, now=monday)
    assert {team: post and post.outcome for team, post in first.items()} == {
        "T0ALPHA": "posted", "T0BRAVO": "posted"
    }
    for team, other in ((running.a, running.b), (running.b, running.a)):
        [digest] = team.slack.posted_in(team.digests)  # "#leak-digest" found in each workspace
        shown = " ".join(iter_posted_text([digest]))
        assert "1 new, 1 open" in digest.text  # its own key, not both
        assert mask(team.key) in shown and mask(other.key) not in shown
        assert f"{other.ws.domain}.slack.com" not in shown  # no link into the other workspace
        assert all(c.token == team.token for c in team.slack.calls_to("chat.postMessage"))

    # The hourly catch-up and a restart's catch-up: nothing more in either workspace.
    again = post_due_digests(running.workspaces, running.bot.db, running.settings,
                             now=monday + timedelta(hours=1))
    assert {post and post.outcome for post in again.values()} == {"already_claimed"}
    for team in (running.a, running.b):
        assert len(team.slack.posted_in(team.digests)) == 1
    with running.bot.db.session() as session:
        claimed = session.execute(
            sa.select(models.Digest.workspace, models.Digest.channel)
            .where(models.Digest.posted_at.is_not(None))
            .order_by(models.Digest.workspace)
        ).all()
    assert [tuple(row) for row in claimed] == [
        ("T0ALPHA", "#leak-digest"), ("T0BRAVO", "#leak-digest")
    ]


def test_uninstalling_one_workspace_stops_its_polls_and_the_other_goes_on(
    running: Running,
) -> None:
    a, b = running.a, running.b
    b_token = b.token
    reply = running.sender(b).event({"type": "app_uninstalled", "event_ts": "1800000000.000100"})
    assert reply.status == 200
    b.slack.revoked.add(b_token)  # Slack revokes the token as the app is uninstalled
    assert a.slack.wait_for(
        lambda: [w.team_id for w in running.workspaces.installed()] == ["T0ALPHA"], timeout=10
    )
    calls_before = len(b.calls_with_token(b_token))

    _post_keys(running)
    running.poll()

    assert len(a.slack.dms_to(a.alice)) == 1
    assert b.slack.dms_to(b.alice) == []
    assert len(b.calls_with_token(b_token)) == calls_before  # Bravo is not read any more
    with running.bot.db.session() as session:
        workspaces = session.scalars(sa.select(models.Secret.workspace)).all()
    assert workspaces == ["T0ALPHA"]


def test_a_click_from_one_workspace_cannot_touch_the_other_workspace_finding(
    running: Running,
) -> None:
    _post_keys(running)
    running.poll()
    a, b = running.a, running.b
    bravo_finding = running.secret_of(b)

    # Alice of Alpha (the same user id as Bravo's poster) clicks "I rotated it" on Bravo's id.
    reply = running.sender(a).block_actions(
        a.alice, action_id=blocks.ACTION_ROTATED, value=str(bravo_finding.id), channel="D0"
    )
    assert reply.status == 200
    assert a.slack.wait_for(lambda: a.slack.responses, timeout=10)
    [(_, answer)] = a.slack.responses
    assert answer.get("response_type") == "ephemeral"
    assert answer.get("text") == blocks.refusal_text(bravo_finding.id)

    # The same through the "Not a secret" modal.
    running.sender(a).view_submission(
        a.alice,
        callback_id=blocks.VIEW_NOT_SECRET,
        private_metadata=str(bravo_finding.id),
        values={blocks.REASON_BLOCK: {blocks.REASON_INPUT: {"type": "plain_text_input",
                                                           "value": "only a test value"}}},
    )
    refusal = blocks.refusal_text(bravo_finding.id)
    assert a.slack.wait_for(lambda: refusal in a.dm_texts(), timeout=10)

    def refusals() -> list[tuple[str, str, Any]]:
        with running.bot.db.session() as session:
            rows = session.execute(
                sa.select(models.AuditEvent.workspace, models.AuditEvent.action,
                          models.AuditEvent.detail)
                .where(models.AuditEvent.action.like("refused:%"))
                .order_by(models.AuditEvent.id)
            ).all()
            return [(row[0], row[1], row[2]) for row in rows]

    assert a.slack.wait_for(lambda: len(refusals()) == 2, timeout=10)
    assert refusals() == [
        ("T0BRAVO", "refused:rotated", {"from_workspace": "T0ALPHA"}),
        ("T0BRAVO", "refused:not_a_secret", {"from_workspace": "T0ALPHA"}),
    ]
    assert running.secret_of(b).status == "open"
    assert b.slack.calls_to("chat.update") == []  # Bravo's DM was not touched either

    # Bravo's own Alice may: the refusal was the workspace, not the person.
    running.sender(b).block_actions(
        b.alice, action_id=blocks.ACTION_ROTATED, value=str(bravo_finding.id), channel="D0"
    )
    assert b.slack.wait_for(lambda: running.secret_of(b).status == "rotated", timeout=10)
    assert running.secret_of(a).status == "open"


def test_socket_mode_is_refused_with_many_workspaces(tmp_path: Path) -> None:
    ws = Workspace(team_id="T0ALPHA", name="Alpha", domain="alpha")
    with OAuthSlack(ws, CLIENT_ID, CLIENT_SECRET) as slack:
        settings = load_settings({
            "SLACK_CLIENT_ID": CLIENT_ID,
            "SLACK_CLIENT_SECRET": CLIENT_SECRET,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "LEAKWATCH_TOKEN_KEY": "a passphrase only the operator knows",
            "SLACK_APP_TOKEN": "xapp-for-one-workspace",
            "SLACK_API_URL": slack.api_url,
            "LEAKWATCH_DATA_DIR": str(tmp_path),
        })
        bot = BotService(settings)
        try:
            with pytest.raises(ConfigError, match="Socket Mode serves one workspace"):
                bot.start(socket_mode=True)
            assert slack.calls == []  # nothing was sent anywhere, with any token
        finally:
            bot.stop()


def test_an_admin_scan_reads_that_workspace_with_its_own_token(running: Running) -> None:
    a, b = running.a, running.b
    _post_keys(running)
    admin = next(u for u in a.ws.users.values() if u.name == "secops")
    reply = running.sender(a).slash_command("/leakwatch", "scan #general", user=admin.id)
    assert reply.status == 200
    assert a.slack.wait_for(lambda: len(a.slack.dms_to(a.alice)) == 1, timeout=15)
    assert b.slack.dms_to(b.alice) == []  # only the workspace that asked was read
    history = [c for c in a.slack.calls_to("conversations.history") if c.error is None]
    assert history and all(call.token == a.token for call in history)
    assert not [c for c in b.slack.calls if c.method == "conversations.history"]
