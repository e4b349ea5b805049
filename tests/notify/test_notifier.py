"""The notifier over real HTTP: slack_sdk's WebClient against the stand-in Slack."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from bot.notify.notifier import MARKER_PREFIX, Notifier, queue_reminders
from bot.store.models import Notification, Secret
from tests.notify.conftest import World, add_finding, later
from tests.standins.slack import iter_posted_text


def rows(world: World) -> list[Notification]:
    with world.db.session() as session:
        return list(session.scalars(sa.select(Notification).order_by(Notification.id)))


def text_of(posted: Any) -> str:
    return "\n".join(iter_posted_text([posted]))


def test_alert_dm_and_security_alert_sent_once(world_any_db: World) -> None:
    w = world_any_db
    secret_id, _ = add_finding(
        w.db,
        author=w.alice.id,
        unit=w.general.id,
        permalink="https://acme.slack.com/archives/C1/p1760000001000100",
    )
    notifier = Notifier(w.client(), w.db, w.settings)
    assert notifier.send_pending() == 2
    assert notifier.send_pending(now=later(minutes=30)) == 0  # nothing is sent twice
    dms = w.slack.dms_to(w.alice)
    assert len(dms) == 1
    dm = text_of(dms[0])
    assert "OpenAI project API key" in dm and "sk-proj-…9fQa" in dm and "#general" in dm
    assert "Open OpenAI keys" in dm and "I rotated it" in dm and "Not a secret" in dm
    security = w.slack.posted_in(w.security)
    assert len(security) == 1 and f"<@{w.alice.id}>" in text_of(security[0])
    with w.db.session() as session:
        fingerprint = session.get(Secret, secret_id).fingerprint  # type: ignore[union-attr]
    assert fingerprint not in json.dumps([dms[0].blocks, security[0].blocks])
    sent = rows(w)
    assert [r.status for r in sent] == ["sent", "sent"]
    assert sent[0].slack_channel == dms[0].channel and sent[0].slack_ts == dms[0].ts
    assert sent[1].slack_channel == w.security.id and sent[1].slack_ts == security[0].ts
    assert dms[0].blocks[0]["block_id"] == f"{MARKER_PREFIX}{sent[0].id}"


def test_further_occurrences_go_into_the_thread_of_the_first_dm(world: World) -> None:
    secret_id, _ = add_finding(world.db, author=world.alice.id, risk_level="medium")
    notifier = Notifier(world.client(), world.db, world.settings)
    notifier.send_pending()
    add_finding(world.db, author=world.alice.id, secret_id=secret_id, unit_name="random")
    add_finding(world.db, author=world.alice.id, secret_id=secret_id, unit_name="dev")
    assert notifier.send_pending() == 2
    dms = world.slack.dms_to(world.alice)
    first, replies = dms[0], dms[1:]
    assert first.thread_ts is None and len(replies) == 2
    assert all(r.thread_ts == first.ts for r in replies)
    assert "seen again in #random" in text_of(replies[0])
    assert "seen again in #dev" in text_of(replies[1])
    assert [r.thread_ts for r in rows(world)] == [None, first.ts, first.ts]


def test_confluence_and_email_authors_are_found_by_email(world: World) -> None:
    add_finding(
        world.db,
        source="confluence",
        author="557058:abc",
        author_email="alice@acme.test",
        unit="OPS",
        unit_name="Operations",
        title="Deploy runbook",
        permalink="https://wiki.acme.test/pages/1",
        risk_level="medium",
    )
    add_finding(
        world.db,
        source="email",
        author="bob@acme.test",
        author_email="bob@acme.test",
        unit="INBOX",
        title="Re: staging access",
        risk_level="medium",
    )
    Notifier(world.client(), world.db, world.settings).send_pending()
    (page,) = world.slack.dms_to(world.alice)
    (mail,) = world.slack.dms_to(world.bob)
    assert "Confluence page *Deploy runbook* (space Operations)" in text_of(page)
    assert "<https://wiki.acme.test/pages/1|Open the page>" in text_of(page)
    assert "email *Re: staging access*" in text_of(mail)
    assert len(world.slack.calls_to("users.lookupByEmail")) == 2


@pytest.mark.parametrize("who", ["deactivated", "bot", "no_slack_account", "unknown"])
def test_unreachable_posters_go_to_the_security_channel(world: World, who: str) -> None:
    if who == "deactivated":
        kwargs: dict[str, Any] = {"author": world.ws.add_user("gone", deleted=True).id}
    elif who == "bot":
        kwargs = {"author": world.ws.add_user("deploybot", is_bot=True).id}
    elif who == "unknown":
        kwargs = {"author": "U0NOTHERE"}
    else:
        kwargs = {"source": "email", "author_email": "contractor@elsewhere.test"}
    add_finding(world.db, risk_level="medium", **kwargs)
    assert Notifier(world.client(), world.db, world.settings).send_pending() == 1
    (posted,) = world.slack.posted_in(world.security)
    assert "Could not tell the poster directly" in text_of(posted)
    assert {
        "deactivated": "deactivated",
        "bot": "is a bot",
        "no_slack_account": "no Slack account",
        "unknown": "not a member of this workspace",
    }[who] in text_of(posted)
    assert all(not p.channel.startswith("D") for p in world.slack.posted)


def test_rate_limits_are_retried_and_the_row_is_sent_once(world: World) -> None:
    add_finding(world.db, author=world.alice.id, risk_level="low")
    world.slack.fail("chat.postMessage", times=2, status=429, retry_after=1)
    assert Notifier(world.client(), world.db, world.settings).send_pending() == 1
    assert len(world.slack.dms_to(world.alice)) == 1
    assert len(world.slack.calls_to("chat.postMessage")) == 3  # two 429s, then the post


def test_a_permanent_error_fails_the_row_and_keeps_the_error_without_the_key(world: World) -> None:
    add_finding(world.db, author=world.alice.id, risk_level="low")
    world.slack.fail("chat.postMessage", error="msg_blocks_too_long")
    assert Notifier(world.client(), world.db, world.settings).send_pending() == 0
    (row,) = rows(world)
    assert row.status == "failed" and row.last_error == "chat.postMessage: msg_blocks_too_long"
    assert "sk-proj" not in (row.last_error or "")


def test_a_transient_error_is_retried_later_in_order(world: World) -> None:
    add_finding(world.db, author=world.alice.id, risk_level="low")
    world.slack.fail("chat.postMessage", times=3, status=503)  # more than the sdk's 2 retries
    notifier = Notifier(world.client(), world.db, world.settings)
    assert notifier.send_pending() == 0
    (row,) = rows(world)
    assert row.status == "pending" and row.last_error == "chat.postMessage: internal_error"
    assert notifier.send_pending() == 0  # not due yet: back-off
    assert notifier.send_pending(now=later(minutes=2)) == 1
    (row,) = rows(world)
    assert row.status == "sent" and row.attempts == 2
    assert len(world.slack.dms_to(world.alice)) == 1


def test_no_security_channel_fails_security_rows_with_a_clear_error(world: World) -> None:
    add_finding(world.db, author=world.alice.id, risk_level="high")
    settings = world.with_settings(security_channel="")
    Notifier(world.client(), world.db, settings).send_pending()
    alert, security = rows(world)
    assert alert.status == "sent"
    assert security.status == "failed" and "LEAKWATCH_SECURITY_CHANNEL" in str(security.last_error)


class Crash(BaseException):
    """The process dies (SIGKILL) at this point."""


def test_a_restart_after_a_crash_between_post_and_record_does_not_resend(world: World) -> None:
    add_finding(world.db, author=world.alice.id, risk_level="low")
    client = world.client()
    real_post = client.chat_postMessage

    def post_then_die(**kwargs: Any) -> Any:
        real_post(**kwargs)
        raise Crash

    client.chat_postMessage = post_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        Notifier(client, world.db, world.settings).send_pending()
    assert len(world.slack.dms_to(world.alice)) == 1
    (row,) = rows(world)
    assert row.status == "pending" and row.slack_ts is None

    restarted = Notifier(world.client(), world.db, world.settings)
    assert restarted.send_pending() == 0  # the lease has not run out: nobody re-sends yet
    assert restarted.send_pending(now=later(minutes=6)) == 1
    (dm,) = world.slack.dms_to(world.alice)  # still exactly one message
    (row,) = rows(world)
    assert row.status == "sent" and row.slack_ts == dm.ts
    assert len(world.slack.calls_to("chat.postMessage")) == 1


def test_a_restart_after_a_crash_before_the_post_sends_it_once(world: World) -> None:
    add_finding(world.db, author=world.alice.id, risk_level="low")
    client = world.client()

    def die(**kwargs: Any) -> Any:
        raise Crash

    client.chat_postMessage = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        Notifier(client, world.db, world.settings).send_pending()
    assert world.slack.dms_to(world.alice) == []
    Notifier(world.client(), world.db, world.settings).send_pending(now=later(minutes=6))
    assert len(world.slack.dms_to(world.alice)) == 1
    assert [r.status for r in rows(world)] == ["sent"]


def test_reminders_then_escalation_with_a_controlled_clock(world: World) -> None:
    secret_id, _ = add_finding(world.db, author=world.alice.id, risk_level="medium")
    notifier = Notifier(world.client(), world.db, world.settings)
    notifier.send_pending()

    def tick(hours: float) -> int:
        now = later(hours=hours)
        with world.db.session() as session:
            queued = queue_reminders(session, now, world.settings)
        notifier.send_pending(now=now)
        return queued

    assert tick(23) == 0
    assert tick(25) == 1
    assert tick(26) == 0  # the same round is queued once
    dms = world.slack.dms_to(world.alice)
    assert len(dms) == 2 and "open for 25 hours" in text_of(dms[1])
    assert world.slack.posted_in(world.security) == []
    assert tick(73) == 2  # round 3 to alice, and the escalation
    (escalation,) = world.slack.posted_in(world.security)
    assert "Still open after 3 days" in text_of(escalation)
    assert len(world.slack.dms_to(world.alice)) == 3
    assert tick(80) == 0

    with world.db.session() as session:
        secret = session.get(Secret, secret_id)
        assert secret is not None
        secret.status = "rotated"
    assert tick(100) == 0
    assert len(world.slack.dms_to(world.alice)) == 3


def test_a_reminder_due_after_the_finding_closed_is_not_sent(world: World) -> None:
    secret_id, _ = add_finding(world.db, author=world.alice.id, risk_level="medium")
    notifier = Notifier(world.client(), world.db, world.settings)
    notifier.send_pending()
    with world.db.session() as session:
        queue_reminders(session, later(hours=25), world.settings)
        secret = session.get(Secret, secret_id)
        assert secret is not None
        secret.status = "not_a_secret"
    notifier.send_pending(now=later(hours=25))
    assert len(world.slack.dms_to(world.alice)) == 1
    reminder = rows(world)[-1]
    assert reminder.kind == "reminder" and reminder.status == "sent" and reminder.slack_ts is None


def test_rows_are_sent_in_the_order_they_were_queued(world: World) -> None:
    names = ["first", "second", "third", "fourth"]
    for name in names:
        add_finding(world.db, author=world.alice.id, risk_level="low", unit_name=name)
    Notifier(world.client(), world.db, world.settings).send_pending()
    posted = [text_of(p) for p in world.slack.dms_to(world.alice)]
    assert [next(n for n in names if f"#{n}" in t) for t in posted] == names


def test_a_regression_alerts_again_in_a_new_dm(world: World) -> None:
    secret_id, _ = add_finding(world.db, author=world.alice.id, risk_level="low")
    notifier = Notifier(world.client(), world.db, world.settings)
    notifier.send_pending()
    _, occurrence_id = add_finding(world.db, author=world.alice.id, secret_id=secret_id)
    with world.db.session() as session:
        row = session.scalar(
            sa.select(Notification).where(Notification.occurrence_id == occurrence_id)
        )
        assert row is not None
        row.kind = "regression"  # what the pipeline queues for a rotated key seen again
    notifier.send_pending()
    _first, again = world.slack.dms_to(world.alice)
    assert again.thread_ts is None and "A key marked rotated was seen again" in text_of(again)


def test_a_security_channel_given_by_name_is_resolved_once(world: World) -> None:
    settings = world.with_settings(security_channel="#security-alerts")
    add_finding(world.db, author=world.alice.id, risk_level="high")
    add_finding(world.db, author=world.alice.id, risk_level="high")
    Notifier(world.client(), world.db, settings).send_pending()
    assert len(world.slack.posted_in(world.security)) == 2
    assert len(world.slack.calls_to("conversations.list")) == 1
    assert {r.slack_channel for r in rows(world) if r.kind == "security_alert"} == {
        world.security.id
    }


def test_without_im_history_a_crash_recovery_posts_again_rather_than_lose_the_alert(
    world: World,
) -> None:
    """The documented trade-off: if the earlier post cannot be looked up, a second DM beats none."""
    world.slack.scopes[world.slack.bot_token].discard("im:history")
    add_finding(world.db, author=world.alice.id, risk_level="low")
    client = world.client()
    real_post = client.chat_postMessage

    def post_then_die(**kwargs: Any) -> Any:
        real_post(**kwargs)
        raise Crash

    client.chat_postMessage = post_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        Notifier(client, world.db, world.settings).send_pending()
    Notifier(world.client(), world.db, world.settings).send_pending(now=later(minutes=6))
    assert len(world.slack.dms_to(world.alice)) == 2
    assert [c.error for c in world.slack.calls_to("conversations.history")] == ["missing_scope"]
    assert [r.status for r in rows(world)] == ["sent"]
