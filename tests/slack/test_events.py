"""Real-time events over HTTP: signed requests from the stand-in to the Bolt app, DMs back."""

from __future__ import annotations

import threading
import time

from bot.detection.fakes import fake_secret
from tests.slack.conftest import Bot


def wait_dms(bot: Bot, count: int, timeout: float = 5.0) -> bool:
    return bot.slack.wait_for(lambda: len(bot.slack.dms_to(bot.alice)) >= count, timeout)


def settle(bot: Bot, seconds: float = 0.5) -> None:
    """Give listeners that might (wrongly) post a second DM the time to do it."""
    time.sleep(seconds)


def test_url_verification_and_signature_checks(bot: Bot) -> None:
    answer = bot.sender.url_verification("the-challenge")
    assert answer.status == 200 and "the-challenge" in answer.body
    event = {"type": "message", "channel": bot.general.id, "user": bot.alice.id,
             "text": "hello", "ts": "1760000100.000100"}
    assert bot.sender.event(event, signature="v0=" + "0" * 64).status == 401
    stale = int(time.time()) - 6 * 60  # outside Slack's five-minute window
    assert bot.sender.event(event, timestamp=stale).status == 401


def test_new_message_with_a_key_sends_one_dm(bot: Bot) -> None:
    key = fake_secret("openai_project_key")
    msg = bot.ws.post(bot.general, bot.alice, f"try this: `{key}`")
    started = time.monotonic()
    answer = bot.sender.event(bot.ws.message_event(bot.general, msg.ts))
    assert answer.status == 200 and time.monotonic() - started < 3.0
    assert wait_dms(bot, 1)
    settle(bot)
    texts = bot.dm_texts(bot.alice)
    assert len(bot.slack.dms_to(bot.alice)) == 1
    assert not any(key in t for t in texts)  # masked, never the key
    occurrence = bot.occurrences()[0]
    assert occurrence.item_id == f"{bot.general.id}:{msg.ts}"
    assert occurrence.unit_name == "#general" and occurrence.author == bot.alice.id


def test_retried_event_gives_one_dm(bot: Bot) -> None:
    key = fake_secret("anthropic_api_key")
    msg = bot.ws.post(bot.general, bot.alice, key)
    event = bot.ws.message_event(bot.general, msg.ts)
    answers = []

    def deliver(retry: int | None) -> None:
        answers.append(bot.sender.event(event, event_id="Ev0RETRY01", retry_num=retry).status)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in (None, 1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200, 200, 200, 200]
    assert wait_dms(bot, 1)
    settle(bot)
    assert len(bot.slack.dms_to(bot.alice)) == 1
    assert len(bot.occurrences()) == 1


def test_event_then_poll_of_the_same_message_gives_one_dm(bot: Bot) -> None:
    key = fake_secret("github_classic_pat")
    msg = bot.ws.post(bot.general, bot.alice, f"token {key}")
    bot.sender.event(bot.ws.message_event(bot.general, msg.ts))
    assert wait_dms(bot, 1)
    report = bot.poll()
    assert report.documents >= 1 and report.findings == 0
    settle(bot)
    assert len(bot.slack.dms_to(bot.alice)) == 1


def test_poll_then_event_of_the_same_message_gives_one_dm(bot: Bot) -> None:
    key = fake_secret("stripe_secret_key")
    msg = bot.ws.post(bot.general, bot.alice, key)
    assert bot.poll().findings == 1
    assert len(bot.slack.dms_to(bot.alice)) == 1
    bot.sender.event(bot.ws.message_event(bot.general, msg.ts))
    settle(bot, 1.0)
    assert len(bot.slack.dms_to(bot.alice)) == 1


def test_edit_that_adds_a_key_is_found_and_one_that_removes_it_marks_removed(bot: Bot) -> None:
    msg = bot.ws.post(bot.general, bot.alice, "no key yet")
    bot.sender.event(bot.ws.message_event(bot.general, msg.ts))
    key = fake_secret("openai_project_key", seed=3)
    bot.sender.event(bot.ws.edit(bot.general, msg.ts, f"oops {key}"))
    assert wait_dms(bot, 1)
    assert bot.occurrences()[0].removed_at is None
    bot.sender.event(bot.ws.edit(bot.general, msg.ts, "oops [removed]"))
    assert bot.slack.wait_for(lambda: bot.occurrences()[0].removed_at is not None)
    settle(bot)
    assert len(bot.slack.dms_to(bot.alice)) == 1


