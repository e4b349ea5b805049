"""The weekly digest: what happened to leaked credentials in one week, for the security channel.

    week = Week(date(2026, 10, 19), ZoneInfo("Europe/Berlin"))   # a Monday
    digest = compute_digest(session, week, now=now)              # numbers from the store
    digest_blocks(digest)    # Block Kit, within Slack's limits
    digest_text(digest)      # the same for a terminal
    digest_summary(digest)   # one line: the notification text and the fallback for Block Kit

A week runs from Monday 00:00 to the next Monday 00:00 in the configured time zone, so a week
across a daylight-saving change is 167 or 169 hours long. Everything here is a pure function of
the session's data, the week and `now`: no posting, no clock reads. Only masked previews
(Secret.preview) ever reach the output.

How each number is counted, over the week [start, end):
    new             secrets first seen in the week
    open            secrets first seen before the end and open at the end: status "open", or
                    another status set only after the end (a digest posted late reports the week
                    as it was when it closed)
    open by age     those open secrets by age at the end of the week (end - first_seen)
    rotated         secrets marked rotated in the week: an audit event "status:rotated" then,
                    or status "rotated" with status_at then. A key rotated and seen again in
                    the same week counts here and under regressions.
    not a secret    the same for "not_a_secret" (audit "status:not_a_secret" or "suppressed")
    regressions     secrets that came back after being marked rotated: the pipeline's audit
                    event "regression" in the week (distinct secrets)
    median time to rotate
                    over the secrets rotated in the week, from first seen to the (last)
                    rotation in the week; compared with the same median for the week before
    by provider / by source
                    new and open counts per provider, and per source a secret was seen in
                    (a key pasted in Slack and in Confluence counts once under each)
    riskiest        the five open secrets with the highest risk score (older first on ties),
                    with the author and permalink of the first place each was seen
    where           the channels, spaces and mailbox folders with the most distinct secrets among
                    the occurrences detected in the week
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from sqlalchemy.orm import Session

from bot.store import models

# Age buckets of open findings at the end of the week: (label, upper bound, exclusive).
AGE_BUCKETS: Final[tuple[tuple[str, timedelta | None], ...]] = (
    ("under 1 day", timedelta(days=1)),
    ("1-7 days", timedelta(days=7)),
    ("7-30 days", timedelta(days=30)),
    ("over 30 days", None),
)
RISKIEST_COUNT: Final = 5
PLACES_COUNT: Final = 5
BREAKDOWN_ROWS: Final = 10  # rows per table; the rest are summed into one "N more" row
# Audit actions that set a status (bot/store/queries.set_status; the pipeline's suppressions).
STATUS_ACTIONS: Final = {
    "status:rotated": "rotated",
    "status:not_a_secret": "not_a_secret",
    "suppressed": "not_a_secret",
}
REGRESSION_ACTION: Final = "regression"  # written by the pipeline when a rotated key returns

# Slack's limits (docs.slack.dev/reference/block-kit/blocks): 50 blocks per message, 3,000
# characters of section text, 2,000 per section field, 150 for a header.
MAX_BLOCKS: Final = 50
MAX_SECTION_TEXT: Final = 3000
MAX_FIELD_TEXT: Final = 2000
MAX_HEADER_TEXT: Final = 150

SOURCE_LABELS: Final = {
    "slack": "Slack",
    "confluence": "Confluence",
    "email": "Email",
    "file": "Files",
}


@dataclass(frozen=True)
class Week:
    """Monday 00:00 to the next Monday 00:00, local time in `tz`."""

    start: date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.start.weekday() != 0:
            raise ValueError(f"a digest week starts on a Monday, got {self.start:%A %Y-%m-%d}")

    @property
    def starts_at(self) -> datetime:
        return _local_midnight(self.start, self.tz)

    @property
    def ends_at(self) -> datetime:
        return _local_midnight(self.start + timedelta(days=7), self.tz)

    @property
    def previous(self) -> Week:
        return Week(self.start - timedelta(days=7), self.tz)

    @classmethod
    def containing(cls, moment: datetime, tz: ZoneInfo) -> Week:
        local = moment.astimezone(tz).date()
        return cls(local - timedelta(days=local.weekday()), tz)

    @classmethod
    def last_complete(cls, moment: datetime, tz: ZoneInfo) -> Week:
        """The latest week that had ended by `moment`: the week a Monday digest reports on."""
        return cls.containing(moment, tz).previous


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Midnight exists on every day in the zones we care about (DST changes happen at night, not
    # at 00:00); zoneinfo resolves the rare gap forward, which is what a week boundary needs.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Breakdown:
    """One row of a table: a provider or a source, with its new and open counts."""

    key: str
    new: int
    open: int


@dataclass(frozen=True)
class RiskyFinding:
    secret_id: int
    name: str
    provider: str
    preview: str  # masked
    risk_score: int
    risk_level: str
    age: timedelta  # at the end of the week
    owner: str | None  # Slack user id or email address of whoever first posted it
    permalink: str | None
    where: str  # "Slack #general", "Confluence ENG", ...


@dataclass(frozen=True)
class LeakyPlace:
    source: str
    unit: str
    unit_name: str
    secrets: int  # distinct secrets among the week's occurrences there
    occurrences: int

    @property
    def label(self) -> str:
        return _place_label(self.source, self.unit, self.unit_name)


@dataclass(frozen=True)
class WeeklyDigest:
    week: Week
    generated_at: datetime
    new: int
    open: int
    open_by_age: tuple[tuple[str, int], ...]
    rotated: int
    not_a_secret: int
    regressions: int
    by_provider: tuple[Breakdown, ...]
    by_source: tuple[Breakdown, ...]
    median_time_to_rotate: timedelta | None
    previous_median_time_to_rotate: timedelta | None
    riskiest: tuple[RiskyFinding, ...]
    places: tuple[LeakyPlace, ...]

    @property
    def median_change(self) -> timedelta | None:
        """This week's median minus last week's: negative means keys were rotated faster."""
        if self.median_time_to_rotate is None or self.previous_median_time_to_rotate is None:
            return None
        return self.median_time_to_rotate - self.previous_median_time_to_rotate


# --- computing ---------------------------------------------------------------------------------


class _Finding(NamedTuple):
    """The columns of a secret the numbers need; full rows are loaded for the top five only."""

    id: int
    first_seen: datetime
    status: str
    status_at: datetime | None
    provider: str
    risk_score: int


def compute_digest(
    session: Session,
    week: Week,
    *,
    now: datetime,
    workspaces: Collection[str] | None = None,
) -> WeeklyDigest:
    """The week's numbers from the store. `workspaces` limits them (None: every workspace)."""
    # A week still under way (a preview) is counted up to now: ages are ages today.
    start, end = week.starts_at, min(week.ends_at, now)
    previous_start = week.previous.starts_at
    secret = models.Secret

    # Every secret that can count anywhere: known by the end, and either open, new, or given a
    # status since last week began.
    relevant = sa.and_(
        secret.first_seen < end,
        sa.or_(
            secret.status == "open", secret.first_seen >= start, secret.status_at >= previous_start
        ),
        sa.true() if workspaces is None else secret.workspace.in_(workspaces),
    )
    findings = _findings(session, relevant)
    changes = _status_changes(session, findings, previous_start, end, workspaces)
    known = {f.id: f for f in findings}
    missing = sorted({i for times in changes.values() for i in times} - known.keys())
    if missing:  # a status set in the window on a secret the first query did not need
        known.update((f.id, f) for f in _findings(session, secret.id.in_(missing)))
    new = [f for f in findings if start <= f.first_seen < end]
    still_open = [f for f in findings if _is_open_at(f, end)]
    rotated = _set_in(changes["rotated"], known, start, end)
    rotated_before = _set_in(changes["rotated"], known, previous_start, start)
    sources = _sources_by_secret(session, relevant, end)
    return WeeklyDigest(
        week=week,
        generated_at=now,
        new=len(new),
        open=len(still_open),
        open_by_age=_age_buckets(still_open, end),
        rotated=len(rotated),
        not_a_secret=len(_set_in(changes["not_a_secret"], known, start, end)),
        regressions=_regressions(session, start, end, workspaces),
        by_provider=_breakdown(((f.provider,) for f in new), ((f.provider,) for f in still_open)),
        by_source=_breakdown(
            (sources.get(f.id, ()) for f in new), (sources.get(f.id, ()) for f in still_open)
        ),
        median_time_to_rotate=_median_time_to_rotate(rotated),
        previous_median_time_to_rotate=_median_time_to_rotate(rotated_before),
        riskiest=_riskiest(session, still_open, end),
        places=_places(session, start, end, workspaces),
    )


