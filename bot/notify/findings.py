"""From stored rows to what the messages show: a `blocks.Finding`, never the secret itself."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.notify.blocks import AdminSummary, Finding, Place
from bot.store import queries
from bot.store.models import Occurrence, Secret


def place_of(occurrence: Occurrence | None) -> Place:
    if occurrence is None:
        return Place(source="unknown")
    return Place(
        source=occurrence.source,
        unit=occurrence.unit,
        unit_name=occurrence.unit_name or "",
        title=occurrence.title or "",
        item_id=occurrence.item_id,
        permalink=occurrence.permalink,
        author=occurrence.author or occurrence.author_email or "",
        posted_at=occurrence.posted_at or occurrence.detected_at,
        removed=occurrence.removed_at is not None,
    )


def finding_of(secret: Secret, occurrence: Occurrence | None = None) -> Finding:
    """The finding as one message shows it: about `occurrence`, or the first place it was seen."""
    occurrences: Sequence[Occurrence] = secret.occurrences
    if occurrence is None and occurrences:
        occurrence = occurrences[0]
    return Finding(
        id=secret.id,
        rule_id=secret.rule_id,
        provider=secret.provider,
        name=secret.name,
        preview=secret.preview,
        risk_level=secret.risk_level,
        risk_score=secret.risk_score,
        risk_reasons=tuple(secret.risk_reasons or ()),
        status=secret.status,
        status_by=secret.status_by,
        status_at=secret.status_at,
        status_reason=secret.status_reason,
        first_seen=secret.first_seen,
        occurrence_count=max(len(occurrences), 1),
        place=place_of(occurrence),
    )


def poster_of(secret: Secret) -> tuple[str | None, str | None]:
    """(Slack user id, email) of whoever first posted the secret, as far as we know."""
    for occurrence in secret.occurrences:
        if occurrence.author and occurrence.source == "slack":
            return occurrence.author, occurrence.author_email
    for occurrence in secret.occurrences:
        if occurrence.author or occurrence.author_email:
            author = occurrence.author or ""
            return (author if author.startswith(("U", "W")) else None), (
                occurrence.author_email or (author if "@" in author else None)
            )
    return None, None


def admin_summary(session: Session, workspace: str, oldest: int = 5) -> AdminSummary:
    """Counts by status, provider and source, and the oldest open findings, for App Home."""
    query = (
        sa.select(Secret)
        .where(Secret.workspace == workspace, Secret.status == "open")
        .order_by(Secret.first_seen, Secret.id)
        .limit(oldest)
    )
    return AdminSummary(
        by_status=queries.counts_by_status(session, workspace=workspace),
        by_provider=queries.counts_by_provider(session, workspace=workspace, status="open"),
        by_source=queries.counts_by_source(session, workspace=workspace, status="open"),
        oldest_open=[finding_of(s) for s in session.scalars(query)],
    )
