"""Buttons, modals, App Home and /leakwatch: signed requests over real HTTP to the Bolt app,
which talks to the stand-in Slack through the real WebClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from slack_bolt import App

from bot.config import Settings
from bot.detection.fakes import fake_secret
from bot.notify import blocks as b
from bot.notify.notifier import Notifier
from bot.slack_app import actions
from bot.store.models import AuditEvent, Occurrence, Secret
from tests.notify.app_server import BoltServer
from tests.notify.conftest import World, add_finding
from tests.standins.slack import Posted, SignedSender, iter_posted_text


@dataclass
class Ui:
    world: World
    settings: Settings
    sender: SignedSender
    secret_id: int
    dm: Posted
    alert: Posted  # the copy in the security channel
    backfills: list[tuple[str, str]]

    def press(self, user: Any, action_id: str, posted: Posted | None = None, **kw: Any) -> Any:
        posted = posted or self.dm
        return self.sender.block_actions(
            user,
            action_id=action_id,
            value=str(self.secret_id),
            channel=posted.channel,
            message={"ts": posted.ts, "text": posted.text},
            **kw,
        )

    def secret(self) -> Secret:
        with self.world.db.session() as session:
            secret = session.get(Secret, self.secret_id)
            assert secret is not None
            return secret

    def audit(self) -> list[str]:
        with self.world.db.session() as session:
            return [
                f"{e.actor}:{e.action}"
                for e in session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))
            ]

    def ephemerals(self) -> list[dict[str, Any]]:
        return [
            json.loads(next(iter(p))) if len(p) == 1 and next(iter(p)).startswith("{") else dict(p)
            for _, p in self.world.slack.responses
        ]


def text(posted: Posted) -> str:
    return "\n".join(iter_posted_text([posted]))


def wait(world: World, predicate: Any) -> None:
    assert world.slack.wait_for(predicate, timeout=5), "the app did not act in time"


def _ui(world: World, admin_token: bool) -> Iterator[Ui]:
    slack_settings = world.settings.slack
    assert slack_settings is not None
    if admin_token:
        from dataclasses import replace

        slack_settings = replace(slack_settings, admin_token=world.slack.admin_token)
    settings = world.with_settings(slack=slack_settings)
    message = world.ws.post(world.general, world.alice, "here is the key, do not share")
    secret_id, _ = add_finding(
        world.db,
        author=world.alice.id,
        unit=world.general.id,
        item_id=message.ts,
        permalink=f"https://acme.slack.com/archives/{world.general.id}/p{message.ts.replace('.', '')}",  # noqa: E501
    )
    admin_client = world.admin_client() if admin_token else None
    Notifier(world.client(), world.db, settings, admin_client).send_pending()
    app = App(signing_secret="test-signing-secret", client=world.client())
    backfills: list[tuple[str, str]] = []

    def backfill(workspace: str, channel: str) -> str:
        backfills.append((workspace, channel))
        return f"Scanned {channel}: 0 new findings."

    actions.register(app, world.db, settings, backfill=backfill)
    with BoltServer(app) as server:
        sender = SignedSender(server.url, "test-signing-secret", world.slack)
        (dm,) = world.slack.dms_to(world.alice)
        (alert,) = world.slack.posted_in(world.security)
        yield Ui(world, settings, sender, secret_id, dm, alert, backfills)


@pytest.fixture
def ui(world: World) -> Iterator[Ui]:
    yield from _ui(world, admin_token=False)


@pytest.fixture
def ui_admin_token(world: World) -> Iterator[Ui]:
    yield from _ui(world, admin_token=True)


def test_poster_marks_rotated_and_both_messages_update_in_place(ui: Ui) -> None:
    response = ui.press(ui.world.alice, b.ACTION_ROTATED)
    assert response.status == 200
    wait(ui.world, lambda: ui.dm.updates and ui.alert.updates)
    assert "Rotated" in text(ui.dm) and f"<@{ui.world.alice.id}>" in text(ui.dm)
    assert "I rotated it" not in text(ui.dm) and "Reopen" in text(ui.dm)
    assert "Rotated" in text(ui.alert)
    secret = ui.secret()
    assert secret.status == "rotated" and secret.status_by == ui.world.alice.id
    assert f"{ui.world.alice.id}:status:rotated" in ui.audit()
    assert len(ui.world.slack.dms_to(ui.world.alice)) == 1  # updated, not re-posted


def test_someone_else_is_refused_ephemerally_and_nothing_changes(ui: Ui) -> None:
    response = ui.press(ui.world.bob, b.ACTION_ROTATED, posted=ui.alert)
    assert response.status == 200
    wait(ui.world, lambda: ui.world.slack.responses)
    (answer,) = ui.ephemerals()
    assert answer["response_type"] == "ephemeral" and "Only the person who posted" in answer["text"]
    assert ui.secret().status == "open" and not ui.alert.updates
    assert f"{ui.world.bob.id}:refused:rotated" in ui.audit()
    ui.press(ui.world.bob, b.ACTION_NOT_SECRET, posted=ui.alert)
    wait(ui.world, lambda: len(ui.world.slack.responses) == 2)
    assert ui.world.slack.views == {}  # no modal for someone who may not act


def test_a_security_admin_from_the_user_group_may_act(ui: Ui) -> None:
    ui.press(ui.world.sec_admin, b.ACTION_ROTATED, posted=ui.alert)
    wait(ui.world, lambda: ui.alert.updates)
    assert ui.secret().status_by == ui.world.sec_admin.id
    assert ui.world.slack.calls_to("usergroups.users.list")
    assert f"<@{ui.world.sec_admin.id}>" in text(ui.dm)


def test_not_a_secret_asks_a_reason_in_a_modal(ui: Ui) -> None:
    ui.press(ui.world.alice, b.ACTION_NOT_SECRET)
    wait(ui.world, lambda: ui.world.slack.views)
    (view,) = ui.world.slack.views.values()
    assert view["callback_id"] == b.VIEW_NOT_SECRET and view["private_metadata"] == str(
        ui.secret_id
    )

    def submit(reason: str) -> Any:
        return ui.sender.view_submission(
            ui.world.alice,
            callback_id=b.VIEW_NOT_SECRET,
            private_metadata=view["private_metadata"],
            values={
                b.REASON_BLOCK: {b.REASON_INPUT: {"type": "plain_text_input", "value": reason}}
            },
        )

    too_short = submit(" ")
    assert too_short.status == 200 and too_short.json()["response_action"] == "errors"
    assert ui.secret().status == "open"
    assert submit("a <revoked> test key from the docs").status == 200
    wait(ui.world, lambda: ui.dm.updates)
    secret = ui.secret()
    assert (
        secret.status == "not_a_secret"
        and secret.status_reason == "a <revoked> test key from the docs"
    )
    assert "Not a secret" in text(ui.dm) and "a &lt;revoked&gt; test key" in text(ui.dm)
    assert f"{ui.world.alice.id}:status:not_a_secret" in ui.audit()


def test_a_key_typed_into_the_reason_is_not_stored_or_shown(ui: Ui) -> None:
    key = fake_secret("github_classic_pat", seed=7)
    ui.sender.view_submission(
        ui.world.alice,
        callback_id=b.VIEW_NOT_SECRET,
        private_metadata=str(ui.secret_id),
        values={
            b.REASON_BLOCK: {
                b.REASON_INPUT: {"type": "plain_text_input", "value": f"the real one is {key}"}
            }
        },
    )
    wait(ui.world, lambda: ui.dm.updates)
    assert key not in str(ui.secret().status_reason) and key not in text(ui.dm)
    assert "the real one is [REDACTED]" in text(ui.dm)


def test_rotation_steps_open_the_playbook_modal(ui: Ui) -> None:
    ui.press(ui.world.bob, b.ACTION_STEPS, posted=ui.alert)  # steps hold no secret: anyone
    wait(ui.world, lambda: ui.world.slack.views)
    (view,) = ui.world.slack.views.values()
    steps = json.dumps(view)
    assert view["callback_id"] == b.VIEW_STEPS and "Rotate it" in steps
    assert (
        "https://platform.openai.com/api-keys" in steps
        and "https://platform.openai.com/usage" in steps
    )
    wait(ui.world, lambda: f"{ui.world.bob.id}:opened_rotation_steps" in ui.audit())


def test_open_keys_click_is_acked_and_audited(ui: Ui) -> None:
    assert ui.press(ui.world.alice, b.ACTION_OPEN_KEYS).status == 200
    wait(ui.world, lambda: f"{ui.world.alice.id}:opened_keys_page" in ui.audit())


def test_without_an_admin_token_the_dm_explains_how_to_delete(ui: Ui) -> None:
    assert b.ACTION_DELETE not in json.dumps(ui.dm.blocks)
    assert "Delete message" in text(ui.dm)


def test_delete_the_message_with_the_admin_token(ui_admin_token: Ui) -> None:
    ui = ui_admin_token
    assert b.ACTION_DELETE in json.dumps(ui.dm.blocks)
    ui.press(ui.world.bob, b.ACTION_DELETE)
    wait(ui.world, lambda: ui.world.slack.responses)
    assert ui.world.slack.calls_to("chat.delete") == []  # refused before any delete
    ui.press(ui.world.alice, b.ACTION_DELETE)
    wait(ui.world, lambda: len(ui.world.slack.responses) == 2)
    assert "Deleted" in ui.ephemerals()[-1]["text"]
    assert ui.world.ws.channel(ui.world.general).messages == []
    (call,) = ui.world.slack.calls_to("chat.delete")
    assert call.token == ui.world.slack.admin_token
    with ui.world.db.session() as session:
        (occurrence,) = session.scalars(sa.select(Occurrence)).all()
        assert occurrence.removed_at is not None
    assert f"{ui.world.alice.id}:deleted_message" in ui.audit()
    wait(ui.world, lambda: ui.dm.updates)
    assert "original has been deleted" in text(ui.dm)


def test_app_home_lists_own_findings_and_admins_see_the_overview(ui: Ui) -> None:
    for user in (ui.world.alice, ui.world.bob, ui.world.sec_admin):
        event = {
            "type": "app_home_opened",
            "user": user.id,
            "channel": "D0",
            "tab": "home",
            "event_ts": "1760000000.000100",
        }
        assert ui.sender.event(event).status == 200
    wait(ui.world, lambda: len(ui.world.slack.home) == 3)
    alice = json.dumps(ui.world.slack.home[ui.world.alice.id], ensure_ascii=False)
    assert (
        "sk-proj-…9fQa" in alice and b.ACTION_ROTATED in alice and "Security overview" not in alice
    )
    assert "Nothing open" in json.dumps(ui.world.slack.home[ui.world.bob.id], ensure_ascii=False)
    admin = json.dumps(ui.world.slack.home[ui.world.sec_admin.id], ensure_ascii=False)
    assert "Security overview" in admin and "OpenAI 1" in admin and "Oldest open findings" in admin

    ui.press(ui.world.alice, b.ACTION_ROTATED, view=ui.world.slack.home[ui.world.alice.id])
    wait(
        ui.world,
        lambda: (
            "Nothing open" in json.dumps(ui.world.slack.home[ui.world.alice.id], ensure_ascii=False)
        ),
    )
    assert ui.secret().status == "rotated"


def test_slash_command_help_status_and_admin_commands(ui: Ui) -> None:
    def run(user: Any, words: str, replies: int = 1) -> dict[str, Any]:
        before = len(ui.world.slack.responses)
        assert ui.sender.slash_command("/leakwatch", words, user=user).status == 200
        wait(ui.world, lambda: len(ui.world.slack.responses) >= before + replies)
        return ui.ephemerals()[-1]

    assert "/leakwatch status" in run(ui.world.bob, "help")["text"]
    assert "You have 1 open finding." in run(ui.world.alice, "status")["text"]
    assert "no open findings" in run(ui.world.bob, "status")["text"]
    assert run(ui.world.bob, "scan #general")["text"] == "Only security admins can do that."
    assert ui.backfills == []
    assert "Scanned" in run(ui.world.sec_admin, f"scan <#{ui.world.general.id}|general>", 2)["text"]
    assert "Scanned" in run(ui.world.sec_admin, "scan #general", 2)["text"]
    assert ui.backfills == [("T0ACME", ui.world.general.id)] * 2
    preview = run(ui.world.sec_admin, "digest preview")
    assert preview["response_type"] == "ephemeral" and preview["text"].startswith("Preview")
    assert preview["blocks"]
    assert "Workspace: open 1" in run(ui.world.sec_admin, "status")["text"]
    audit = ui.audit()
    assert f"{ui.world.bob.id}:refused:command" in audit
    assert f"{ui.world.sec_admin.id}:command:scan #general" in audit
    assert f"{ui.world.sec_admin.id}:command:digest preview" in audit
