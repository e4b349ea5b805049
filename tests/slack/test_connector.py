"""The Slack connector against the stand-in, through the real WebClient."""

from __future__ import annotations

import pytest

from connectors.base import SourceAuthError, TransientSourceError, UnitError
from connectors.slack import SlackSource, build_client
from tests.slack.conftest import slack_settings
from tests.standins.slack import SlackStandin, Workspace


def read_all(source: SlackSource, cursors: dict[str, str] | None = None) -> dict[str, str]:
    """One poll: every unit's documents; returns item id -> text, updates `cursors`."""
    cursors = {} if cursors is None else cursors
    seen: dict[str, str] = {}
    for unit in source.units():
        for document, cursor in source.documents(unit, cursors.get(unit.id)):
            if document.text:
                seen[document.item_id] = document.text
            if cursor:
                cursors[unit.id] = cursor
    return seen


def test_backfill_reads_channels_threads_and_files(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice", email="alice@acme.test")
    bob = ws.add_user("bob")
    general = ws.add_channel("general", members=[alice, bob, ws.bot])
    private = ws.add_channel("infra", private=True, members=[alice, ws.bot])
    ws.add_channel("not-invited", private=True, members=[alice])
    ws.add_channel("elsewhere", members=[alice])  # public, bot not a member, not joining
    parent = ws.post(general, alice, "deploy notes")
    for i in range(20):
        ws.post(general, bob, f"reply {i}", thread=parent)
    text_file = ws.add_file(alice, "env.txt", "TOKEN=file-content-here")
    image = ws.add_file(alice, "cat.png", b"\x89PNG", mimetype="image/png", filetype="png")
    snippet = ws.add_file(bob, "snip", "snippet body", snippet=True, filetype="python")
    ws.post(general, alice, "files", files=[text_file, image])
    ws.post(private, alice, "private words", files=[snippet])
    for i in range(40):
        ws.post(general, bob, f"chatter {i}")

    source = SlackSource(slack_settings(slack))
    seen = read_all(source)

    assert {u.name for u in source.units()} == {"#general", "#infra"}
    texts = set(seen.values())
    assert {f"reply {i}" for i in range(20)} <= texts
    assert {f"chatter {i}" for i in range(40)} <= texts
    assert "TOKEN=file-content-here" in texts and "snippet body" in texts
    assert not any("PNG" in t for t in texts)
    assert f"{general.id}:{parent.ts}" in seen
    files_ts = general.messages[1].ts
    assert seen[f"{general.id}:{files_ts}:{text_file.id}"] == "TOKEN=file-content-here"
    assert len(seen) == 1 + 20 + 1 + 1 + 40 + 1 + 1


def test_documents_carry_provenance_and_exposure(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    shared = ws.add_channel("partners", shared=True, members=[alice, ws.bot, "U0OTHER"])
    parent = ws.post(shared, alice, "top")
    reply = ws.post(shared, alice, "in thread", thread=parent)
    source = SlackSource(slack_settings(slack))
    unit = next(iter(source.units()))
    documents = [d for d, _ in source.documents(unit, None)]
    by_text = {d.text: d for d in documents}
    top, threaded = by_text["top"], by_text["in thread"]
    assert top.workspace == "T0ACME" and top.unit == shared.id and top.unit_name == "#partners"
    assert top.author == alice.id
    link = f"https://acme.slack.com/archives/{shared.id}/p{parent.ts.replace('.', '')}"
    assert top.permalink == link
    assert threaded.permalink == f"{link[:-16]}{reply.ts.replace('.', '')}" + (
        f"?thread_ts={parent.ts}&cid={shared.id}"
    )
    assert threaded.item_id == f"{shared.id}:{reply.ts}"
    assert top.exposure.audience == 3 and top.exposure.is_public and top.exposure.is_external
    assert top.posted_at is not None and top.posted_at.timestamp() == float(parent.ts)
    assert slack.calls_to("chat.getPermalink") == []


def test_incremental_poll_reads_only_new_messages(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    quiet = ws.add_channel("quiet", members=[alice, ws.bot])
    for i in range(5):
        ws.post(general, alice, f"old {i}")
    ws.post(quiet, alice, "only one")
    source = SlackSource(slack_settings(slack))
    cursors: dict[str, str] = {}
    read_all(source, cursors)
    ws.post(general, alice, "new message")
    slack.reset_calls()
    seen = read_all(source, cursors)
    assert list(seen.values()) == ["new message"]
    slack.reset_calls()
    assert read_all(source, cursors) == {}
    history = slack.calls_to("conversations.history")
    assert len(history) == 2  # one call per idle channel
    assert {c.params["channel"] for c in history} == {general.id, quiet.id}


def test_crash_mid_walk_resumes_without_losing_messages(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    for i in range(50):
        ws.post(general, alice, f"m{i}")
    source = SlackSource(slack_settings(slack, history_page_size=7))
    unit = next(iter(source.units()))
    committed: str | None = None
    first_run: list[str] = []
    for n, (document, cursor) in enumerate(source.documents(unit, None)):
        first_run.append(document.text)
        committed = cursor
        if n == 22:
            break  # the process dies here
    assert committed is not None and "/" in committed
    second = SlackSource(slack_settings(slack, history_page_size=7))
    rest = [d.text for d, c in second.documents(unit, committed)]
    assert set(first_run) | set(rest) == {f"m{i}" for i in range(50)}
    assert len(first_run) + len(rest) <= 50 + 1  # at most the one uncommitted message again
    final = list(second.documents(unit, committed))[-1][1]
    assert final == general.messages[-1].ts


def test_429_storm_is_waited_out(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    ws.post(general, alice, "hello")
    slack.fail("conversations.history", times=3, status=429, retry_after=1)
    source = SlackSource(slack_settings(slack))
    assert list(read_all(source).values()) == ["hello"]
    assert [c.status for c in slack.calls_to("conversations.history")] == [429, 429, 429, 200]


def test_429_beyond_patience_is_transient(ws: Workspace, slack: SlackStandin) -> None:
    general = ws.add_channel("general", members=[ws.bot])
    slack.fail("conversations.history", times=5, status=429, retry_after=0)
    client = build_client(slack_settings(slack))
    client.retry_handlers[1].max_retry_count = 1  # type: ignore[attr-defined]
    source = SlackSource(slack_settings(slack), client=client)
    with pytest.raises(TransientSourceError):
        list(source.documents(next(iter(source.units())), None))
    assert general.id


def test_missing_or_archived_channel_is_a_unit_error(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    gone = ws.add_channel("gone", members=[alice, ws.bot])
    source = SlackSource(slack_settings(slack))
    units = list(source.units())
    del ws.channels[gone.id]
    source.forget_channels()
    with pytest.raises(UnitError) as missing:
        list(source.documents(units[0], None))
    assert missing.value.reason == "channel_not_found"
    archived = ws.add_channel("old", members=[alice, ws.bot], archived=True)
    from connectors.base import Unit

    with pytest.raises(UnitError, match="archived"):
        list(source.documents(Unit(archived.id, "#old"), None))


def test_bad_token_is_an_auth_error(ws: Workspace, slack: SlackStandin) -> None:
    slack.revoked.add(slack.bot_token)
    with pytest.raises(SourceAuthError, match="token_revoked"):
        list(SlackSource(slack_settings(slack)).units())


def test_join_public_channels_when_configured(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    lobby = ws.add_channel("lobby", members=[alice])
    ws.post(lobby, alice, "in the lobby")
    assert read_all(SlackSource(slack_settings(slack))) == {}
    seen = read_all(SlackSource(slack_settings(slack, join_public_channels=True)))
    assert list(seen.values()) == ["in the lobby"]
    assert ws.bot.id in lobby.members


def test_replies_refused_to_bot_token(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot, ws.admin])
    parent = ws.post(general, alice, "parent")
    ws.post(general, alice, "hidden reply", thread=parent)
    ws.bot_replies_error = "missing_scope"
    source = SlackSource(slack_settings(slack))
    assert list(read_all(source).values()) == ["parent"]
    assert any("thread replies" in p for p in source.problems)
    with_admin = SlackSource(slack_settings(slack, admin_token=slack.admin_token))
    assert set(read_all(with_admin).values()) == {"parent", "hidden reply"}


def test_bot_messages_ignored_unless_configured(ws: Workspace, slack: SlackStandin) -> None:
    deploy = ws.add_user("deploybot", is_bot=True)
    general = ws.add_channel("general", members=[deploy, ws.bot])
    ws.post(general, deploy, "from a bot")
    ws.post(general, ws.bot, "from us")
    assert list(read_all(SlackSource(slack_settings(slack))).values()) == []
    scanned = read_all(SlackSource(slack_settings(slack, scan_bot_messages=True)))
    assert list(scanned.values()) == ["from a bot"]


def test_file_login_page_and_size_cap(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    general = ws.add_channel("general", members=[alice, ws.bot])
    big = ws.add_file(alice, "big.log", "x" * 5000)
    small = ws.add_file(alice, "small.txt", "small content")
    ws.post(general, alice, "two files", files=[big, small])
    capped = read_all(SlackSource(slack_settings(slack, file_max_bytes=1000)))
    assert set(capped.values()) == {"two files", "small content"}
    slack.scopes[slack.bot_token].discard("files:read")
    source = SlackSource(slack_settings(slack))
    assert set(read_all(source).values()) == {"two files"}
    assert any("login page" in p for p in source.problems)


def test_the_token_goes_only_to_slack_hosts(ws: Workspace, slack: SlackStandin) -> None:
    source = SlackSource(slack_settings(slack))
    elsewhere = {"id": "F1", "name": "a.txt", "mimetype": "text/plain", "size": 10,
                 "url_private_download": "http://127.0.0.2:9/files-pri/T-F1/a.txt"}
    assert source.read_file(elsewhere) is None
    assert slack.calls_to("files.download") == []


def test_history_calls_are_paced(ws: Workspace, slack: SlackStandin) -> None:
    alice = ws.add_user("alice")
    for name in ("one", "two", "three"):
        ws.add_channel(name, members=[alice, ws.bot])
    waits: list[float] = []
    source = SlackSource(slack_settings(slack, history_pace_seconds=60.0), sleep=waits.append)
    read_all(source)
    assert len(slack.calls_to("conversations.history")) == 3
    assert len(waits) == 2 and all(59.0 < w <= 60.0 for w in waits)
