"""Documents in, findings and queued notifications out: the one path every source takes.

    with db.session() as session:
        result = ingest(session, documents, detector, now=now)

In the caller's transaction, for each document: detect; upsert the secret (by workspace and
fingerprint) and its occurrence (one per secret and item); apply suppressions; score risk (a
secret's risk is that of its most exposed occurrence); and write outbox rows:

    "alert"           one per new occurrence, to its author: "user:U…" for Slack authors,
                      "email:addr" when only an address is known, "security" when no one is
                      (left out when a security_alert for the same occurrence is queued)
    "regression"      instead of "alert" when a rotated secret shows up in a new item; the
                      secret is open again and its `regressions` count goes up
    "security_alert"  once per secret when its risk is high or critical, again on a regression

Dedupe keys make ingesting the same documents again a no-op. A document whose item held a key
that its text no longer holds (an edit that removed it) marks that occurrence removed; if the
key comes back, the occurrence is live again (and alerts no one twice).

Cost: documents are taken in batches; each batch makes a fixed handful of queries (occurrences
already known for its items, secrets for its fingerprints, batched inserts), however many
documents it holds. A document without a match costs its scan and one dictionary lookup.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, Session

from bot.detection.risk import Risk, assess
from bot.detection.types import Match
from bot.store import queries
from bot.store.models import (
    ITEM_ID_LENGTH,
    TITLE_LENGTH,
    UNIT_LENGTH,
    AuditEvent,
    Base,
    Notification,
    Occurrence,
    Secret,
    fit_identifier,
    utcnow,
)
from connectors.base import Document

BATCH_DOCUMENTS: Final = 2000
IN_CHUNK: Final = 500  # values per IN (…) list: well under SQLite's bound-parameter limit
ACTOR: Final = "leakwatch"
NAME_LENGTH: Final = 255  # occurrences.unit_name and .author
EMAIL_LENGTH: Final = 320  # occurrences.author_email
ALERT_LEVELS: Final = frozenset({"critical", "high"})

# Rows are written through the Core tables, many at once (executemany, batched by SQLAlchemy's
# "insertmanyvalues" into multi-row INSERT … RETURNING); the ORM handles the few updates.
SECRETS: Final = Base.metadata.tables[Secret.__tablename__]
OCCURRENCES: Final = Base.metadata.tables[Occurrence.__tablename__]
NOTIFICATIONS: Final = Base.metadata.tables[Notification.__tablename__]
AUDIT_EVENTS: Final = Base.metadata.tables[AuditEvent.__tablename__]

T = TypeVar("T")
ItemKey = tuple[str, str, str]  # workspace, source, item id


class Scanner(Protocol):
    """What the pipeline needs of a detector (bot.detection.engine.Detector)."""

    def scan(self, text: str) -> list[Match]: ...


@dataclass
class IngestResult:
    documents: int = 0
    matches: int = 0
    new_secrets: int = 0
    new_occurrences: int = 0
    notifications: int = 0  # outbox rows queued
    suppressed: int = 0  # new occurrences not alerted: suppression, not_a_secret, accepted
    regressions: int = 0
    removed: int = 0  # occurrences whose item no longer holds the key
    secret_ids: set[int] = field(default_factory=set)  # secrets with a new occurrence

    def add(self, other: IngestResult) -> None:
        for name in (
            "documents", "matches", "new_secrets", "new_occurrences",
            "notifications", "suppressed", "regressions", "removed",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.secret_ids |= other.secret_ids


def ingest(
    session: Session,
    documents: Iterable[Document],
    detector: Scanner,
    *,
    now: datetime | None = None,
    workspace: str | None = None,
    batch_size: int = BATCH_DOCUMENTS,
) -> IngestResult:
    """Detect, store and queue notifications for `documents`, in the caller's transaction.

    `workspace`, when given, files every document under that workspace: a deployment with one
    Slack workspace passes its team id, so a key pasted in Slack and mailed is one finding.
    """
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("ingest() needs an aware datetime for `now` (UTC)")
    run = _Run(session, detector, now)
    batch: list[Document] = []
    items: set[ItemKey] = set()
    for document in documents:
        if workspace is not None and document.workspace != workspace:
            document = replace(document, workspace=workspace)
        document = _fitted(document)
        key = (document.workspace, document.source, document.item_id)
        # Two versions of one item in a batch are taken in order, in separate batches.
        if key in items or len(batch) >= batch_size:
            run.batch(batch)
            batch, items = [], set()
        batch.append(document)
        items.add(key)
    if batch:
        run.batch(batch)
    return run.result


def mark_item_removed(
    session: Session, *, source: str, workspace: str, item_id: str, now: datetime
) -> int:
    """The item was deleted: mark its live occurrences removed. Returns how many."""
    result = session.execute(
        sa.update(Occurrence)
        .where(
            Occurrence.workspace == workspace,
            Occurrence.source == source,
            Occurrence.item_id == fit_identifier(item_id, ITEM_ID_LENGTH),
            Occurrence.removed_at.is_(None),
        )
        .values(removed_at=now)
        .execution_options(synchronize_session=False)
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count


def recipient_for(document: Document) -> str:
    """Who is told about an occurrence: the Slack user, else an email address, else security."""
    if document.source == "slack" and document.author:
        return f"user:{document.author}"
    if document.author_email:
        return f"email:{document.author_email}"
    if document.author and "@" in document.author:
        return f"email:{document.author}"
    return "security"


@dataclass
class _Known:
    occurrence_id: int
    removed_at: datetime | None


@dataclass
class _New:
    document: Document
    match: Match
    secret: Secret


class _Run:
    def __init__(self, session: Session, detector: Scanner, now: datetime) -> None:
        self.session = session
        self.detector = detector
        self.now = now
        self.result = IngestResult()
        self._suppressions: dict[str, queries.Suppressions] = {}
        self._audit_rows: list[dict[str, Any]] = []

    def batch(self, documents: Sequence[Document]) -> None:
        scanned: list[tuple[Document, dict[str, Match]]] = []
        matches = 0
        for document in documents:
            found: dict[str, Match] = {}
            for match in self.detector.scan(document.text):
                matches += 1
                found.setdefault(match.fingerprint, match)  # the first place a key appears
            scanned.append((document, found))
        self.result.documents += len(documents)
        self.result.matches += matches

        known = self._known_occurrences(documents)
        wanted = {(d.workspace, fp): m for d, found in scanned for fp, m in found.items()}
        if not wanted and not known:
            return
        secrets, created = self._secrets(wanted)

        new: list[_New] = []
        removed: list[int] = []
        revived: list[int] = []
        for document, found in scanned:
            item = known.get((document.workspace, document.source, document.item_id), {})
            for fingerprint, stored in item.items():
                if fingerprint not in found and stored.removed_at is None:
                    removed.append(stored.occurrence_id)
            for fingerprint, match in found.items():
                occurrence = item.get(fingerprint)
                if occurrence is None:
                    secret = secrets[(document.workspace, fingerprint)]
                    new.append(_New(document, match, secret))
                elif occurrence.removed_at is not None:
                    revived.append(occurrence.occurrence_id)
        self._set_removed(removed, self.now)
        self._set_removed(revived, None)
        self.result.removed += len(removed)

        inserted = self._insert_occurrences(new)
        outbox: list[dict[str, Any]] = []
        for entry in new:
            occurrence_id = inserted.get(
                (entry.secret.id, entry.document.source, entry.document.item_id)
            )
            if occurrence_id is not None:  # None: a concurrent writer recorded it first
                outbox.extend(self._record(entry, occurrence_id, entry.secret.id in created))
                created.discard(entry.secret.id)
        self._queue(outbox)
        self._write_audit()

    # --- the steps of a batch -------------------------------------------------------------------

    def _known_occurrences(self, documents: Sequence[Document]) -> dict[ItemKey, dict[str, _Known]]:
        """Occurrences already stored for the batch's items, by item and fingerprint."""
        groups: dict[tuple[str, str], set[str]] = defaultdict(set)
        for document in documents:
            groups[(document.workspace, document.source)].add(document.item_id)
        known: dict[ItemKey, dict[str, _Known]] = defaultdict(dict)
        in_items = self._in_list()
        for (workspace, source), item_ids in groups.items():
            rows = self.session.execute(
                sa.select(Occurrence.item_id, Secret.fingerprint, Occurrence.id,
                          Occurrence.removed_at)
                .join(Secret, Secret.id == Occurrence.secret_id)
                .where(
                    Occurrence.workspace == workspace,
                    Occurrence.source == source,
                    in_items(Occurrence.item_id),
                ),
                {"items": in_items.value(item_ids)},
            )  # fmt: skip
            for item_id, fingerprint, occurrence_id, removed_at in rows:
                known[(workspace, source, item_id)][fingerprint] = _Known(occurrence_id, removed_at)
        return known

    def _in_list(self) -> _ItemsIn:
        return _ItemsIn(self.session.get_bind().dialect.name)

    def _secrets(
        self, wanted: dict[tuple[str, str], Match]
    ) -> tuple[dict[tuple[str, str], Secret], set[int]]:
        """The Secret of every (workspace, fingerprint), inserting the missing ones."""
        secrets = self._load_secrets(wanted.keys())
        # Sorted, so that two writers insert in the same order and cannot deadlock.
        missing = sorted(key for key in wanted if key not in secrets)
        created: set[int] = set()
        if missing:
            rows = [_secret_row(ws, wanted[(ws, fp)], self.now) for ws, fp in missing]
            statement = queries.insert_ignoring_conflicts(
                self.session, SECRETS, ["workspace", "fingerprint"]
            ).returning(SECRETS.c.id)
            created.update(self.session.connection().execute(statement, rows).scalars())
        if missing:
            secrets.update(self._load_secrets(missing))
        return secrets, created

    def _load_secrets(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Secret]:
        by_workspace: dict[str, list[str]] = defaultdict(list)
        for workspace, fingerprint in keys:
            by_workspace[workspace].append(fingerprint)
        found: dict[tuple[str, str], Secret] = {}
        for workspace, fingerprints in by_workspace.items():
            for chunk in _chunks(fingerprints, IN_CHUNK):
                for secret in self.session.scalars(
                    sa.select(Secret).where(
                        Secret.workspace == workspace, Secret.fingerprint.in_(chunk)
                    )
                ):
                    found[(secret.workspace, secret.fingerprint)] = secret
        return found

    def _insert_occurrences(self, new: Sequence[_New]) -> dict[tuple[int, str, str], int]:
        inserted: dict[tuple[int, str, str], int] = {}
        if not new:
            return inserted
        columns = OCCURRENCES.c
        statement = queries.insert_ignoring_conflicts(
            self.session, OCCURRENCES, ["secret_id", "source", "item_id"]
        ).returning(columns.id, columns.secret_id, columns.source, columns.item_id)
        # In document order: occurrence ids then follow the order in which places were seen.
        rows = [_occurrence_row(entry, self.now) for entry in new]
        for occurrence_id, secret_id, source, item_id in self.session.connection().execute(
            statement, rows
        ):
            inserted[(secret_id, source, item_id)] = occurrence_id
        return inserted

    def _record(self, entry: _New, occurrence_id: int, is_new: bool) -> list[dict[str, Any]]:
        """Apply one new occurrence to its secret; return the notifications it calls for."""
        document, match, secret = entry.document, entry.match, entry.secret
        result, now = self.result, self.now
        result.new_occurrences += 1
        result.secret_ids.add(secret.id)
        risk = assess(
            match.severity,
            document.exposure,
            source=document.source,
            posted_at=document.posted_at,
            now=now,
            name=match.name,
        )
        if is_new or risk.score > secret.risk_score:
            _set_risk(secret, risk)
        if secret.last_seen < now:
            secret.last_seen = now
        suppression = self._suppressions_for(document.workspace).find(
            workspace=document.workspace,
            fingerprint=match.fingerprint,
            rule_id=match.rule_id,
            value=match.secret,
        )
        kind = "alert"
        if is_new:
            result.new_secrets += 1
            self._audit(secret, "detected", {"rule_id": match.rule_id, "source": document.source})
            if suppression is not None:
                secret.status = "not_a_secret"
                secret.status_by = suppression.created_by
                secret.status_at = now
                secret.status_reason = f"suppressed: {suppression.reason}".rstrip(": ")
                self._audit(secret, "suppressed", {"suppression": suppression.id})
        elif secret.status == "rotated" and suppression is None:
            secret.status = "open"
            secret.status_by = ACTOR
            secret.status_at = now
            secret.status_reason = "seen again in a new place after it was marked rotated"
            secret.regressions += 1
            result.regressions += 1
            kind = "regression"
            self._audit(secret, "regression", {"occurrence": occurrence_id})
        if suppression is not None or secret.status in ("not_a_secret", "accepted"):
            result.suppressed += 1
            return []

        rows = []
        if secret.risk_level in ALERT_LEVELS:
            key = f"security_alert:{secret.id}"
            if kind == "regression":
                key += f":regression:{secret.regressions}"
            rows.append(
                _notification_row(secret, occurrence_id, "security_alert", "security", key, now)
            )
        recipient = recipient_for(document)
        if recipient != "security" or not rows:  # no author: the security alert says it all
            alert = _notification_row(
                secret, occurrence_id, kind, recipient, f"alert:{occurrence_id}", now
            )
            rows.insert(0, alert)
        return rows

    def _queue(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        statement = queries.insert_ignoring_conflicts(
            self.session, NOTIFICATIONS, ["dedupe_key"]
        ).returning(NOTIFICATIONS.c.id)
        queued = self.session.connection().execute(statement, rows).scalars().all()
        self.result.notifications += len(queued)

    def _set_removed(self, occurrence_ids: list[int], value: datetime | None) -> None:
        for chunk in _chunks(occurrence_ids, IN_CHUNK):
            self.session.execute(
                sa.update(Occurrence)
                .where(Occurrence.id.in_(chunk))
                .values(removed_at=value)
                .execution_options(synchronize_session=False)
            )

    def _suppressions_for(self, workspace: str) -> queries.Suppressions:
        if workspace not in self._suppressions:
            self._suppressions[workspace] = queries.load_suppressions(self.session, [workspace])
        return self._suppressions[workspace]

    def _audit(self, secret: Secret, action: str, detail: dict[str, Any]) -> None:
        self._audit_rows.append(
            {
                "workspace": secret.workspace,
                "secret_id": secret.id,
                "actor": ACTOR,
                "action": action,
                "origin": "pipeline",
                "detail": detail,
                "at": self.now,
            }
        )

    def _write_audit(self) -> None:
        if self._audit_rows:
            self.session.connection().execute(sa.insert(AUDIT_EVENTS), self._audit_rows)
        self._audit_rows = []


class _ItemsIn:
    """`column IN (the batch's item ids)` as ONE bound value, not one parameter per id.

    A batch holds thousands of ids; rendering and binding each as its own parameter would cost
    more than the query. PostgreSQL takes an array (`= ANY(:items)`), SQLite a JSON list read
    by `json_each`.
    """

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def __call__(self, column: QueryableAttribute[str]) -> sa.ColumnElement[bool]:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == sa.any_(sa.bindparam("items", type_=ARRAY(sa.String)))
        each = sa.func.json_each(sa.bindparam("items", type_=sa.String)).table_valued("value")
        return column.in_(sa.select(each.c.value))

    def value(self, items: Iterable[str]) -> object:
        return list(items) if self.dialect == "postgresql" else json.dumps(list(items))


def _fitted(document: Document) -> Document:
    """The document with its fields cut to the columns' sizes (rarely needed, so checked first).

    Ids keep a stable, distinct form (`fit_identifier`); descriptive text is simply cut.
    """
    author, email = document.author or "", document.author_email or ""
    if (
        len(document.item_id) <= ITEM_ID_LENGTH
        and len(document.unit) <= UNIT_LENGTH
        and len(document.unit_name) <= NAME_LENGTH
        and len(document.title) <= TITLE_LENGTH
        and len(author) <= NAME_LENGTH
        and len(email) <= EMAIL_LENGTH
    ):
        return document
    return replace(
        document,
        item_id=fit_identifier(document.item_id, ITEM_ID_LENGTH),
        unit=fit_identifier(document.unit, UNIT_LENGTH),
        unit_name=document.unit_name[:NAME_LENGTH],
        title=document.title[:TITLE_LENGTH],
        author=document.author[:NAME_LENGTH] if document.author else document.author,
        author_email=email if len(email) <= EMAIL_LENGTH else None,  # cut, it would mislead
    )


def _set_risk(secret: Secret, risk: Risk) -> None:
    secret.risk_score = risk.score
    secret.risk_level = risk.level
    secret.risk_reasons = list(risk.reasons)


def _secret_row(workspace: str, match: Match, now: datetime) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "fingerprint": match.fingerprint,
        "rule_id": match.rule_id,
        "provider": match.provider,
        "name": match.name,
        "preview": match.preview,
        "severity": match.severity.value,
        "risk_score": 0,
        "risk_level": "low",
        "risk_reasons": [],
        "status": "open",
        "first_seen": now,
        "last_seen": now,
        "regressions": 0,
    }


def _occurrence_row(entry: _New, now: datetime) -> dict[str, Any]:
    document, match, exposure = entry.document, entry.match, entry.document.exposure
    return {
        "secret_id": entry.secret.id,
        "workspace": document.workspace,
        "source": document.source,
        "unit": document.unit,
        "unit_name": document.unit_name,
        "item_id": document.item_id,
        "title": document.title,
        "author": document.author,
        "author_email": document.author_email,
        "permalink": document.permalink,
        "posted_at": document.posted_at,
        "detected_at": now,
        "removed_at": None,
        "line": match.line,
        "column": match.column,
        "audience": exposure.audience,
        "is_public": exposure.is_public,
        "is_external": exposure.is_external,
        "is_anonymous": exposure.is_anonymous,
        "is_history": exposure.is_history,
    }


def _notification_row(
    secret: Secret, occurrence_id: int, kind: str, recipient: str, key: str, now: datetime
) -> dict[str, Any]:
    return {
        "workspace": secret.workspace,
        "secret_id": secret.id,
        "occurrence_id": occurrence_id,
        "kind": kind,
        "recipient": recipient,
        "dedupe_key": key,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "send_after": now,
    }


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
