"""The digest as it arrives in Slack (real WebClient, stand-in Slack) and in a terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block

from bot.notify.digest import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    Week,
    compute_digest,
    digest_blocks,
    digest_text,
)
from bot.scheduler import post_digest_for_week
from bot.store.db import Database
from tests.digest.conftest import Slack
from tests.digest.seed import BERLIN, START, WEEK_START, Seen, add_secret, general, seed_week

NOW = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every piece of text a reader sees, block by block."""
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [field["text"] for field in block.get("fields", [])]
        found += [element["text"] for element in block.get("elements", []) if "text" in element]
    return found


def assert_within_slack_limits(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10


def test_the_posted_digest_shows_the_weeks_numbers(db: Database, slack: Slack) -> None:
    with db.session() as session:
        seed_week(session)
    result = post_digest_for_week(
        db, slack.client(), slack.settings, Week(WEEK_START, BERLIN), now=NOW
    )
    assert result.outcome == "posted"
    [posted] = slack.standin.posted_in(slack.channel)
    assert posted.ts == result.slack_ts
    assert posted.text == (
        "LeakWatch weekly digest, week of 2026-10-19: "
        "4 new, 7 open, 2 rotated, 1 not a secret, 1 regressed"
    )
    assert posted.blocks is not None
    assert_within_slack_limits(posted.blocks)
    shown = "\n".join(texts(posted.blocks))
    for line in (
        "*New findings*\n4",
        "*Still open*\n7",
        "*Rotated*\n2",
        "*Not a secret*\n1",
        "*Regressions*\n1",
        "8d 0h (7d 10h slower than the week before)",
        "• 7-30 days: 3",
        "• OpenAI: 2 / 4",
        "• Confluence: 1 / 2",
        "• Slack #general: 3 keys",
    ):
        assert line in shown
    riskiest = [t for t in texts(posted.blocks) if " risk " in t]
    assert len(riskiest) == 5
    # The riskiest first: masked preview, a link to where it was pasted, the poster mentioned.
    link = general(datetime(2026, 10, 25, 22, 0, tzinfo=UTC), None).permalink
    assert riskiest[0].startswith("*OpenAI key A* `a-…AAAA` risk 95 (critical)")
    assert f"<{link}|Slack #general>" in riskiest[0]
    assert "posted by <@U0ALICE>" in riskiest[0]
    assert "posted by bob@acme.test" in riskiest[2]


def test_names_from_the_sources_cannot_break_the_message(db: Database) -> None:
    # A channel name or page title with mrkdwn control characters is shown, not interpreted.
    with db.session() as session:
        add_secret(
            session, "X", provider="OpenAI", risk=90, first_seen=START + timedelta(days=1),
            seen=[Seen("confluence", "ENG", "<!channel> & <https://evil.test|click>",
                       START + timedelta(days=1), "eve@acme.test")],
        )  # fmt: skip
    with db.session() as session:
        blocks = digest_blocks(compute_digest(session, Week(WEEK_START, BERLIN), now=NOW))
    shown = "\n".join(texts(blocks))
    assert "<!channel>" not in shown and "<https://evil.test" not in shown
    assert "&lt;!channel&gt; &amp; &lt;https://evil.test|click&gt;" in shown


def test_a_busy_week_still_fits_slacks_limits(db: Database) -> None:
    # 60 providers and 60 channels with 250-character names: tables are cut, not rejected.
    with db.session() as session:
        for n in range(60):
            at = START + timedelta(hours=n + 1)
            add_secret(
                session, f"P{n:02d}", provider=f"Provider {n:02d} " + "x" * 40, risk=50,
                first_seen=at, seen=[Seen("slack", f"C{n:04d}", "n" * 250, at, "U0POSTER")],
            )  # fmt: skip
    with db.session() as session:
        digest = compute_digest(session, Week(WEEK_START, BERLIN), now=NOW)
    assert digest.new == 60
    blocks = digest_blocks(digest)
    assert_within_slack_limits(blocks)
    assert "• 50 more: 50 / 50" in "\n".join(texts(blocks))  # ten shown, the rest summed
    # Slack rejects messages far below 50 blocks when they hold too much text in total.
    assert len(json.dumps(blocks)) < 12_000


def test_the_terminal_rendering_has_the_same_numbers(db: Database) -> None:
    with db.session() as session:
        seed_week(session)
    with db.session() as session:
        text = digest_text(compute_digest(session, Week(WEEK_START, BERLIN), now=NOW))
    assert "Mon 19 Oct - Sun 25 Oct 2026 (Europe/Berlin)" in text
    for line in (
        "  New findings     4",
        "  Still open       7",
        "  Rotated          2",
        "  Not a secret     1",
        "  Regressions      1",
        "  over 30 days   2",
        "  OpenAI                     2     4",
        "  Slack                      4     5",
        "  Slack #general: 3 keys, 4 times",
    ):
        assert line in text
    assert "[ 95 critical] OpenAI key A a-…AAAA  Slack #general, by U0ALICE" in text
