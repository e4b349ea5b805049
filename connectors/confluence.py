"""Confluence (Cloud and Data Center): pages, blog posts, comments, attachments, page history.

Units are spaces (CONFLUENCE_SPACES, or every space the account can read). A space is read
incrementally with CQL on `lastmodified`:

    space = "ENG" and type in (page, blogpost, comment, attachment)
        and lastmodified >= now("-17m") order by lastmodified asc

CQL date literals are read in the searching user's time zone at minute resolution
(developer.atlassian.com/cloud/confluence/cql-fields), and the REST API does not reliably say
which zone that is, so the window is written relative to the server's own clock with `now()`
(increments "(+/-)nn(y|M|w|d|h|m)", m being minutes; developer.atlassian.com/cloud/confluence/
cql-functions).
The window reaches `overlap` before the newest change already read, which absorbs minute
rounding, clock skew and search-index lag. Everything read inside that margin is remembered in
the cursor by "content id @ version", so a re-read costs no fetch and an idle space costs one
search call per poll. Item ids do not carry the version: a page is one item whose text the
pipeline compares across edits (an edit that removes a key marks the occurrence removed).

Each search hit becomes documents:

    page, blog post   the current body; and for each older version, the lines that the next
                      version removed (item "<id>@v<n>", Exposure.is_history): a key deleted
                      from a page but still in its history is found, and `extra["version"]`
                      names the version to delete. Old versions never change, so neither do
                      these documents. A backfill reads up to `history_max_versions` versions
                      of a page; later polls read only the versions made since the last poll.
    comment           its body (footer or inline)
    attachment        the file, when it is text-like and under the size cap (Cloud: through
                      /rest/api/content/{page}/child/attachment/{id}/download; Data Center:
                      the attachment's `_links.download`)

Storage XHTML becomes the text a person sees (connectors/storage_xhtml.py). Authors are account
ids (Cloud) or usernames (Data Center), with the email address where the profile shows it.

atlassian-python-api 5.x gives `*.atlassian.net` hosts a slim Cloud client without the v1
methods used here, so the client is always built with `cloud=False`, on the `/wiki` base URL for
Cloud sites. Its `iter_cql` drops that `/wiki` when it follows `_links.next`, so pagination is
done here. Retries are ours too: 429 (and 503 with Retry-After) waits as told, bounded in count
and length.

Errors: 401/403 -> SourceAuthError naming the settings to fix; 429 past patience or a dropped
connection -> TransientSourceError; any other failure of one space -> UnitError; a page that
answers 404 (deleted since the search) is skipped and recorded in `skipped`.

Exposure: a space that answers an anonymous request is `is_anonymous` (asked once per space, as a
visitor who is not logged in); a page with read restrictions is not `is_public`, nor is a
personal space; `extra` carries `space_type`, `restricted`, `content_type` and `version`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from atlassian import Confluence
from atlassian.errors import ApiError

from connectors.base import (
    Document,
    Exposure,
    FatalSourceError,
    SourceAuthError,
    SourceError,
    SourceKind,
    TransientSourceError,
    Unit,
    UnitError,
)
from connectors.storage_xhtml import storage_to_text

log = logging.getLogger(__name__)

T = TypeVar("T")
JSON = dict[str, Any]

CONTENT_TYPES = ("page", "blogpost", "comment", "attachment")
SEARCH_REREAD = 5  # results re-read at each offset page boundary (see ConfluenceSource._pages)
SEARCH_EXPAND = ",".join(
    f"content.{part}"
    for part in (
        "body.storage",
        "version",
        "container",
        "restrictions.read.restrictions.user",
        "restrictions.read.restrictions.group",
    )
)
RESTRICTIONS_EXPAND = "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
CONTENT_EXPAND = f"body.storage,version,space,container,{RESTRICTIONS_EXPAND}"
TEXT_MEDIA_TYPES = frozenset(
    {
        "application/json", "application/xml", "application/yaml", "application/x-yaml",
        "application/toml", "application/x-sh", "application/x-shellscript",
        "application/javascript", "application/x-python", "application/sql",
        "application/x-pem-file", "application/x-httpd-php", "application/x-properties",
    }
)  # fmt: skip
TEXT_SUFFIXES = frozenset(
    {
        ".txt", ".env", ".json", ".yaml", ".yml", ".xml", ".toml", ".ini", ".cfg", ".conf",
        ".properties", ".sh", ".bash", ".zsh", ".ps1", ".py", ".js", ".ts", ".rb", ".go",
        ".java", ".kt", ".cs", ".php", ".sql", ".md", ".csv", ".log", ".pem", ".key", ".tf",
        ".tfvars", ".hcl", ".npmrc", ".pypirc", ".netrc", ".htpasswd", ".gradle", ".ipynb",
    }
)  # fmt: skip


class ConfluenceConfig(Protocol):
    """What ConfluenceSource needs; bot.config.ConfluenceSettings has these fields."""

    @property
    def url(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def pat(self) -> str: ...
    @property
    def spaces(self) -> tuple[str, ...]: ...
    @property
    def attachment_max_bytes(self) -> int: ...


@dataclass(frozen=True)
class SkippedItem:
    """Content a poll could not read, and why (a page deleted after the search, a binary file)."""

    unit: str
    item_id: str
    reason: str


@dataclass
class ConfluenceCursor:
    """Where a space was read up to.

    `modified` is the newest lastModified read (the server's clock); `seen` holds the
    "id@version" of everything read within the overlap margin before it, so a re-read skips them.
    """

    modified: datetime | None = None
    seen: dict[str, datetime] = field(default_factory=dict)

    def __str__(self) -> str:
        return json.dumps(
            {
                "modified": _iso(self.modified) if self.modified else None,
                "seen": {key: _iso(when) for key, when in sorted(self.seen.items())},
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, value: str | None) -> ConfluenceCursor:
        """A stored cursor; an empty or unreadable one starts over (a backfill, nothing lost)."""
        if not value:
            return cls()
        try:
            data = json.loads(value)
            modified = _parse_time(data["modified"]) if data.get("modified") else None
            seen = {str(key): _parse_time(when) for key, when in dict(data.get("seen", {})).items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("unreadable Confluence cursor; reading the space from the start")
            return cls()
        return cls(modified, {key: when for key, when in seen.items() if when is not None})

    def add(self, key: str, modified: datetime, keep: timedelta) -> None:
        self.seen[key] = modified
        if self.modified is None or modified > self.modified:
            self.modified = modified
        horizon = self.modified - keep
        self.seen = {k: when for k, when in self.seen.items() if when >= horizon}


@dataclass
class _Space:
    key: str
    name: str = ""
    type: str = "global"
    anonymous: bool | None = None  # None: not probed yet


@dataclass
class PollStats:
    """Counters a benchmark or an operator can read after a poll."""

    requests: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    skipped_seen: int = 0


class ConfluenceSource:
    """A Confluence site as a LeakWatch source: spaces are units, CQL reads them incrementally."""

    kind: SourceKind = "confluence"

    def __init__(
        self,
        config: ConfluenceConfig,
        *,
        client: Any = None,
        anonymous_client: Any = None,
        cloud: bool | None = None,
        overlap: timedelta = timedelta(minutes=15),
        page_size: int = 50,
        history_max_versions: int = 100,
        max_retries: int = 6,
        max_retry_wait: float = 120.0,
        timeout: float = 60.0,
        space_refresh: timedelta = timedelta(hours=1),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.url = site_base_url(config.url)
        self.cloud = is_cloud_url(self.url) if cloud is None else cloud
        self.client = client if client is not None else build_client(config, timeout=timeout)
        self.anonymous_client = (
            anonymous_client
            if anonymous_client is not None
            else _client(self.url, cloud=False, timeout=int(timeout), retry_with_header=False)
        )
        self.overlap = overlap
        self.page_size = page_size
        self.history_max_versions = history_max_versions
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        self.clock = clock
        self.skipped: list[SkippedItem] = []
        self.stats = PollStats()
        self.space_refresh = space_refresh
        self._spaces: dict[str, _Space] = {}
        self._listed_at: datetime | None = None
        self._missing: set[str] = set()
        self._emails: dict[str, str | None] = {}
        self._restricted: dict[str, bool] = {}  # page id -> has read restrictions, this poll

    # -- the Source protocol

    def units(self) -> Iterator[Unit]:
        now = self.clock()
        if self._listed_at is None or now - self._listed_at >= self.space_refresh:
            try:
                listed = list(self._pages(self._list_spaces, what="space list"))
            except _NotFound:
                raise FatalSourceError(
                    f"no Confluence REST API at {self.url}: check CONFLUENCE_URL "
                    "(Cloud: https://SITE.atlassian.net; Data Center: base URL and context path)"
                ) from None
            self._spaces = {
                str(space["key"]): _Space(
                    str(space["key"]), str(space.get("name", "")), str(space.get("type", "global"))
                )
                for space in listed
            }
            self._listed_at = now
        wanted = self.config.spaces or tuple(self._spaces)
        self._missing = {key for key in wanted if key not in self._spaces}
        for key in wanted:
            known = self._spaces.get(key)
            yield Unit(id=key, name=(known.name if known else "") or key)

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        if unit.id in self._missing:
            raise UnitError(unit.id, "space not found, or this account cannot read it")
        state = ConfluenceCursor.parse(cursor)
        self._restricted.clear()  # restrictions can change between polls
        window_start = state.modified - self.overlap if state.modified else None
        keep = self.overlap * 2
        stored = cursor
        try:
            hits = self._pages(
                lambda: self._search(unit.id, window_start), what="search", reread=SEARCH_REREAD
            )
            done: set[str] = set()  # read in this call, overlap of offset pages included
            for hit in hits:
                content = hit.get("content") or {}
                key, modified = _seen_key(hit)
                if key is None or modified is None:
                    continue
                if key in state.seen or key in done:
                    self.stats.skipped_seen += 1
                    continue
                done.add(key)
                documents = list(self._documents_of(unit, content, window_start, state.seen))
                state.add(key, modified, keep)
                new_cursor = str(state)
                for index, document in enumerate(documents):
                    yield document, new_cursor if index == len(documents) - 1 else stored
                if documents:
                    stored = new_cursor
        except _ServerError as error:
            raise UnitError(unit.id, str(error)) from error
        except (SourceAuthError, TransientSourceError, UnitError):
            raise
        except SourceError as error:
            raise UnitError(unit.id, str(error)) from error

    # -- reading

    def _list_spaces(self) -> JSON:
        page: JSON = self._call(lambda: self.client.get_all_spaces(start=0, limit=100), "spaces")
        return page

    def _search(self, space: str, window_start: datetime | None) -> JSON:
        types = ", ".join(CONTENT_TYPES)
        cql = f"space = {_cql_string(space)} and type in ({types})"
        if window_start is not None:
            minutes = math.ceil((self.clock() - window_start).total_seconds() / 60)
            minutes = max(minutes, math.ceil(self.overlap.total_seconds() / 60), 1)
            cql += f' and lastmodified >= now("-{minutes}m")'
        cql += " order by lastmodified asc"
        page: JSON = self._call(
            lambda: self.client.cql(cql, start=0, limit=self.page_size, expand=SEARCH_EXPAND),
            f"search of space {space}",
        )
        return page

    def _pages(self, first: Callable[[], JSON], *, what: str, reread: int = 0) -> Iterator[JSON]:
        """Every result of a paged v1 listing, following `_links.next` against our base URL.

        With `reread`, an offset-paged listing (`start=`, Data Center) starts each next page
        that many results early: a change elsewhere during the read shifts later results back,
        and the overlap keeps the one at the page boundary from being skipped.
        """
        page = first()
        while True:
            yield from page.get("results", [])
            links = page.get("_links") or {}
            next_link = links.get("next")
            if not next_link or not page.get("results"):
                return
            url = self._absolute(str(next_link), str(links.get("context") or ""))
            if reread:
                url = _start_earlier(url, reread, after=int(page.get("start") or 0))
            page = self._call(lambda u=url: self.client.get(u, absolute=True), what)  # type: ignore[misc]

    def _absolute(self, link: str, context: str) -> str:
        if urlsplit(link).scheme:
            return link
        if context and link.startswith(context + "/") and self.url.endswith(context):
            link = link[len(context) :]
        return self.url.rstrip("/") + "/" + link.lstrip("/")

    def _documents_of(
        self, unit: Unit, content: JSON, window_start: datetime | None, seen: Mapping[str, Any]
    ) -> Iterator[Document]:
        content_id = str(content.get("id", ""))
        kind = content.get("type", "")
        if kind == "attachment":
            yield from self._attachment(unit, content)
            return
        if "body" not in content or "version" not in content:
            fetched = self._fetch(unit, content_id, expand=CONTENT_EXPAND)
            if fetched is None:
                return
            content = fetched
        space = self._space(unit)
        current = self._document(unit, space, content, storage_text(content))
        yield current
        if kind in ("page", "blogpost"):
            yield from self._history(unit, space, content, current.text, window_start, seen)

    def _fetch(
        self, unit: Unit, content_id: str, *, item_id: str = "", **params: Any
    ) -> JSON | None:
        """Content by id; None, recorded in `skipped`, when it answers 404."""
        item_id = item_id or content_id
        try:
            return self._call(  # type: ignore[no-any-return]
                lambda: self.client.get_page_by_id(content_id, **params),
                f"content {item_id}",
            )
        except _NotFound:
            self.skipped.append(
                SkippedItem(unit.id, item_id, "deleted, or no longer readable (HTTP 404)")
            )
            log.info("Confluence content %s in %s is gone (404); skipped", item_id, unit.id)
            return None

    def _history(
        self,
        unit: Unit,
        space: _Space,
        content: JSON,
        current_text: str,
        window_start: datetime | None,
        seen: Mapping[str, Any],
    ) -> Iterator[Document]:
        """For each older version, what the next version removed: keys left only in history."""
        content_id = str(content["id"])
        number = int((content.get("version") or {}).get("number", 1))
        newer_text = current_text
        oldest = max(1, number - self.history_max_versions)
        for old in range(number - 1, oldest - 1, -1):
            version = self._fetch(
                unit,
                content_id,
                item_id=f"{content_id}@v{old}",
                expand="body.storage,version",
                status="historical",
                version=old,
            )
            if version is None:
                return
            text = storage_text(version)
            removed = _removed_text(text, newer_text, current_text)
            if removed:
                base = self._document(unit, space, {**content, **_only(version, "version")}, "")
                yield Document(
                    source=self.kind,
                    unit=unit.id,
                    item_id=f"{content_id}@v{old}",
                    text=removed,
                    unit_name=base.unit_name,
                    title=base.title,
                    author=base.author,
                    author_email=base.author_email,
                    permalink=self._history_link(content_id, old),
                    posted_at=base.posted_at,
                    exposure=Exposure(
                        audience=base.exposure.audience,
                        is_public=base.exposure.is_public,
                        is_anonymous=base.exposure.is_anonymous,
                        is_history=True,
                    ),
                    extra={
                        **base.extra,
                        "version": str(old),
                        "removed_in_version": str(old + 1),
                        "current_version": str(number),
                        "history_url": f"{self.url}/pages/viewpreviousversions.action"
                        f"?pageId={quote(content_id)}",
                    },
                )
            newer_text = text
            when = _parse_time((version.get("version") or {}).get("when"))
            if f"{content_id}@{old}" in seen or (
                window_start is not None and (when is None or when < window_start)
            ):
                return  # this version was current at the last poll: older ones were read then

    def _attachment(self, unit: Unit, content: JSON) -> Iterator[Document]:
        content_id = str(content.get("id", ""))
        name = str(content.get("title", ""))
        extensions = content.get("extensions") or {}
        media_type = str(
            extensions.get("mediaType") or (content.get("metadata") or {}).get("mediaType") or ""
        )
        size = int(extensions.get("fileSize") or 0)
        cap = self.config.attachment_max_bytes
        if not is_text_like(name, media_type):
            self.skipped.append(
                SkippedItem(unit.id, content_id, f"not text ({media_type or name})")
            )
            return
        if size > cap:
            self.skipped.append(
                SkippedItem(unit.id, content_id, f"{size} bytes, over the {cap}-byte cap")
            )
            return
        link = ((content.get("_links") or {}).get("download")) or ""
        page_id = str((content.get("container") or {}).get("id") or "")
        if self.cloud and page_id:
            # Cloud retired the /download/attachments route for REST clients; this one stays
            link = (
                f"rest/api/content/{quote(page_id)}/child/attachment/{quote(content_id)}/download"
            )
        if not link:
            return
        try:
            data = self._call(
                lambda: self.client.get(link, not_json_response=True), f"attachment {content_id}"
            )
        except _NotFound:
            self.skipped.append(SkippedItem(unit.id, content_id, "deleted (HTTP 404)"))
            return
        raw = bytes(data or b"")[:cap]
        if b"\x00" in raw[:8192]:
            self.skipped.append(SkippedItem(unit.id, content_id, "binary content"))
            return
        if "version" not in content:
            fetched = self._fetch(unit, content_id, expand="version,container")
            if fetched is None:
                return
            content = {**content, **fetched}
        space = self._space(unit)
        document = self._document(unit, space, content, decode_text(raw))
        yield document

    # -- building documents

    def _document(self, unit: Unit, space: _Space, content: JSON, text: str) -> Document:
        kind = str(content.get("type", "page"))
        version = content.get("version") or {}
        by = version.get("by") or {}
        author, email = self._author(by)
        container = content.get("container") or {}
        page_title = str(container.get("title") or content.get("title") or "")
        title = {
            "comment": f"Comment on {page_title}",
            "attachment": f"{content.get('title', '')} (attached to {page_title})",
        }.get(kind, str(content.get("title", "")))
        restricted = self._is_restricted(unit, content, str(container.get("id") or ""))
        anonymous = self._is_anonymous(space)
        extra = {
            "content_type": kind,
            "content_id": str(content.get("id", "")),
            "version": str(version.get("number", "")),
            "space_type": space.type,
            "restricted": "true" if restricted else "false",
        }
        if container.get("id"):
            extra["page_id"] = str(container["id"])
        location = (content.get("extensions") or {}).get("location")
        if kind == "comment" and location:
            extra["comment_location"] = str(location)
        webui = (content.get("_links") or {}).get("webui")
        return Document(
            source=self.kind,
            unit=unit.id,
            item_id=str(content.get("id", "")),
            text=text,
            unit_name=space.name or unit.name or unit.id,
            title=title,
            author=author,
            author_email=email,
            permalink=f"{self.url}{webui}" if webui else None,
            posted_at=_parse_time(version.get("when")),
            exposure=Exposure(
                is_public=anonymous or (space.type == "global" and not restricted),
                is_anonymous=anonymous,
            ),
            extra=extra,
        )

    def _is_restricted(self, unit: Unit, content: JSON, page_id: str) -> bool:
        """Read restrictions of the page itself, or of the page a comment or file belongs to."""
        if str(content.get("type")) in ("page", "blogpost"):
            restricted = _is_restricted(content)
            self._restricted[str(content.get("id", ""))] = restricted
            return restricted
        if not page_id:
            return _is_restricted(content)
        if page_id not in self._restricted:
            page = self._fetch(unit, page_id, expand=RESTRICTIONS_EXPAND)
            self._restricted[page_id] = page is not None and _is_restricted(page)
        return self._restricted[page_id]

    def _history_link(self, content_id: str, version: int) -> str:
        return f"{self.url}/pages/viewpage.action?pageId={quote(content_id)}&pageVersion={version}"

    def _space(self, unit: Unit) -> _Space:
        space = self._spaces.get(unit.id)
        if space is None:
            data = self._call(lambda: self.client.get_space(unit.id), f"space {unit.id}")
            space = _Space(unit.id, str(data.get("name", "")), str(data.get("type", "global")))
            self._spaces[unit.id] = space
        return space

    def _is_anonymous(self, space: _Space) -> bool:
        """Whether a visitor who is not logged in can read the space: asked as one."""
        if space.anonymous is None:
            try:
                self.stats.requests += 1
                self.anonymous_client.get_space(space.key)
                space.anonymous = True
            except (requests.RequestException, ApiError):
                space.anonymous = False
        return space.anonymous

    def _author(self, by: Mapping[str, Any]) -> tuple[str | None, str | None]:
        ident = str(by.get("accountId") or by.get("username") or by.get("userKey") or "") or None
        if ident is None:
            return None, None
        email = str(by.get("email") or "") or None
        if email:
            self._emails[ident] = email
            return ident, email
        if ident not in self._emails:
            self._emails[ident] = self._lookup_email(by)
        return ident, self._emails[ident]

    def _lookup_email(self, by: Mapping[str, Any]) -> str | None:
        if by.get("accountId"):
            call = lambda: self.client.get_user_details_by_accountid(by["accountId"])  # noqa: E731
        elif by.get("username"):
            call = lambda: self.client.get_user_details_by_username(by["username"])  # noqa: E731
        else:
            call = lambda: self.client.get_user_details_by_userkey(by["userKey"])  # noqa: E731
        try:
            user = self._call(call, "user profile", tolerate=(403, 404))
        except _NotFound:
            return None
        if not isinstance(user, dict):
            return None
        email = user.get("email") or ((user.get("details") or {}).get("personal") or {}).get(
            "email"
        )
        return str(email) if email else None

    # -- HTTP, retries and errors

    def _call(
        self,
        call: Callable[[], T],
        what: str,
        *,
        tolerate: tuple[int, ...] = (),
    ) -> T:
        """Run one API call: wait out 429s (bounded), turn failures into SourceErrors."""
        for attempt in range(self.max_retries + 1):
            self.stats.requests += 1
            try:
                return call()
            except (requests.HTTPError, ApiError) as error:
                response = _response_of(error)
                status = response.status_code if response is not None else 0
                wait = _retry_after(response) if response is not None else None
                if status == 429 or (status == 503 and wait is not None):
                    self.stats.rate_limited += 1
                    if attempt == self.max_retries:
                        raise TransientSourceError(
                            f"Confluence is rate limiting this account: still HTTP {status} on "
                            f"{what} after {self.max_retries} retries; the next poll resumes"
                        ) from None
                    delay = min(wait if wait is not None else 2.0**attempt, self.max_retry_wait)
                    self.stats.waited_seconds += delay
                    log.info("Confluence %s: HTTP %s, waiting %.1f s", what, status, delay)
                    self.sleep(delay)
                    continue
                if status in tolerate or status == 404:
                    raise _NotFound(what) from None
                raise _error_for(status, what, self.config) from None
            except requests.RequestException as error:
                raise TransientSourceError(
                    f"Confluence unreachable on {what}: {type(error).__name__}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover


class _NotFound(SourceError):
    """404 (or a tolerated status): the caller decides whether that is an error."""


class _ServerError(TransientSourceError):
    """5xx: transient for the source; within one space's read, that space fails (UnitError)."""


def build_client(config: ConfluenceConfig, *, timeout: float = 60.0) -> Any:
    """atlassian-python-api's full v1 client: Cloud (email + API token) or Data Center (PAT)."""
    common: dict[str, Any] = {
        "cloud": False,  # 5.x's Cloud client lacks the v1 methods used here
        "timeout": int(timeout),
        "retry_with_header": False,  # 429s are waited out by ConfluenceSource._call
        "backoff_and_retry": False,
    }
    url = site_base_url(config.url)
    if config.pat:
        return _client(url, token=config.pat, **common)
    return _client(url, username=config.user, password=config.token, **common)


def _client(url: str, **options: Any) -> Any:
    return Confluence(url, **options)  # type: ignore[no-untyped-call]


def is_cloud_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "atlassian.net" or host.endswith(".atlassian.net")


def site_base_url(url: str) -> str:
    """The REST base URL: Cloud sites (`*.atlassian.net`) serve Confluence under /wiki."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if (host == "atlassian.net" or host.endswith(".atlassian.net")) and not parts.path:
        url += "/wiki"
    return url


def _error_for(status: int, what: str, config: ConfluenceConfig) -> SourceError:
    if status in (401, 403):
        if config.pat:
            fix = "check CONFLUENCE_PAT (a Data Center personal access token, sent as Bearer)"
        else:
            fix = (
                "check CONFLUENCE_USER (the account's email address) and CONFLUENCE_TOKEN "
                "(an API token from id.atlassian.com/manage-profile/security/api-tokens)"
            )
        verdict = "refused the credentials" if status == 401 else "denied access"
        return SourceAuthError(
            f"Confluence {verdict} (HTTP {status}) on {what} at {config.url}: {fix}, "
            "and that the account may use Confluence and read the spaces"
        )
    if status >= 500:
        return _ServerError(f"Confluence failed (HTTP {status}) on {what}")
    return SourceError(f"Confluence answered HTTP {status or 'error'} on {what}")


def _response_of(error: Exception) -> requests.Response | None:
    if isinstance(error, ApiError):
        reason = error.reason
        return getattr(reason, "response", None) if reason is not None else None
    return getattr(error, "response", None)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


# -- small helpers


def storage_text(content: Mapping[str, Any]) -> str:
    body = ((content.get("body") or {}).get("storage") or {}).get("value") or ""
    return storage_to_text(str(body))


def is_text_like(name: str, media_type: str) -> bool:
    media_type = media_type.split(";")[0].strip().lower()
    if media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES:
        return True
    suffix = PurePosixPath(name.lower()).suffix or (name.lower() if name.startswith(".") else "")
    return suffix in TEXT_SUFFIXES or name.lower() in TEXT_SUFFIXES


def decode_text(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8-sig", errors="replace")


def _removed_text(old: str, newer: str, current: str) -> str:
    """The lines of `old` that `newer` no longer has, minus tokens still on the page.

    A line can change around a key that stays (a reworded sentence); a long token that the next
    or the current version still holds is blanked, so it is not reported as history-only.
    """
    kept = set(newer.splitlines())
    lines = dict.fromkeys(line for line in old.splitlines() if line not in kept)
    text = "\n".join(lines)
    return _LONG_TOKEN.sub(
        lambda m: "" if m.group(0) in newer or m.group(0) in current else m.group(0), text
    ).strip()


_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-+/.~]{16,}=*")


def _is_restricted(content: Mapping[str, Any]) -> bool:
    read = ((content.get("restrictions") or {}).get("read") or {}).get("restrictions") or {}
    return any(int((read.get(kind) or {}).get("size") or 0) > 0 for kind in ("user", "group"))


def _only(data: Mapping[str, Any], *keys: str) -> JSON:
    return {key: data[key] for key in keys if key in data}


def _seen_key(hit: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    content = hit.get("content") or {}
    content_id = content.get("id")
    if not content_id:
        return None, None
    modified = _parse_time(hit.get("lastModified")) or _parse_time(
        (content.get("version") or {}).get("when")
    )
    version = (content.get("version") or {}).get("number")
    if version is None:  # without a version number the modification time tells edits apart
        version = _iso(modified) if modified else "?"
    return f"{content_id}@{version}", modified


def _start_earlier(url: str, by: int, *, after: int) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    values = dict(query)
    if "start" not in values or "cursor" in values or not values["start"].isdigit():
        return url
    start = max(int(values["start"]) - by, after + 1)
    query = [(name, str(start) if name == "start" else value) for name, value in query]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _cql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


# -- the offline HTML space export: connectors/confluence_export.py, imported when first used


def looks_like_archive(path: Path) -> bool:
    """A Confluence HTML space export: a zip (or its unpacked folder) with index.html pages."""
    from connectors.confluence_export import looks_like_archive as looks

    return looks(path)


def read_archive(path: Path) -> Iterator[Document]:
    """One Document per exported page and per text attachment, with the rendered page text."""
    from connectors.confluence_export import read_archive as read

    return read(path)
