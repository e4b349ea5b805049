"""Keys that an edit removed but the page history still holds."""

from __future__ import annotations

import sqlalchemy as sa

from bot.polling import poll_source
from bot.store.db import Database
from bot.store.models import Occurrence
from tests.confluence.conftest import Cloud, detector, found_keys, key, read_all


def test_a_key_removed_by_an_edit_is_found_in_the_old_version(cloud: Cloud) -> None:
    site = cloud.site
    bob = site.add_user("Bob Brown", "bob@example.com")
    alice = site.add_user("Alice Adams", "alice@example.com")
    space = site.add_space("ENG")
    page = site.add_page(space, "Setup", f"<p>Setup</p><p>OPENAI_API_KEY={key(1)}</p>", bob)
    site.edit(page, "<p>Setup</p><p>OPENAI_API_KEY=(ask the platform team)</p>", alice)

    documents = read_all(cloud.source())
    found = found_keys(documents)

    assert list(found) == [key(1)]
    [history] = found[key(1)]
    assert history.item_id == f"{page.id}@v1"
    assert history.exposure.is_history
    assert history.extra["version"] == "1" and history.extra["removed_in_version"] == "2"
    assert history.extra["history_url"].endswith(f"viewpreviousversions.action?pageId={page.id}")
    assert history.author_email == "bob@example.com"  # who wrote the version that holds it
    assert "Setup" not in history.text  # only what the edit removed
    [current] = [d for d in documents if d.item_id == page.id]
    assert not current.exposure.is_history


def test_a_key_kept_for_several_versions_is_one_history_item(cloud: Cloud) -> None:
    site = cloud.site
    space = site.add_space("ENG")
    page = site.add_page(space, "Notes", f"<p>key {key(2)}</p>", cloud.admin)
    site.edit(page, f"<p>key {key(2)}</p><p>more</p>", cloud.admin)
    site.edit(page, f"<p>the key is {key(2)}</p><p>more</p>", cloud.admin)  # reworded around it
    site.edit(page, "<p>more</p>", cloud.admin)

    found = found_keys(read_all(cloud.source()))

    assert [d.item_id for d in found[key(2)]] == [f"{page.id}@v3"]


def test_a_key_still_on_the_page_is_not_reported_as_history(cloud: Cloud) -> None:
    site = cloud.site
    page = site.add_page(site.add_space("ENG"), "A", f"<p>{key(3)}</p>", cloud.admin)
    site.edit(page, f"<p>Our key: {key(3)} (do not share)</p>", cloud.admin)

    found = found_keys(read_all(cloud.source()))

    assert [d.item_id for d in found[key(3)]] == [page.id]


def test_later_polls_read_only_new_versions(cloud: Cloud, database: Database) -> None:
    site = cloud.site
    page = site.add_page(site.add_space("ENG"), "A", "<p>one</p>", cloud.admin)
    for n in range(2, 6):
        site.edit(page, f"<p>version {n}</p>", cloud.admin)
    site.edit(page, f"<p>version 6 {key(4)}</p>", cloud.admin)
    source = cloud.source()
    poll_source(database, source, detector())
    assert len(cloud.standin.calls_to(rf"^/rest/api/content/{page.id}$")) == 5  # versions 1-5
    cloud.standin.reset_calls()

    site.edit(page, "<p>version 7, key removed</p>", cloud.admin)
    report = poll_source(database, source, detector())

    history_reads = cloud.standin.calls_to(rf"^/rest/api/content/{page.id}$")
    assert [call.params.get("version") for call in history_reads] == ["6"]
    assert report.findings == 1
    with database.session() as session:
        occurrences = {o.item_id: o for o in session.scalars(sa.select(Occurrence))}
    assert occurrences[f"{page.id}@v6"].is_history
    assert occurrences[page.id].removed_at is not None  # gone from the current version


def test_backfill_reads_at_most_the_configured_number_of_versions(cloud: Cloud) -> None:
    site = cloud.site
    page = site.add_page(site.add_space("ENG"), "A", f"<p>{key(5)}</p>", cloud.admin)
    for n in range(2, 11):
        site.edit(page, f"<p>version {n}</p>", cloud.admin)
    source = cloud.source(history_max_versions=3)

    found = found_keys(read_all(source))

    assert found == {}  # the key lives only in version 1, beyond the three read
    versions = [
        c.params["version"] for c in cloud.standin.calls_to(rf"^/rest/api/content/{page.id}$")
    ]
    assert versions == ["9", "8", "7"]
