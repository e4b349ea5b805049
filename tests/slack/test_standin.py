"""The stand-in Slack answers the real WebClient as Slack documents it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.standins.slack import LOGIN_PAGE, SignedSender, SlackStandin, Workspace


@pytest.fixture
def ws() -> Workspace:
    return Workspace()


@pytest.fixture
def slack(ws: Workspace) -> Iterator[SlackStandin]:
    with SlackStandin(ws) as server:
        yield server


def client(slack: SlackStandin, **kwargs: object) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url, **kwargs)  # type: ignore[arg-type]


def test_history_pages_newest_first_with_cursor(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    posted = [ws.post(general, alice, f"message {i}") for i in range(7)]
    web = client(slack)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        reply = web.conversations_history(channel=general.id, limit=3, cursor=cursor)
        pages += 1
        seen += [m["ts"] for m in reply["messages"]]
        cursor = reply["response_metadata"]["next_cursor"]
        assert reply["has_more"] == bool(cursor)
        if not cursor:
            break
    assert pages == 3
    assert seen == [m.ts for m in reversed(posted)]
    window = web.conversations_history(channel=general.id, oldest=posted[4].ts)
    assert [m["text"] for m in window["messages"]] == ["message 6", "message 5"]
    inclusive = web.conversations_history(channel=general.id, oldest=posted[4].ts, inclusive=True)
    assert len(inclusive["messages"]) == 3


def test_threads_and_files(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    parent = ws.post(general, alice, "parent")
    ws.post(general, alice, "reply one", thread=parent)
    f = ws.add_file(alice, "notes.txt", "file body")
    ws.post(general, alice, "reply two", thread=parent, files=[f])
    web = client(slack)
    history = web.conversations_history(channel=general.id)["messages"]
    assert [m["text"] for m in history] == ["parent"]
    assert history[0]["reply_count"] == 2
    replies = web.conversations_replies(channel=general.id, ts=parent.ts)["messages"]
    assert [m["text"] for m in replies] == ["parent", "reply one", "reply two"]
    url = replies[2]["files"][0]["url_private_download"]
    import urllib.request

    good = urllib.request.Request(url, headers={"Authorization": f"Bearer {slack.bot_token}"})
    with urllib.request.urlopen(good) as answer:
        assert answer.read() == b"file body"
    with urllib.request.urlopen(url) as answer:  # no token: the login page, status 200
        assert answer.status == 200 and answer.read() == LOGIN_PAGE

    ws.bot_replies_error = "missing_scope"
    with pytest.raises(SlackApiError) as refused:
        web.conversations_replies(channel=general.id, ts=parent.ts)
    assert refused.value.response["error"] == "missing_scope"


def test_errors_as_slack_returns_them(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    outside = ws.add_channel("outside", members=[alice])
    hidden = ws.add_channel("hidden", private=True, members=[alice])
    web = client(slack)
    for channel, error in ((outside.id, "not_in_channel"), (hidden.id, "channel_not_found"),
                           ("C404", "channel_not_found")):
        with pytest.raises(SlackApiError) as failed:
            web.conversations_history(channel=channel)
        assert failed.value.response["error"] == error
    with pytest.raises(SlackApiError) as bad:
        WebClient(token="not-a-token", base_url=slack.api_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    slack.scopes[slack.bot_token].discard("users:read")
    with pytest.raises(SlackApiError) as scope:
        web.users_info(user=alice.id)
    assert scope.value.response["error"] == "missing_scope"


def test_429_burst_is_retried_by_the_sdk_handler(ws: Workspace, slack: SlackStandin) -> None:
    general = ws.add_channel("general", members=[ws.bot])
    slack.fail("conversations.history", times=2, status=429, retry_after=1)
    with pytest.raises(SlackApiError) as limited:
        client(slack).conversations_history(channel=general.id)
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["retry-after"] == "1"
    web = client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    started = time.monotonic()
    assert web.conversations_history(channel=general.id)["ok"]
    assert time.monotonic() - started >= 1.0  # waited out Retry-After
    assert [c.status for c in slack.calls_to("conversations.history")] == [429, 429, 200]


def test_rate_tier_and_restricted_history(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    for i in range(20):
        ws.post(general, alice, f"m{i}")
    ws.restricted_history = True
    web = client(slack)
    page = web.conversations_history(channel=general.id, limit=200)
    assert len(page["messages"]) == 15
    with pytest.raises(SlackApiError) as limited:
        web.conversations_history(channel=general.id)
    assert int(limited.value.response.headers["retry-after"]) > 1


def test_dm_post_update_and_what_the_user_sees(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice", email="alice@acme.test")
    gone = ws.add_user("gone", email="gone@acme.test", deleted=True)
    web = client(slack)
    assert web.users_lookupByEmail(email="alice@acme.test")["user"]["id"] == alice.id
    dm = web.conversations_open(users=alice.id)["channel"]["id"]
    block = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    sent = web.chat_postMessage(channel=dm, text="found a key", blocks=[block])
    web.chat_update(channel=dm, ts=sent["ts"], text="rotated")
    assert [p.text for p in slack.dms_to(alice)] == ["rotated"]
    assert slack.dms_to(alice)[0].updates[0]["text"] == "found a key"
    with pytest.raises(SlackApiError) as disabled:
        web.conversations_open(users=gone.id)
    assert disabled.value.response["error"] == "user_disabled"
    link = web.chat_getPermalink(channel=dm, message_ts=sent["ts"])["permalink"]
    assert link.endswith("/p" + sent["ts"].replace(".", ""))


def test_signed_sender_signs_like_slack(ws: Workspace, slack: SlackStandin) -> None:
    from slack_sdk.signature import SignatureVerifier

    sender = SignedSender("http://127.0.0.1:1/", "signing-secret", slack)
    body = sender.event_body({"type": "message", "text": "x", "ts": "1.0"}, "Ev1")
    now = int(time.time())
    verifier = SignatureVerifier("signing-secret")
    assert verifier.is_valid(body, now, sender.sign(body, now))
    assert not verifier.is_valid(body, now - 400, sender.sign(body, now - 400))