def _findings(session: Session, condition: Any) -> list[_Finding]:
    secret = models.Secret
    statement = sa.select(
        secret.id,
        secret.first_seen,
        secret.status,
        secret.status_at,
        secret.provider,
        secret.risk_score,
    ).where(condition)
    return [_Finding(*row) for row in session.execute(statement)]


def _status_changes(
    session: Session,
    findings: Sequence[_Finding],
    since: datetime,
    end: datetime,
    workspaces: Collection[str] | None,
) -> dict[str, dict[int, list[datetime]]]:
    """When each secret was given each status in [since, end): audit trail and status fields."""
    changes: dict[str, dict[int, list[datetime]]] = {
        status: defaultdict(list) for status in set(STATUS_ACTIONS.values())
    }
    for f in findings:
        if f.status in changes and f.status_at is not None and since <= f.status_at < end:
            changes[f.status][f.id].append(f.status_at)
    event = models.AuditEvent
    statement = sa.select(event.secret_id, event.action, event.at).where(
        event.action.in_(STATUS_ACTIONS), event.at >= since, event.at < end
    )
    if workspaces is not None:
        statement = statement.where(event.workspace.in_(workspaces))
    for secret_id, action, at in session.execute(statement):
        if secret_id is not None:
            changes[STATUS_ACTIONS[action]][secret_id].append(at)
    return changes


