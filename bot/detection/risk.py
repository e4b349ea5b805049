"""Risk: how likely a leaked key is to be abused (from its exposure) times the harm if it is.

    risk = assess(Severity.CRITICAL, exposure, source="slack", posted_at=t, now=now)
    risk.score    # 0-100
    risk.level    # "critical" | "high" | "medium" | "low"
    risk.reasons  # ("OpenAI project API key — critical impact: …", "posted in a public channel …")

Impact comes from the credential type's severity. Likelihood starts at 0.4 (a key written
anywhere people read has been seen) and grows with who could read it: a private channel, a
public one, another organisation, anyone on the internet; with the size of the audience; and
with how long it has been up. A key kept only in an old page version is less exposed.
Pure: no I/O, no clock (the caller passes `now`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.detection.types import Severity
from connectors.base import Exposure

IMPACT = {
    Severity.CRITICAL: 1.0,
    Severity.HIGH: 0.75,
    Severity.MEDIUM: 0.5,
    Severity.LOW: 0.25,
}
IMPACT_REASON = {
    Severity.CRITICAL: "critical impact: abuse can run up bills or grant admin access",
    Severity.HIGH: "high impact: abuse reaches production data or systems",
    Severity.MEDIUM: "medium impact: limited access if abused",
    Severity.LOW: "low impact: a test-mode or short-lived credential",
}
# Score thresholds for the levels; a critical key in a private channel lands in "high".
LEVELS = ((75, "critical"), (50, "high"), (25, "medium"), (0, "low"))

_CONTAINER = {"slack": "channel", "confluence": "space", "email": "mail", "file": "file"}
_MEMBERS = {"slack": "members", "confluence": "readers", "email": "recipients", "file": "readers"}


@dataclass(frozen=True, slots=True)
class Risk:
    score: int
    level: str
    reasons: tuple[str, ...]


def assess(
    severity: Severity,
    exposure: Exposure,
    *,
    source: str = "",
    posted_at: datetime | None = None,
    now: datetime | None = None,
    name: str = "",
) -> Risk:
    """Score one occurrence of a credential of `severity` seen under `exposure`."""
    likelihood, reasons = _likelihood(exposure, source)
    if posted_at is not None and now is not None:
        bonus, age_reason = _age(now - posted_at)
        likelihood += bonus
        if age_reason:
            reasons.append(age_reason)
    if exposure.is_history:
        likelihood -= 0.15
        reasons.append("only in an older version of the page, not the current one")
    likelihood = min(1.0, max(0.1, likelihood))
    score = round(100 * IMPACT[severity] * likelihood)
    impact = IMPACT_REASON[severity]
    reasons.insert(0, f"{name} — {impact}" if name else impact)
    return Risk(score=score, level=level_of(score), reasons=tuple(reasons))


def level_of(score: int) -> str:
    for floor, level in LEVELS:
        if score >= floor:
            return level
    return "low"


def highest(risks: Iterable[Risk]) -> Risk | None:
    """A secret's risk is that of its most exposed occurrence."""
    return max(risks, key=lambda risk: risk.score, default=None)


def _likelihood(exposure: Exposure, source: str) -> tuple[float, list[str]]:
    is_direct = (
        source == "slack"
        and not exposure.is_public
        and exposure.audience is not None
        and exposure.audience <= 2
    )
    reasons = ["in a direct message" if is_direct else _where(exposure, source)]
    if exposure.is_anonymous:
        likelihood = 1.0
        reasons.append("readable without logging in (anonymous access)")
    elif exposure.is_external:
        likelihood = 0.9
        reasons.append(
            "sent outside the company" if source == "email" else "shared with another organisation"
        )
    elif exposure.is_public:
        likelihood = 0.7
    elif is_direct:
        likelihood = 0.4
    else:
        likelihood = 0.5
    if exposure.audience is not None and exposure.audience > 1:
        likelihood += min(0.2, 0.05 * math.log10(exposure.audience))
    return likelihood, reasons


def _where(exposure: Exposure, source: str) -> str:
    audience = exposure.audience
    members = _MEMBERS.get(source, "readers")
    if audience == 1:
        members = members.removesuffix("s")  # "sent to 1 recipient", "with 1 member"
    if source == "email":
        return f"sent to {audience:,} {members}" if audience else "sent by email"
    container = _CONTAINER.get(source, "place")
    kind = "public" if exposure.is_public else "private"
    where = f"posted in a {kind} {container}"
    if audience:
        where += f" with {audience:,} {members}"
    return where


def _age(age: timedelta) -> tuple[float, str]:
    days = age.total_seconds() / 86_400
    if days < 1:
        return 0.0, ""
    whole = int(days)
    text = f"visible for {whole} day{'s' if whole != 1 else ''}"
    if days >= 30:
        return 0.15, text
    if days >= 7:
        return 0.1, text
    return 0.05, text
