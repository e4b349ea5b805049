"""The digest over findings the real pipeline stored: detect, rotate, regress, dismiss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.notify.digest import Week, compute_digest, digest_blocks, digest_summary, digest_text
from bot.pipeline import ingest
from bot.store import models, queries
from bot.store.db import Database
from connectors.base import Document
from tests.digest.seed import BERLIN, START, WEEK_START

DAY = timedelta(days=1)


def message(item: str, text: str, author: str) -> Document:
    return Document(
        source="slack",
        unit="C0GENERAL",
        unit_name="general",
        item_id=item,
        text=text,
        workspace="T0ACME",
        author=author,
        permalink=f"https://acme.slack.com/archives/C0GENERAL/p{item}",
    )


def test_a_key_rotated_then_pasted_again_counts_as_rotated_and_regressed(db: Database) -> None:
    detector = Detector.default(Fingerprinter(b"digest tests only"))
    openai = fake_secret("openai_project_key", 7)
    github = fake_secret("github_classic_pat", 7)
    with db.session() as session:
        ingest(session, [message("1001", f"try {openai}", "U0ALICE")], detector, now=START + DAY)
        ingest(session, [message("1002", f"ci: {github}", "U0BOB")], detector, now=START + DAY)
    with db.session() as session:
        by_rule = {s.rule_id: s for s in session.scalars(sa.select(models.Secret))}
        queries.set_status(
            session, by_rule["openai_project_key"], "rotated", by="U0ALICE", now=START + 2 * DAY
        )
        queries.set_status(
            session, by_rule["github_classic_pat"], "not_a_secret", by="U0BOB", now=START + 2 * DAY
        )
    with db.session() as session:  # the rotated key is pasted again: a regression
        ingest(
            session, [message("1003", f"old {openai}", "U0CAROL")], detector, now=START + 3 * DAY
        )

    with db.session() as session:
        digest = compute_digest(
            session, Week(WEEK_START, BERLIN), now=datetime(2026, 10, 26, 8, tzinfo=UTC)
        )
    assert (digest.new, digest.rotated, digest.regressions, digest.not_a_secret) == (2, 1, 1, 1)
    assert digest.open == 1  # open again after the regression
    assert digest.median_time_to_rotate == DAY
    [riskiest] = digest.riskiest
    assert riskiest.owner == "U0ALICE"
    assert riskiest.permalink == "https://acme.slack.com/archives/C0GENERAL/p1001"
    # Masked previews only: neither key appears in any rendering.
    rendered = digest_text(digest) + digest_summary(digest) + str(digest_blocks(digest))
    assert riskiest.preview in rendered
    assert openai not in rendered and github not in rendered
    assert openai[-8:] not in rendered