def _set_in(
    times: dict[int, list[datetime]],
    findings: dict[int, _Finding],
    start: datetime,
    end: datetime,
) -> list[tuple[_Finding, datetime]]:
    """Secrets given a status in [start, end), each with the last time it was given it then."""
    found = []
    for secret_id, moments in times.items():
        inside = [moment for moment in moments if start <= moment < end]
        if inside and secret_id in findings:
            found.append((findings[secret_id], max(inside)))
    return found


def _is_open_at(finding: _Finding, moment: datetime) -> bool:
    if finding.first_seen >= moment:
        return False
    if finding.status == "open":
        return True
    return finding.status_at is not None and finding.status_at >= moment


def _sources_by_secret(
    session: Session, relevant: Any, end: datetime
) -> dict[int, tuple[str, ...]]:
    """The sources each relevant secret had been seen in by the end of the week."""
    occurrence, secret = models.Occurrence, models.Secret
    statement = (
        sa.select(occurrence.secret_id, occurrence.source)
        .join(secret, secret.id == occurrence.secret_id)
        .where(relevant, occurrence.detected_at < end)
        .distinct()
    )
    found: dict[int, set[str]] = defaultdict(set)
    for secret_id, source in session.execute(statement):
        found[secret_id].add(source)
    return {secret_id: tuple(sorted(names)) for secret_id, names in found.items()}


def _age_buckets(findings: Iterable[_Finding], end: datetime) -> tuple[tuple[str, int], ...]:
    counts = Counter[str]()
    for finding in findings:
        age = end - finding.first_seen
        for label, limit in AGE_BUCKETS:
            if limit is None or age < limit:
                counts[label] += 1
                break
    return tuple((label, counts[label]) for label, _ in AGE_BUCKETS)


