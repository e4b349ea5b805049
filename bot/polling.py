"""One poll of one source: every unit, from its stored cursor, through the pipeline.

    report = poll_source(db, source, detector, workspace="T0123")

Each batch of a unit's documents is ingested in its own transaction together with the cursor
that is safe once those documents are stored, so a crash resumes from the last committed batch:
nothing is lost, and nothing is alerted twice (the outbox's dedupe keys cover the batch that was
read again). What a failure does (connectors/base.py draws the tree):

    UnitError             recorded on the unit's cursor row (last_error), the next unit goes on
    TransientSourceError  recorded on the unit, the rest of this poll is skipped: try later
    FatalSourceError      recorded on the unit and raised as PollAborted, naming what to fix
    anything else         propagates; committed batches stay committed
Error texts are redacted (bot.logs.redact) before they are stored, logged or reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from bot.logs import redact
from bot.pipeline import IngestResult, Scanner, ingest
from bot.store import queries
from bot.store.db import Database
from bot.store.models import utcnow
from connectors.base import (
    Document,
    FatalSourceError,
    Source,
    TransientSourceError,
    Unit,
    UnitError,
)

log = logging.getLogger(__name__)

POLL_BATCH_DOCUMENTS: Final = 1000
# A slow source (Slack outside the Marketplace: 15 messages a minute) must not hold a found key
# back until a batch fills up: a batch is also committed once it is this old.
POLL_BATCH_SECONDS: Final = 5.0


class PollAborted(Exception):
    """The source as a whole cannot be read; the message says which source and why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"polling {source} stopped: {reason}")
        self.source = source
        self.reason = reason


@dataclass
class PollReport:
    source: str
    units_ok: list[str] = field(default_factory=list)
    units_failed: list[tuple[str, str]] = field(default_factory=list)  # (unit id, reason)
    stopped: str | None = None  # why the poll ended early (a transient error), if it did
    result: IngestResult = field(default_factory=IngestResult)

    @property
    def documents(self) -> int:
        return self.result.documents

    @property
    def findings(self) -> int:
        """New occurrences: places a key was found that were not known before."""
        return self.result.new_occurrences

    @property
    def notifications(self) -> int:
        return self.result.notifications


def poll_source(
    db: Database,
    source: Source,
    detector: Scanner,
    *,
    workspace: str = "",
    now: datetime | None = None,
    batch_size: int = POLL_BATCH_DOCUMENTS,
    batch_seconds: float = POLL_BATCH_SECONDS,
) -> PollReport:
    """Read every unit of `source` once from its cursor; see the module docstring.

    A batch is committed when it holds `batch_size` documents or is `batch_seconds` old.
    """
    report = PollReport(source=source.kind)
    try:
        units = list(source.units())
    except FatalSourceError as error:
        raise PollAborted(source.kind, redact(str(error))) from error
    except TransientSourceError as error:
        report.stopped = f"listing units failed, will retry: {redact(str(error))}"
        log.warning("poll of %s skipped: %s", source.kind, report.stopped)
        return report
    for unit in units:
        try:
            _poll_unit(
                db, source, unit, detector, workspace, now, (batch_size, batch_seconds), report
            )
        except UnitError as error:
            reason = redact(error.reason)
            _record_failure(db, source.kind, unit, workspace, reason, now)
            report.units_failed.append((unit.id, reason))
            log.warning("%s unit %s skipped: %s", source.kind, unit.id, reason)
        except TransientSourceError as error:
            reason = redact(str(error))
            _record_failure(db, source.kind, unit, workspace, reason, now)
            report.units_failed.append((unit.id, reason))
            report.stopped = f"{unit.id}: {reason}"
            log.warning("poll of %s paused at %s: %s", source.kind, unit.id, reason)
            break
        except FatalSourceError as error:
            reason = redact(str(error))
            _record_failure(db, source.kind, unit, workspace, reason, now)
            raise PollAborted(source.kind, reason) from error
        else:
            report.units_ok.append(unit.id)
    log.info(
        "polled %s: %d units ok, %d failed, %d documents, %d new findings",
        source.kind, len(report.units_ok), len(report.units_failed),
        report.documents, report.findings,
    )  # fmt: skip
    return report


def _poll_unit(
    db: Database,
    source: Source,
    unit: Unit,
    detector: Scanner,
    workspace: str,
    now: datetime | None,
    limits: tuple[int, float],
    report: PollReport,
) -> None:
    batch_size, batch_seconds = limits
    with db.session() as session:
        cursor = queries.get_cursor_value(
            session, workspace=workspace, source=source.kind, unit=unit.id
        )
    batch: list[Document] = []
    started = time.monotonic()
    for document, safe_cursor in source.documents(unit, cursor):
        batch.append(document)
        if safe_cursor is not None:
            cursor = safe_cursor
        if len(batch) >= batch_size or time.monotonic() - started >= batch_seconds:
            _commit(db, source.kind, unit, batch, cursor, detector, workspace, now, report)
            batch = []
            started = time.monotonic()
    # Also with an empty batch: the unit was read cleanly, which clears its last error.
    _commit(db, source.kind, unit, batch, cursor, detector, workspace, now, report)


def _commit(
    db: Database,
    kind: str,
    unit: Unit,
    batch: Sequence[Document],
    cursor: str | None,
    detector: Scanner,
    workspace: str,
    now: datetime | None,
    report: PollReport,
) -> None:
    moment = now or utcnow()
    with db.session() as session:
        result = ingest(session, batch, detector, now=moment, workspace=workspace or None)
        queries.set_cursor(
            session, workspace=workspace, source=kind, unit=unit.id, value=cursor, now=moment
        )
    report.result.add(result)


def _record_failure(
    db: Database, kind: str, unit: Unit, workspace: str, reason: str, now: datetime | None
) -> None:
    with db.session() as session:
        queries.record_unit_error(
            session, workspace=workspace, source=kind, unit=unit.id, error=reason,
            now=now or utcnow(),
        )  # fmt: skip
