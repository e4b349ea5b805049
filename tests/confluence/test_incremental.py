"""Polls after the first: edits, new comments, idle spaces, clock skew and a lagging index."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.polling import poll_source
from bot.store.db import Database
from bot.store.models import Notification, Occurrence
from connectors.confluence import ConfluenceCursor
from tests.confluence.conftest import Cloud, detector, found_keys, key, read_all


def _notifications(database: Database) -> list[Notification]:
    with database.session() as session:
        return list(session.scalars(sa.select(Notification).order_by(Notification.id)))


def _occurrences(database: Database) -> list[Occurrence]:
    with database.session() as session:
        return list(session.scalars(sa.select(Occurrence).order_by(Occurrence.id)))


def test_edits_and_new_comments_alert_once_each(cloud: Cloud, database: Database) -> None:
    site = cloud.site
    alice = site.add_user("Alice Adams", "alice@example.com")
    space = site.add_space("ENG", "Engineering")
    page = site.add_page(space, "Runbook", f"<p>{key(1)}</p>", alice)
    source = cloud.source()

    first = poll_source(database, source, detector())
    again = poll_source(database, source, detector())
    site.edit(page, f"<p>{key(1)}</p><p>and the new one: {key(2)}</p>", alice)
    site.add_comment(page, f"<p>mine is {key(3)}</p>", alice)
    after_edit = poll_source(database, source, detector())
    idle = poll_source(database, source, detector())

    assert (first.findings, again.findings, after_edit.findings, idle.findings) == (1, 0, 2, 0)
    alerts = [n for n in _notifications(database) if n.kind == "alert"]
    assert len(alerts) == 3
    assert {n.recipient for n in alerts} == {"email:alice@example.com"}
    occurrences = _occurrences(database)
    assert sorted(o.item_id for o in occurrences) == sorted([page.id, page.id, _comment_id(site)])
    assert all(o.removed_at is None for o in occurrences)


def _comment_id(site) -> str:  # type: ignore[no-untyped-def]
    return next(c.id for c in site.contents.values() if c.type == "comment")


def test_an_idle_space_costs_one_search_per_poll(cloud: Cloud, database: Database) -> None:
    for name in ("A", "B", "C"):
        space = cloud.site.add_space(name)
        for n in range(4):
            cloud.site.add_page(space, f"{name}{n}", f"<p>page {n}</p>", cloud.admin)
    source = cloud.source()
    poll_source(database, source, detector())
    cloud.standin.reset_calls()

    report = poll_source(database, source, detector())

    assert report.units_ok == ["A", "B", "C"] and report.documents == 0
    assert [call.path for call in cloud.standin.calls] == ["/rest/api/search"] * 3


def test_a_cursor_survives_a_new_source_object(cloud: Cloud, database: Database) -> None:
    """A restart builds a new source; the stored cursor alone keeps the read incremental."""
    space = cloud.site.add_space("ENG")
    page = cloud.site.add_page(space, "A", f"<p>{key(4)}</p>", cloud.admin)
    poll_source(database, cloud.source(), detector())
    cloud.site.edit(page, f"<p>{key(4)} {key(5)}</p>", cloud.admin)
    cloud.standin.reset_calls()

    report = poll_source(database, cloud.source(), detector())

    assert report.findings == 1
    search = cloud.standin.calls_to(r"^/rest/api/search$")[0]
    assert 'lastmodified >= now("-' in search.params["cql"]


def test_content_indexed_late_is_still_read_within_the_overlap(cloud: Cloud) -> None:
    """Search can list a change minutes after it happened; the overlap window catches it."""
    space = cloud.site.add_space("ENG")
    cloud.site.add_page(space, "First", "<p>nothing here</p>", cloud.admin)
    late_when = datetime.now(UTC) - timedelta(minutes=5)
    for overlap, expected in ((timedelta(minutes=15), {key(6)}), (timedelta(0), set())):
        cursors: dict[str, str | None] = {}
        source = cloud.source(overlap=overlap)
        read_all(source, cursors)
        late = cloud.site.add_page(space, "Late", f"<p>{key(6)}</p>", cloud.admin, when=late_when)
        assert set(found_keys(read_all(source, cursors))) == expected
        cloud.site.delete(late)


def test_server_clock_skew_loses_nothing(cloud: Cloud) -> None:
    """The server's clock runs ahead or behind ours; edits after a poll are still all read."""
    skews = (timedelta(minutes=10), timedelta(minutes=-10), timedelta(hours=3))
    for seed, skew in enumerate(skews):
        cloud.site.clock = lambda skew=skew: datetime.now(UTC) + skew
        space = cloud.site.add_space(f"S{seed}")
        page = cloud.site.add_page(space, "Skewed", "<p>v1</p>", cloud.admin)
        cursors: dict[str, str | None] = {}
        source = cloud.source(cloud.config(spaces=(space.key,)))
        read_all(source, cursors)
        cloud.site.edit(page, f"<p>{key(20 + seed)}</p>", cloud.admin)
        assert set(found_keys(read_all(source, cursors))) == {key(20 + seed)}, skew
        assert found_keys(read_all(source, cursors)) == {}, skew  # and nothing twice


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=80),
        st.builds(
            json.dumps,
            st.dictionaries(
                st.text(max_size=8),
                st.one_of(
                    st.none(),
                    st.text(max_size=30),
                    st.integers(),
                    st.dictionaries(st.text(max_size=5), st.text(max_size=30)),
                ),
                max_size=4,
            ),
        ),
    )
)
def test_any_stored_cursor_parses_or_starts_over(value: str | None) -> None:
    cursor = ConfluenceCursor.parse(value)
    assert isinstance(str(cursor), str)
    assert str(ConfluenceCursor.parse(str(cursor))) == str(cursor)


def test_an_unreadable_cursor_reads_the_space_again(cloud: Cloud) -> None:
    cloud.site.add_page(cloud.site.add_space("ENG"), "A", f"<p>{key(30)}</p>", cloud.admin)
    assert set(found_keys(read_all(cloud.source(), {"ENG": "{not json"}))) == {key(30)}
