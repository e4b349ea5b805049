"""A seeded store for the week of Monday 19 October 2026 in Europe/Berlin.

Summer time ends inside that week (Sunday 25 Oct), so the week runs from 2026-10-18 22:00 UTC
(00:00 CEST) to 2026-10-25 23:00 UTC (00:00 CET): 169 hours. Findings sit just inside and just
outside both ends. Each secret's role in the digest is written beside it; the tests assert the
numbers that follow from these rows, one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store import models

BERLIN = ZoneInfo("Europe/Berlin")
WEEK_START = date(2026, 10, 19)
START = datetime(2026, 10, 18, 22, 0, tzinfo=UTC)  # Monday 19 Oct 00:00 CEST
END = datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # Monday 26 Oct 00:00 CET
PREVIOUS_START = datetime(2026, 10, 11, 22, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Seen:
    source: str
    unit: str
    unit_name: str
    detected_at: datetime
    author: str | None
    permalink: str | None = None
    item_id: str = ""


def add_secret(
    session: Session,
    key: str,
    *,
    provider: str,
    risk: int,
    first_seen: datetime,
    seen: list[Seen],
    status: str = "open",
    status_at: datetime | None = None,
    workspace: str = "",
) -> models.Secret:
    level = (
        "critical" if risk >= 85 else "high" if risk >= 60 else "medium" if risk >= 30 else "low"
    )
    secret = models.Secret(
        workspace=workspace,
        fingerprint=f"{key:0>64}",
        rule_id=f"{provider.lower()}_key",
        provider=provider,
        name=f"{provider} key {key}",
        preview=f"{key.lower()}-…{key * 4}"[:20],
        severity=level,
        risk_score=risk,
        risk_level=level,
        risk_reasons=[],
        status=status,
        status_at=status_at,
        status_by="U0SEC" if status_at else None,
        first_seen=first_seen,
        last_seen=max([first_seen, *(s.detected_at for s in seen)]),
    )
    for number, place in enumerate(seen):
        secret.occurrences.append(
            models.Occurrence(
                workspace=workspace,
                source=place.source,
                unit=place.unit,
                unit_name=place.unit_name,
                item_id=place.item_id or f"{key}-{number}",
                title="",
                author=place.author,
                permalink=place.permalink,
                posted_at=place.detected_at,
                detected_at=place.detected_at,
            )
        )
    session.add(secret)
    session.flush()
    return secret


def add_regression(session: Session, secret: models.Secret, at: datetime) -> None:
    """What the pipeline writes when a rotated key shows up again."""
    session.add(
        models.AuditEvent(
            workspace=secret.workspace,
            secret_id=secret.id,
            actor="leakwatch",
            action="regression",
            detail={},
            origin="pipeline",
            at=at,
        )
    )


def general(at: datetime, author: str | None, item: str = "") -> Seen:
    return Seen(
        "slack", "C0GENERAL", "general", at, author,
        f"https://acme.slack.com/archives/C0GENERAL/p{int(at.timestamp())}000100", item,
    )  # fmt: skip


def seed_week(session: Session) -> None:
    # A: new on the week's last evening (Sunday 23:00 CET), open, the riskiest; pasted twice.
    add_secret(
        session,
        "A",
        provider="OpenAI",
        risk=95,
        first_seen=END - HOUR,
        seen=[general(END - HOUR, "U0ALICE"), general(END - HOUR / 2, "U0ALICE")],
    )
    # B: new, open 167 h at the end; first seen on Confluence, then pasted in #general.
    add_secret(
        session,
        "B",
        provider="OpenAI",
        risk=80,
        first_seen=START + 2 * HOUR,
        seen=[
            Seen(
                "confluence",
                "ENG",
                "Engineering",
                START + 2 * HOUR,
                "bob@acme.test",
                "https://acme.atlassian.net/wiki/x/ENG1",
            ),
            general(START + 3 * HOUR, "U0BOB"),
        ],
    )
    # C: open since before last week (15.5 days at the end), seen in a mailbox.
    add_secret(
        session,
        "C",
        provider="AWS",
        risk=70,
        first_seen=datetime(2026, 10, 10, 11, 0, tzinfo=UTC),
        seen=[
            Seen(
                "email",
                "INBOX",
                "security@acme.test",
                datetime(2026, 10, 10, 11, 0, tzinfo=UTC),
                "carol@acme.test",
            )
        ],
    )
    # D: open for months.
    add_secret(
        session,
        "D",
        provider="GitHub",
        risk=60,
        first_seen=datetime(2026, 8, 1, tzinfo=UTC),
        seen=[Seen("slack", "C0RANDOM", "random", datetime(2026, 8, 1, tzinfo=UTC), "U0DAN")],
    )
    # E: rotated this week, 15 d 22 h after it was first seen.
    add_secret(
        session,
        "E",
        provider="Stripe",
        risk=50,
        first_seen=datetime(2026, 10, 5, tzinfo=UTC),
        status="rotated",
        status_at=START + 2 * DAY,
        seen=[general(datetime(2026, 10, 5, tzinfo=UTC), "U0ERIN")],
    )
    # F: new and rotated this week, 3 h after it was pasted.
    add_secret(
        session,
        "F",
        provider="Anthropic",
        risk=90,
        first_seen=START + 2 * HOUR,
        status="rotated",
        status_at=START + 5 * HOUR,
        seen=[Seen("slack", "C0DEPLOYS", "deploys", START + 2 * HOUR, "U0FRED")],
    )
    # G: rotated only after the week ended: it was still open when the week closed.
    add_secret(
        session,
        "G",
        provider="OpenAI",
        risk=40,
        first_seen=datetime(2026, 10, 1, tzinfo=UTC),
        status="rotated",
        status_at=END + 5 * HOUR,
        seen=[
            Seen(
                "confluence",
                "OPS",
                "Operations",
                datetime(2026, 10, 1, tzinfo=UTC),
                "gina@acme.test",
            )
        ],
    )
    # H: new, marked not a secret an hour later.
    add_secret(
        session,
        "H",
        provider="Slack",
        risk=30,
        first_seen=START + 3 * DAY,
        status="not_a_secret",
        status_at=START + 3 * DAY + HOUR,
        seen=[general(START + 3 * DAY, "U0HAL")],
    )
    # I and J: rotated last week, in 24 h and 5 h (last week's median: 14.5 h).
    add_secret(
        session,
        "I",
        provider="AWS",
        risk=70,
        first_seen=PREVIOUS_START + DAY,
        status="rotated",
        status_at=PREVIOUS_START + 2 * DAY,
        seen=[general(PREVIOUS_START + DAY, "U0IDA")],
    )
    add_secret(
        session,
        "J",
        provider="GitHub",
        risk=60,
        first_seen=PREVIOUS_START + HOUR,
        status="rotated",
        status_at=PREVIOUS_START + 6 * HOUR,
        seen=[general(PREVIOUS_START + HOUR, "U0JO")],
    )
    # K: first seen at Monday 00:30 CET, half an hour after the week: next week's.
    add_secret(
        session,
        "K",
        provider="OpenAI",
        risk=99,
        first_seen=END + HOUR / 2,
        seen=[general(END + HOUR / 2, "U0KIM")],
    )
    # L: rotated long ago, came back this week (pasted into a mail): a regression, open again.
    regressed = add_secret(
        session,
        "L",
        provider="OpenAI",
        risk=85,
        first_seen=datetime(2026, 9, 1, tzinfo=UTC),
        status="open",
        status_at=START + 4 * DAY,
        seen=[
            Seen("slack", "C0RANDOM", "random", datetime(2026, 9, 1, tzinfo=UTC), "U0LEO"),
            Seen("email", "INBOX", "security@acme.test", START + 4 * DAY, "leo@acme.test"),
        ],
    )
    add_regression(session, regressed, START + 4 * DAY)
    add_regression(session, regressed, START + 5 * DAY)  # and again: still one secret
    # M: accepted as a risk this week: neither open nor rotated.
    add_secret(
        session,
        "M",
        provider="Google",
        risk=20,
        first_seen=datetime(2026, 9, 10, tzinfo=UTC),
        status="accepted",
        status_at=START + DAY,
        seen=[Seen("slack", "C0RANDOM", "random", datetime(2026, 9, 10, tzinfo=UTC), "U0MAX")],
    )
    # N: first seen at Sunday 23:30 CEST, half an hour before the week: last week's, still open.
    add_secret(
        session,
        "N",
        provider="Google",
        risk=20,
        first_seen=START - HOUR / 2,
        seen=[general(START - HOUR / 2, "U0NED")],
    )
    # C regressed last week too: not this week's.
    c = session.scalars(sa.select(models.Secret).filter_by(fingerprint=f"{'C':0>64}")).one()
    add_regression(session, c, START - DAY)