def _breakdown(
    new_keys: Iterable[tuple[str, ...]], open_keys: Iterable[tuple[str, ...]]
) -> tuple[Breakdown, ...]:
    new, still_open = Counter[str](), Counter[str]()
    for keys in new_keys:
        new.update(keys)
    for keys in open_keys:
        still_open.update(keys)
    rows = [Breakdown(key, new[key], still_open[key]) for key in new.keys() | still_open.keys()]
    rows.sort(key=lambda row: (-row.open, -row.new, row.key))
    return tuple(rows)


def _median_time_to_rotate(rotated: Sequence[tuple[_Finding, datetime]]) -> timedelta | None:
    durations = [(at - finding.first_seen).total_seconds() for finding, at in rotated]
    if not durations:
        return None
    return timedelta(seconds=statistics.median(durations))


def _regressions(
    session: Session, start: datetime, end: datetime, workspaces: Collection[str] | None
) -> int:
    event = models.AuditEvent
    statement = sa.select(sa.func.count(sa.distinct(event.secret_id))).where(
        event.action == REGRESSION_ACTION, event.at >= start, event.at < end
    )
    if workspaces is not None:
        statement = statement.where(event.workspace.in_(workspaces))
    return int(session.scalar(statement) or 0)


def _riskiest(
    session: Session, still_open: Sequence[_Finding], end: datetime
) -> tuple[RiskyFinding, ...]:
    top = sorted(still_open, key=lambda f: (-f.risk_score, f.first_seen, f.id))[:RISKIEST_COUNT]
    if not top:
        return ()
    secret, occurrence = models.Secret, models.Occurrence
    secrets = {
        s.id: s
        for s in session.scalars(sa.select(secret).where(secret.id.in_([f.id for f in top])))
    }
    seen: dict[int, list[models.Occurrence]] = defaultdict(list)
    for place in session.scalars(
        sa.select(occurrence)
        .where(occurrence.secret_id.in_(list(secrets)), occurrence.detected_at < end)
        .order_by(occurrence.detected_at, occurrence.id)
    ):
        seen[place.secret_id].append(place)
    result = []
    for finding in top:
        row = secrets[finding.id]
        where = seen.get(finding.id, [])
        first = where[0] if where else None
        linked = next((o for o in where if o.permalink), None)
        result.append(
            RiskyFinding(
                secret_id=row.id,
                name=row.name,
                provider=row.provider,
                preview=row.preview,
                risk_score=row.risk_score,
                risk_level=row.risk_level,
                age=end - row.first_seen,
                owner=(first.author or first.author_email) if first else None,
                permalink=linked.permalink if linked else None,
                where=_place_label(first.source, first.unit, first.unit_name) if first else "",
            )
        )
    return tuple(result)


def _places(
    session: Session, start: datetime, end: datetime, workspaces: Collection[str] | None
) -> tuple[LeakyPlace, ...]:
    occurrence = models.Occurrence
    statement = (
        sa.select(
            occurrence.source,
            occurrence.unit,
            sa.func.max(occurrence.unit_name),
            sa.func.count(sa.distinct(occurrence.secret_id)),
            sa.func.count(),
        )
        .where(occurrence.detected_at >= start, occurrence.detected_at < end)
        .group_by(occurrence.source, occurrence.unit)
    )
    if workspaces is not None:
        statement = statement.where(occurrence.workspace.in_(workspaces))
    places = [
        LeakyPlace(source, unit, unit_name or "", int(secrets), int(count))
        for source, unit, unit_name, secrets, count in session.execute(statement)
    ]
    places.sort(key=lambda p: (-p.secrets, -p.occurrences, p.source, p.unit))
    return tuple(places[:PLACES_COUNT])


