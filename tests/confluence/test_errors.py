"""Rate limits, refused credentials, deleted pages and failing spaces, as an operator meets them."""

from __future__ import annotations

import socket
import time

import pytest

from bot.polling import PollAborted, poll_source
from bot.store.db import Database
from connectors.base import FatalSourceError, SourceAuthError, TransientSourceError, Unit, UnitError
from tests.confluence.conftest import API_TOKEN, Cloud, detector, found_keys, key, read_all


def _one_page(cloud: Cloud, seed: int = 1) -> None:
    cloud.site.add_page(cloud.site.add_space("ENG"), "A", f"<p>{key(seed)}</p>", cloud.admin)


def test_a_429_storm_is_waited_out_as_the_server_asks(cloud: Cloud) -> None:
    _one_page(cloud)
    cloud.standin.fail(r"^/rest/api/search$", 429, times=4, retry_after=2)
    cloud.standin.fail(r"^/rest/api/space$", 429, times=1, retry_after=3)
    source = cloud.source()

    assert set(found_keys(read_all(source))) == {key(1)}

    assert cloud.waits.seconds == [3.0, 2.0, 2.0, 2.0, 2.0]
    assert source.stats.rate_limited == 5
    assert [c.status for c in cloud.standin.calls_to(r"^/rest/api/search$")] == [429] * 4 + [200]


def test_a_real_retry_after_is_slept(cloud: Cloud) -> None:
    _one_page(cloud)
    cloud.standin.fail(r"^/rest/api/search$", 429, times=1, retry_after=1)
    started = time.monotonic()
    assert set(found_keys(read_all(cloud.source(sleep=time.sleep)))) == {key(1)}
    assert time.monotonic() - started >= 1.0


def test_long_retry_after_is_capped_and_endless_429_pauses_the_poll(
    cloud: Cloud, database: Database
) -> None:
    _one_page(cloud)
    cloud.standin.fail(r"^/rest/api/search$", 429, times=1000, retry_after=3600)
    source = cloud.source(max_retries=3, max_retry_wait=30)

    with pytest.raises(TransientSourceError, match="rate limiting"):
        read_all(source)
    assert cloud.waits.seconds == [30.0, 30.0, 30.0]

    report = poll_source(database, source, detector())  # the poll loop records it and goes on
    assert report.stopped and "rate limiting" in report.stopped


def test_wrong_api_token_names_the_settings_to_fix(cloud: Cloud, database: Database) -> None:
    _one_page(cloud)
    source = cloud.source(cloud.config(token="not-the-token"))

    with pytest.raises(SourceAuthError) as caught:
        list(source.units())

    message = str(caught.value)
    assert "HTTP 401" in message and "CONFLUENCE_USER" in message and "CONFLUENCE_TOKEN" in message
    assert "not-the-token" not in message and API_TOKEN not in message
    with pytest.raises(PollAborted, match="CONFLUENCE_TOKEN"):
        poll_source(database, source, detector())


def test_wrong_personal_access_token_names_confluence_pat(data_center: Cloud) -> None:
    source = data_center.source(data_center.config(user="", token="", pat="expired-pat"))
    with pytest.raises(SourceAuthError, match="CONFLUENCE_PAT") as caught:
        list(source.units())
    assert "expired-pat" not in str(caught.value)


def test_403_is_an_auth_error(cloud: Cloud) -> None:
    _one_page(cloud)
    cloud.standin.fail(r"^/rest/api/search$", 403)
    source = cloud.source()
    [unit] = list(source.units())
    with pytest.raises(SourceAuthError, match="denied access"):
        list(source.documents(unit, None))


def test_a_page_deleted_after_the_search_is_skipped_and_recorded(cloud: Cloud) -> None:
    site = cloud.site
    space = site.add_space("ENG")
    gone = site.add_page(space, "Gone", f"<p>{key(2)}</p>", cloud.admin)
    site.add_page(space, "Here", f"<p>{key(3)}</p>", cloud.admin)
    site.delete(gone, keep_in_index=True)  # the search index has not caught up yet
    source = cloud.source()

    assert set(found_keys(read_all(source))) == {key(3)}
    assert [(s.item_id, s.reason) for s in source.skipped] == [
        (gone.id, "deleted, or no longer readable (HTTP 404)")
    ]


def test_a_failing_space_is_recorded_and_the_others_are_read(
    cloud: Cloud, database: Database
) -> None:
    site = cloud.site
    site.add_page(site.add_space("BAD"), "A", f"<p>{key(4)}</p>", cloud.admin)
    site.add_page(site.add_space("GOOD"), "B", f"<p>{key(5)}</p>", cloud.admin)
    cloud.standin.fail(r"^/rest/api/search$", 500)  # the first space's search

    report = poll_source(database, cloud.source(), detector())

    assert report.units_ok == ["GOOD"]
    assert [(unit, "HTTP 500" in reason) for unit, reason in report.units_failed] == [("BAD", True)]
    assert report.findings == 1


def test_a_configured_space_that_does_not_exist_is_a_unit_error(cloud: Cloud) -> None:
    _one_page(cloud)
    source = cloud.source(cloud.config(spaces=("ENG", "NOPE")))
    units = list(source.units())
    assert [u.id for u in units] == ["ENG", "NOPE"]
    with pytest.raises(UnitError, match="NOPE: space not found"):
        list(source.documents(Unit("NOPE"), None))


def test_a_url_without_confluence_is_fatal(cloud: Cloud) -> None:
    source = cloud.source(cloud.config(url=cloud.standin.origin + "/not-confluence"))
    with pytest.raises(FatalSourceError, match="CONFLUENCE_URL"):
        list(source.units())


def test_an_unreachable_server_is_transient(cloud: Cloud) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = cloud.source(cloud.config(url=f"http://127.0.0.1:{port}"), timeout=2)
    with pytest.raises(TransientSourceError, match="unreachable"):
        list(source.units())
