"""Properties of ingest over arbitrary message histories (posts, edits, repeats)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.pipeline import ingest
from bot.store.db import Database
from bot.store.models import Notification, Occurrence
from connectors.base import Document
from tests.pipeline.keys import KeyDetector, key

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEYS = [key(n, severity) for n, severity in enumerate(("critical", "low", "medium", "high"))]

# A version of a message: which item, and which of the keys its text holds.
versions = st.lists(
    st.tuples(st.integers(0, 4), st.sets(st.integers(0, len(KEYS) - 1), max_size=3)),
    min_size=1,
    max_size=25,
)


def _documents(history: list[tuple[int, set[int]]]) -> list[Document]:
    return [
        Document(source="slack", unit="C1", item_id=f"C1:{item}", workspace="T1", author="U1",
                 text=" ".join(["text"] + [KEYS[k] for k in sorted(held)]))
        for item, held in history
    ]  # fmt: skip


def _state(db: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with db.session() as s:
        occurrences = s.execute(
            sa.select(Occurrence.item_id, Occurrence.secret_id, Occurrence.removed_at)
            .order_by(Occurrence.id)
        ).all()
        outbox = s.execute(
            sa.select(Notification.kind, Notification.dedupe_key).order_by(Notification.id)
        ).all()
    return [tuple(r) for r in occurrences], [tuple(r) for r in outbox]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=versions, batch_size=st.integers(1, 8))
def test_any_history_alerts_once_per_key_and_place_and_replays_as_a_no_op(
    history: list[tuple[int, set[int]]], batch_size: int
) -> None:
    detector = KeyDetector()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'p.db'}")
        db.upgrade()
        try:
            documents = _documents(history)
            with db.session() as s:
                ingest(s, documents, detector, now=NOW, batch_size=batch_size)
            first = _state(db)
            with db.session() as s:
                again = ingest(s, documents, detector, now=NOW, batch_size=batch_size)
            assert (again.new_occurrences, again.notifications) == (0, 0)
            assert _state(db) == first

            occurrences, outbox = first
            places = {(item, k) for item, held in history for k in held}
            assert len(occurrences) == len(places)
            assert [kind for kind, _ in outbox].count("alert") == len(places)
            # live or removed: what the item's last version holds
            last = {item: held for item, held in history}
            live = {(item, k) for item, held in last.items() for k in held}
            assert sum(removed is None for _, _, removed in occurrences) == len(live)
        finally:
            db.dispose()