def _place_label(source: str, unit: str, unit_name: str) -> str:
    name = unit_name or unit
    if source == "slack" and not name.startswith("#") and unit_name:
        name = f"#{name}"
    return f"{SOURCE_LABELS.get(source, source)} {name}".strip()


# --- rendering ---------------------------------------------------------------------------------


def format_duration(value: timedelta) -> str:
    """'3d 4h', '5h 20m', '12m': the precision a weekly report needs."""
    seconds = int(abs(value).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes}m"
    else:
        text = f"{minutes}m"
    return f"-{text}" if value < timedelta(0) else text


def _median_line(digest: WeeklyDigest) -> str:
    if digest.median_time_to_rotate is None:
        return "no key rotated this week"
    line = format_duration(digest.median_time_to_rotate)
    change = digest.median_change
    if change is None:
        return f"{line} (none rotated the week before)"
    if change == timedelta(0):
        return f"{line} (same as the week before)"
    direction = "slower" if change > timedelta(0) else "faster"
    return f"{line} ({format_duration(abs(change))} {direction} than the week before)"


def _week_label(week: Week) -> str:
    last_day = week.start + timedelta(days=6)
    return f"{week.start:%a %d %b} - {last_day:%a %d %b %Y} ({week.tz.key})"


def digest_summary(digest: WeeklyDigest) -> str:
    """One line: chat.postMessage's `text` (notifications, screen readers)."""
    return (
        f"LeakWatch weekly digest, week of {digest.week.start.isoformat()}: "
        f"{digest.new} new, {digest.open} open, {digest.rotated} rotated, "
        f"{digest.not_a_secret} not a secret, {digest.regressions} regressed"
    )


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters (docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _owner_mrkdwn(owner: str | None) -> str:
    if not owner:
        return "unknown"
    # Slack user ids mention the person; anything else (an email address) is shown as text.
    if owner[:1] in ("U", "W") and owner[1:].isalnum() and owner.isupper():
        return f"<@{owner}>"
    return escape_mrkdwn(owner)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table_mrkdwn(title: str, rows: Sequence[Breakdown], label: Callable[[str], str]) -> str:
    if not rows:
        return f"*{title}*\nnothing this week"
    lines = [f"*{title}*  (new / open)"]
    shown = rows[:BREAKDOWN_ROWS]
    for row in shown:
        lines.append(f"• {escape_mrkdwn(label(row.key))}: {row.new} / {row.open}")
    rest = rows[BREAKDOWN_ROWS:]
    if rest:
        lines.append(
            f"• {len(rest)} more: {sum(r.new for r in rest)} / {sum(r.open for r in rest)}"
        )
    return _clip("\n".join(lines), MAX_SECTION_TEXT)


def _source_label(key: str) -> str:
    return SOURCE_LABELS.get(key, key)


def digest_blocks(digest: WeeklyDigest) -> list[dict[str, Any]]:
    """The digest as Block Kit: at most 50 blocks, each section within 3,000 characters."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip("LeakWatch weekly digest", MAX_HEADER_TEXT))),
        ContextBlock(elements=[MarkdownTextObject(text=escape_mrkdwn(_week_label(digest.week)))]),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*New findings*\n{digest.new}"),
                MarkdownTextObject(text=f"*Still open*\n{digest.open}"),
                MarkdownTextObject(text=f"*Rotated*\n{digest.rotated}"),
                MarkdownTextObject(text=f"*Not a secret*\n{digest.not_a_secret}"),
                MarkdownTextObject(text=f"*Regressions*\n{digest.regressions}"),
                MarkdownTextObject(
                    text=_clip(f"*Median time to rotate*\n{_median_line(digest)}", MAX_FIELD_TEXT)
                ),
            ]
        ),
        SectionBlock(
            text=MarkdownTextObject(
                text="*Open by age*\n"
                + "\n".join(f"• {label}: {count}" for label, count in digest.open_by_age)
            )
        ),
        DividerBlock(),
        SectionBlock(
            fields=[
                MarkdownTextObject(
                    text=_clip(
                        _table_mrkdwn("By provider", digest.by_provider, str), MAX_FIELD_TEXT
                    )
                ),
                MarkdownTextObject(
                    text=_clip(
                        _table_mrkdwn("By source", digest.by_source, _source_label), MAX_FIELD_TEXT
                    )
                ),
            ]
        ),
        DividerBlock(),
        SectionBlock(
            text=MarkdownTextObject(text=f"*Riskiest open findings* (top {RISKIEST_COUNT})")
        ),
    ]
    if not digest.riskiest:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="No open findings.")))
    for finding in digest.riskiest:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_risky_mrkdwn(finding))))
    blocks.append(DividerBlock())
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_places_mrkdwn(digest.places))))
    if len(blocks) > MAX_BLOCKS:  # cannot happen with the fixed layout; kept as the guard rail
        raise ValueError(f"digest has {len(blocks)} blocks, Slack allows {MAX_BLOCKS}")
    return [block.to_dict() for block in blocks]


def _risky_mrkdwn(finding: RiskyFinding) -> str:
    where = escape_mrkdwn(finding.where) or "unknown place"
    if finding.permalink:
        where = f"<{finding.permalink}|{where}>"
    text = (
        f"*{escape_mrkdwn(finding.name)}* `{escape_mrkdwn(finding.preview)}` "
        f"risk {finding.risk_score} ({escape_mrkdwn(finding.risk_level)})\n"
        f"{where} · posted by {_owner_mrkdwn(finding.owner)} · open for "
        f"{format_duration(finding.age)}"
    )
    return _clip(text, MAX_SECTION_TEXT)


def _places_mrkdwn(places: Sequence[LeakyPlace]) -> str:
    if not places:
        return "*Where keys leaked this week*\nnowhere"
    lines = ["*Where keys leaked this week*"]
    for place in places:
        lines.append(f"• {escape_mrkdwn(place.label)}: {_count(place.secrets, 'key')}")
    return _clip("\n".join(lines), MAX_SECTION_TEXT)


def digest_text(digest: WeeklyDigest) -> str:
    """The digest for a terminal: plain text, the same numbers as the Block Kit message."""
    lines = [
        f"LeakWatch weekly digest: {_week_label(digest.week)}",
        "",
        f"  New findings     {digest.new}",
        f"  Still open       {digest.open}",
        f"  Rotated          {digest.rotated}",
        f"  Not a secret     {digest.not_a_secret}",
        f"  Regressions      {digest.regressions}",
        f"  Median time to rotate: {_median_line(digest)}",
        "",
        "Open by age",
    ]
    lines += [f"  {label:<14} {count}" for label, count in digest.open_by_age]
    for title, rows, label in (
        ("By provider", digest.by_provider, str),
        ("By source", digest.by_source, _source_label),
    ):
        lines += ["", f"{title:<24} {'new':>5} {'open':>5}"]
        lines += [f"  {label(r.key):<22} {r.new:>5} {r.open:>5}" for r in rows] or ["  none"]
    lines += ["", f"Riskiest open findings (top {RISKIEST_COUNT})"]
    for finding in digest.riskiest:
        lines.append(
            f"  [{finding.risk_score:>3} {finding.risk_level}] {finding.name} {finding.preview}"
            f"  {finding.where or 'unknown place'}, by {finding.owner or 'unknown'},"
            f" open for {format_duration(finding.age)}"
        )
        if finding.permalink:
            lines.append(f"        {finding.permalink}")
    if not digest.riskiest:
        lines.append("  none")
    lines += ["", "Where keys leaked this week"]
    lines += [
        f"  {p.label}: {_count(p.secrets, 'key')}, {_count(p.occurrences, 'time')}"
        for p in digest.places
    ]
    if not digest.places:
        lines.append("  nowhere")
    return "\n".join(lines) + "\n"
