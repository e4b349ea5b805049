"""The digest's numbers, checked one by one against the seeded week (tests/digest/seed.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.notify.digest import Breakdown, Week, WeeklyDigest, compute_digest
from bot.store.db import Database
from tests.digest.seed import BERLIN, END, START, WEEK_START, general, seed_week

NOW = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # Monday 09:00 CET, when the digest goes out


@pytest.fixture
def digest(db: Database) -> WeeklyDigest:
    with db.session() as session:
        seed_week(session)
    with db.session() as session:
        return compute_digest(session, Week(WEEK_START, BERLIN), now=NOW)


def test_the_week_is_monday_to_monday_local_time_across_the_dst_change() -> None:
    week = Week(WEEK_START, BERLIN)
    assert (week.starts_at, week.ends_at) == (START, END)
    assert week.ends_at - week.starts_at == timedelta(hours=169)
    assert Week.last_complete(NOW, BERLIN) == week
    with pytest.raises(ValueError, match="Monday"):
        Week(date(2026, 10, 20), BERLIN)


def test_counts(digest: WeeklyDigest) -> None:
    # new: A, B, F, H (N was half an hour before the week, K half an hour after it)
    assert digest.new == 4
    # open at the end: A, B, C, D, G (rotated only after the end), L (regressed), N
    assert digest.open == 7
    assert digest.rotated == 2  # E, F
    assert digest.not_a_secret == 1  # H
    assert digest.regressions == 1  # L, twice; C regressed the week before


def test_open_findings_by_age_at_the_end_of_the_week(digest: WeeklyDigest) -> None:
    assert digest.open_by_age == (
        ("under 1 day", 1),  # A, 1 h
        ("1-7 days", 1),  # B, 167 h
        ("7-30 days", 3),  # N 7 d 1.5 h, C 15.5 d, G 25 d
        ("over 30 days", 2),  # D, L
    )


def test_median_time_to_rotate_and_its_change(digest: WeeklyDigest) -> None:
    # This week E took 15 d 22 h and F 3 h; last week I took 24 h and J 5 h.
    assert digest.median_time_to_rotate == timedelta(hours=(382 + 3) / 2)
    assert digest.previous_median_time_to_rotate == timedelta(hours=14.5)
    assert digest.median_change == timedelta(hours=192.5 - 14.5)


def test_by_provider_and_by_source(digest: WeeklyDigest) -> None:
    assert digest.by_provider == (
        Breakdown("OpenAI", new=2, open=4),
        Breakdown("AWS", new=0, open=1),
        Breakdown("GitHub", new=0, open=1),
        Breakdown("Google", new=0, open=1),
        Breakdown("Anthropic", new=1, open=0),
        Breakdown("Slack", new=1, open=0),
    )
    # B was seen on Confluence and in Slack: it counts under both.
    assert digest.by_source == (
        Breakdown("slack", new=4, open=5),
        Breakdown("confluence", new=1, open=2),
        Breakdown("email", new=0, open=2),
    )


def test_the_five_riskiest_open_findings(digest: WeeklyDigest) -> None:
    top = [(f.name, f.risk_score, f.owner, f.permalink) for f in digest.riskiest]
    assert top == [
        (
            "OpenAI key A",
            95,
            "U0ALICE",
            general(END - timedelta(hours=1), None).permalink,
        ),
        ("OpenAI key L", 85, "U0LEO", None),
        ("OpenAI key B", 80, "bob@acme.test", "https://acme.atlassian.net/wiki/x/ENG1"),
        ("AWS key C", 70, "carol@acme.test", None),
        ("GitHub key D", 60, "U0DAN", None),
    ]
    assert [f.where for f in digest.riskiest] == [
        "Slack #general",
        "Slack #random",
        "Confluence Engineering",
        "Email security@acme.test",
        "Slack #random",
    ]
    assert digest.riskiest[0].age == timedelta(hours=1)
    assert all("…" in f.preview for f in digest.riskiest)


def test_where_keys_leaked_this_week(digest: WeeklyDigest) -> None:
    assert [(p.label, p.secrets, p.occurrences) for p in digest.places] == [
        ("Slack #general", 3, 4),  # A twice, B, H
        ("Confluence Engineering", 1, 1),
        ("Email security@acme.test", 1, 1),
        ("Slack #deploys", 1, 1),
    ]


def test_an_empty_week(db: Database) -> None:
    with db.session() as session:
        digest = compute_digest(session, Week(WEEK_START, BERLIN), now=NOW)
    assert (digest.new, digest.open, digest.rotated, digest.regressions) == (0, 0, 0, 0)
    assert digest.median_time_to_rotate is None
    assert digest.riskiest == () and digest.places == ()


def test_workspaces_limit_the_digest(db: Database) -> None:
    from tests.digest.seed import Seen, add_secret

    with db.session() as session:
        seed_week(session)
        day_two = START + timedelta(days=1)
        add_secret(
            session, "Z", provider="OpenAI", risk=100, first_seen=day_two, workspace="T0OTHER",
            seen=[Seen("slack", "C0X", "x", day_two, "U0ZED")],
        )  # fmt: skip
    with db.session() as session:
        everything = compute_digest(session, Week(WEEK_START, BERLIN), now=NOW)
        ours = compute_digest(session, Week(WEEK_START, BERLIN), now=NOW, workspaces={""})
    assert (everything.new, ours.new) == (5, 4)
    assert everything.riskiest[0].name == "OpenAI key Z"
    assert ours.riskiest[0].name == "OpenAI key A"
