"""Slack markup becomes the text a person reads, so keys inside markup are found."""

from __future__ import annotations

import pytest

from connectors.slack import blocks_to_text, message_text, mrkdwn_to_text

KEY = "abcDEF123_" * 4  # a stand-in for a key: markup must leave it whole


@pytest.mark.parametrize(
    ("markup", "seen"),
    [
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        (f"<https://example.test/?k={KEY}|the docs>", f"the docs (https://example.test/?k={KEY})"),
        ("<https://example.test|example.test>", "example.test"),
        ("<https://example.test>", "https://example.test"),
        ("<mailto:a@b.test|a@b.test>", "a@b.test"),
        ("hi <@U0123ABC>", "hi @U0123ABC"),
        ("hi <@U0123ABC|alice>", "hi @alice"),
        ("see <#C0456|general>", "see #general"),
        ("<!here> <!channel> <!subteam^S01|@oncall>", "@here @channel @oncall"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        (f"```{KEY}```", KEY),
        (f"```\nexport K={KEY}\n```", f"export K={KEY}"),
        (f"key: `{KEY}`", f"key: {KEY}"),
        (f"&lt;{KEY}&gt;", f"<{KEY}>"),
        ("a_b_c *d*", "a_b_c *d*"),  # emphasis markers are kept: keys contain _ and *
    ],
)
def test_mrkdwn(markup: str, seen: str) -> None:
    assert mrkdwn_to_text(markup) == seen


def test_names_resolve_mentions() -> None:
    assert mrkdwn_to_text("<@U1> in <#C1>", {"U1": "alice", "C1": "ops"}) == "@alice in #ops"


def rich(*elements: dict[str, object]) -> list[dict[str, object]]:
    return [{"type": "rich_text", "elements": list(elements)}]


def test_rich_text_elements() -> None:
    blocks = rich(
        {"type": "rich_text_section", "elements": [
            {"type": "text", "text": "key "},
            {"type": "text", "text": KEY[:10], "style": {"bold": True}},
            {"type": "text", "text": KEY[10:]},
            {"type": "user", "user_id": "U1"},
            {"type": "link", "url": "https://x.test/a", "text": "here"},
            {"type": "emoji", "name": "key"},
        ]},
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "line1\nline2"}]},
        {"type": "rich_text_list", "style": "bullet", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]},
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "two"}]},
        ]},
        {"type": "rich_text_quote", "elements": [{"type": "channel", "channel_id": "C9"}]},
    )  # fmt: skip
    text = blocks_to_text(blocks)
    assert f"key {KEY}@U1here (https://x.test/a):key:" in text
    assert "line1\nline2" in text and "one\ntwo" in text and "#C9" in text


def test_section_blocks_of_apps() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "a &amp; b"},
         "fields": [{"type": "mrkdwn", "text": f"`{KEY}`"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "<@U1|bob>"}]},
    ]
    assert blocks_to_text(blocks).split("\n") == ["Title", "a & b", KEY, "@bob"]


def test_message_text_uses_blocks_only_when_they_say_more() -> None:
    same = {"text": f"key {KEY}", "blocks": rich({"type": "rich_text_section", "elements": [
        {"type": "text", "text": f"key {KEY}"}]})}
    assert message_text(same) == f"key {KEY}"
    only_key = rich({"type": "rich_text_section", "elements": [{"type": "text", "text": KEY}]})
    edited_blocks = {"text": "see thread", "blocks": only_key}
    assert message_text(edited_blocks) == f"see thread\n{KEY}"
    assert message_text({"blocks": rich({"type": "rich_text_section",
                                         "elements": [{"type": "text", "text": KEY}]})}) == KEY
