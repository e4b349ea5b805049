"""Polling a source: cursors per unit, one bad unit skipped, a crash resumed without loss."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.polling import PollAborted, poll_source
from bot.store import queries
from bot.store.db import Database
from bot.store.models import Notification, Occurrence
from connectors.base import (
    Document,
    Exposure,
    SourceAuthError,
    SourceKind,
    TransientSourceError,
    Unit,
    UnitError,
)
from tests.pipeline.keys import KeyDetector, key

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class ListSource:
    """A source whose units hold numbered messages; the cursor is the last number read."""

    kind: SourceKind = "slack"

    def __init__(self, units: dict[str, list[str]]) -> None:
        self.messages = units
        self.broken: dict[str, Exception] = {}  # unit -> raised when it is read
        self.crash_after: int | None = None  # raise RuntimeError after this many documents
        self.served = 0
        self.cursors_seen: dict[str, str | None] = {}

    def units(self) -> Iterator[Unit]:
        for unit_id in self.messages:
            yield Unit(unit_id, f"#{unit_id.lower()}")

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        self.cursors_seen[unit.id] = cursor
        if unit.id in self.broken:
            raise self.broken[unit.id]
        start = int(cursor) + 1 if cursor is not None else 0
        for number, text in enumerate(self.messages[unit.id][start:], start):
            if self.crash_after is not None and self.served >= self.crash_after:
                self.crash_after = None
                raise RuntimeError("connection reset in the middle of a page")
            self.served += 1
            document = Document(
                source="slack", unit=unit.id, item_id=f"{unit.id}:{number}", text=text,
                workspace="T1", author="U1", exposure=Exposure(audience=10),
            )  # fmt: skip
            yield document, str(number)


def messages(unit: int, count: int) -> list[str]:
    return [f"key {key(f'{unit}-{n}')}" if n % 5 == 0 else f"message {n}" for n in range(count)]


def cursor_of(db: Database, unit: str) -> str | None:
    with db.session() as s:
        return queries.get_cursor_value(s, workspace="T1", source="slack", unit=unit)


def test_each_unit_is_read_from_its_cursor(db: Database, detector: KeyDetector) -> None:
    source = ListSource({"C1": messages(1, 12), "C2": messages(2, 3)})
    first = poll_source(db, source, detector, workspace="T1", now=NOW, batch_size=5)
    assert (first.units_ok, first.documents, first.findings) == (["C1", "C2"], 15, 4)
    assert (cursor_of(db, "C1"), cursor_of(db, "C2")) == ("11", "2")

    source.messages["C1"] += ["new message", f"another {key('late')}"]
    second = poll_source(db, source, detector, workspace="T1", now=NOW, batch_size=5)
    assert source.cursors_seen == {"C1": "11", "C2": "2"}
    assert (second.documents, second.findings, second.notifications) == (2, 1, 2)  # DM + security


def test_an_unreadable_unit_is_recorded_and_the_others_are_read(
    db: Database, detector: KeyDetector
) -> None:
    source = ListSource({"C1": messages(1, 3), "C2": messages(2, 3), "C3": messages(3, 3)})
    source.broken["C2"] = UnitError("C2", "not_in_channel")
    report = poll_source(db, source, detector, workspace="T1", now=NOW)
    assert report.units_ok == ["C1", "C3"]
    assert report.units_failed == [("C2", "not_in_channel")]
    with db.session() as s:
        cursor = queries.get_cursor(s, workspace="T1", source="slack", unit="C2")
        assert cursor is not None and cursor.last_error == "not_in_channel"
    del source.broken["C2"]  # the bot was invited: the next clean read clears the error
    poll_source(db, source, detector, workspace="T1", now=NOW)
    with db.session() as s:
        cursor = queries.get_cursor(s, workspace="T1", source="slack", unit="C2")
        assert cursor is not None and (cursor.last_error, cursor.value) == (None, "2")


def test_a_fatal_error_stops_the_source_with_a_clear_message(
    db: Database, detector: KeyDetector
) -> None:
    source = ListSource({"C1": messages(1, 3), "C2": messages(2, 3)})
    source.broken["C1"] = SourceAuthError("invalid_auth: the bot token was revoked")
    with pytest.raises(PollAborted, match="polling slack stopped: invalid_auth"):
        poll_source(db, source, detector, workspace="T1", now=NOW)
    assert "C2" not in source.cursors_seen


def test_a_transient_error_pauses_the_poll(db: Database, detector: KeyDetector) -> None:
    source = ListSource({"C1": messages(1, 3), "C2": messages(2, 3), "C3": messages(3, 3)})
    source.broken["C2"] = TransientSourceError("ratelimited for longer than we wait")
    report = poll_source(db, source, detector, workspace="T1", now=NOW)
    assert report.units_ok == ["C1"] and report.stopped is not None
    assert "C3" not in source.cursors_seen


def test_a_crash_mid_unit_resumes_from_the_last_committed_batch(
    db: Database, detector: KeyDetector
) -> None:
    source = ListSource({"C1": messages(1, 23), "C2": messages(2, 4)})
    source.crash_after = 13  # batches of 5: 0-4 and 5-9 committed, 10-12 read and lost
    with pytest.raises(RuntimeError):
        poll_source(db, source, detector, workspace="T1", now=NOW, batch_size=5)
    assert cursor_of(db, "C1") == "9"
    report = poll_source(db, source, detector, workspace="T1", now=NOW, batch_size=5)
    assert source.cursors_seen["C1"] == "9"
    assert report.documents == 13 + 4
    with db.session() as s:
        items = s.scalars(sa.select(Occurrence.item_id).order_by(Occurrence.id)).all()
        alerts = s.scalar(
            sa.select(sa.func.count()).select_from(Notification).where(Notification.kind == "alert")
        )
    expected = [f"C1:{n}" for n in range(0, 23, 5)] + ["C2:0"]
    assert items == expected  # every key once: none lost, none twice
    assert alerts == len(expected)


def test_a_slow_source_commits_what_it_has_without_waiting_for_a_full_batch(
    db: Database, detector: KeyDetector
) -> None:
    source = ListSource({"C1": messages(1, 4)})
    committed: list[str | None] = []

    class Slow(ListSource):
        def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:  # noqa: E501
            for document, safe in source.documents(unit, cursor):
                yield document, safe
                committed.append(cursor_of(db, "C1"))  # what another process would see now

    poll_source(db, Slow({"C1": []}), detector, workspace="T1", now=NOW,
                batch_size=1000, batch_seconds=0.0)  # fmt: skip
    assert committed == ["0", "1", "2", "3"]  # each document committed as soon as it was read
