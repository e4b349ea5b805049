"""Risk: likelihood from exposure times impact from severity, with the reasons a person reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.detection.risk import assess, highest
from bot.detection.types import Severity
from connectors.base import Exposure

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def score(exposure: Exposure, severity: Severity = Severity.CRITICAL, source: str = "slack") -> int:
    return assess(severity, exposure, source=source, posted_at=NOW, now=NOW).score


def test_wider_exposure_is_riskier() -> None:
    direct = score(Exposure(audience=2))
    private = score(Exposure(audience=12))
    public = score(Exposure(audience=12, is_public=True))
    big_public = score(Exposure(audience=5000, is_public=True))
    external = score(Exposure(audience=12, is_external=True))
    anonymous = score(Exposure(is_public=True, is_anonymous=True), source="confluence")
    assert direct < private < public < big_public <= anonymous
    assert public < external
    assert anonymous == 100


def test_impact_scales_the_score_and_sets_the_level() -> None:
    exposure = Exposure(audience=1240, is_public=True)
    levels = [assess(s, exposure, source="slack").level for s in Severity]
    assert levels == ["critical", "high", "medium", "low"]
    assert assess(Severity.CRITICAL, Exposure(audience=6), source="slack").level == "high"
    assert assess(Severity.CRITICAL, Exposure(audience=2), source="slack").level == "medium"


def test_reasons_say_why() -> None:
    risk = assess(
        Severity.CRITICAL, Exposure(audience=1240, is_public=True), source="slack",
        posted_at=NOW - timedelta(days=12), now=NOW, name="OpenAI project API key",
    )  # fmt: skip
    assert risk.reasons[0].startswith("OpenAI project API key — critical impact")
    assert risk.reasons[1:] == (
        "posted in a public channel with 1,240 members",
        "visible for 12 days",
    )
    mail = assess(Severity.HIGH, Exposure(audience=3, is_external=True), source="email")
    assert mail.reasons[1:] == ("sent to 3 recipients", "sent outside the company")
    shared = assess(Severity.HIGH, Exposure(audience=40, is_external=True), source="slack")
    assert "shared with another organisation" in shared.reasons


def test_age_raises_and_history_lowers_the_score() -> None:
    exposure = Exposure(audience=40)
    fresh = assess(Severity.HIGH, exposure, source="slack", posted_at=NOW, now=NOW)
    old = assess(Severity.HIGH, exposure, source="slack", posted_at=NOW - timedelta(60), now=NOW)
    assert old.score > fresh.score
    page = Exposure(audience=40, is_public=True)
    history = Exposure(audience=40, is_public=True, is_history=True)
    assert score(history, source="confluence") < score(page, source="confluence")
    assert highest([fresh, old]) == old and highest([]) is None