def test_deletion_marks_the_occurrence_removed(bot: Bot) -> None:
    key = fake_secret("aws_access_key")
    f = bot.ws.add_file(bot.alice, "creds.txt", f"aws_access_key_id = {key}")
    msg = bot.ws.post(bot.general, bot.alice, "see file", files=[f])
    bot.sender.event(bot.ws.message_event(bot.general, msg.ts))  # a file_share event
    assert wait_dms(bot, 1)
    occurrence = bot.occurrences()[0]
    assert occurrence.item_id == f"{bot.general.id}:{msg.ts}:{f.id}"
    bot.sender.event(bot.ws.delete(bot.general, msg.ts))
    assert bot.slack.wait_for(lambda: bot.occurrences()[0].removed_at is not None)


def test_thread_broadcast_is_found(bot: Bot) -> None:
    parent = bot.ws.post(bot.general, bot.alice, "thread")
    key = fake_secret("openai_project_key", seed=5)
    reply = bot.ws.post(bot.general, bot.alice, key, thread=parent, broadcast=True)
    bot.sender.event(bot.ws.message_event(bot.general, reply.ts))
    assert wait_dms(bot, 1)
    permalink = bot.occurrences()[0].permalink
    assert permalink is not None and f"thread_ts={parent.ts}" in permalink


def test_bot_messages_are_ignored(bot: Bot) -> None:
    deploy = bot.ws.add_user("deploybot", is_bot=True)
    bot.general.members.append(deploy.id)
    for author in (deploy, bot.ws.bot):
        msg = bot.ws.post(bot.general, author, fake_secret("openai_project_key", seed=9))
        assert bot.sender.event(bot.ws.message_event(bot.general, msg.ts)).status == 200
    settle(bot, 1.0)
    assert bot.occurrences() == []
    assert bot.slack.posted == []


def test_edit_of_a_message_with_a_file_does_not_read_the_file_again(bot: Bot) -> None:
    key = fake_secret("openai_project_key", seed=11)
    f = bot.ws.add_file(bot.alice, "notes.txt", f"OPENAI_API_KEY={key}")
    msg = bot.ws.post(bot.general, bot.alice, "notes", files=[f])
    bot.sender.event(bot.ws.message_event(bot.general, msg.ts))
    assert wait_dms(bot, 1)
    bot.sender.event(bot.ws.edit(bot.general, msg.ts, "notes (edited)"))
    assert bot.slack.wait_for(lambda: len(bot.slack.calls_to("auth.test")) >= 1)
    settle(bot)
    assert len(bot.slack.calls_to("files.download")) == 1
    assert bot.occurrences()[0].removed_at is None  # the file still holds the key
    assert len(bot.slack.dms_to(bot.alice)) == 1


def test_deleted_thread_parent_left_as_tombstone_marks_removed(bot: Bot) -> None:
    key = fake_secret("openai_project_key", seed=13)
    parent = bot.ws.post(bot.general, bot.alice, f"thread with {key}")
    bot.ws.post(bot.general, bot.alice, "a reply", thread=parent)
    bot.sender.event(bot.ws.message_event(bot.general, parent.ts))
    assert wait_dms(bot, 1)
    previous = bot.ws.message_event(bot.general, parent.ts)
    tombstone = {"type": "message", "subtype": "message_changed", "hidden": True,
                 "channel": bot.general.id, "channel_type": "channel",
                 "ts": "1760009999.000100", "event_ts": "1760009999.000100",
                 "message": {"type": "message", "subtype": "tombstone", "hidden": True,
                             "text": "This message was deleted.", "ts": parent.ts,
                             "thread_ts": parent.ts, "reply_count": 1},
                 "previous_message": previous}
    bot.sender.event(tombstone)
    assert bot.slack.wait_for(lambda: bot.occurrences()[0].removed_at is not None)
