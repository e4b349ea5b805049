"""A local Confluence for tests: an in-memory site served over HTTP on 127.0.0.1.

Each test builds a `ConfluenceSite` (users, spaces, pages and blog posts with versions, footer
and inline comments, attachments with bytes, read restrictions, anonymous spaces), then serves
it with `ConfluenceStandin`, which speaks the v1 REST API that atlassian-python-api's Server
client calls:

    GET /rest/api/search?cql=&start=&limit=&expand=&cursor=     search results (content.* expands)
    GET /rest/api/content/search?cql=...                         content objects
    GET /rest/api/content?spaceKey=&type=
    GET /rest/api/content/{id}?expand=&status=&version=
    GET /rest/api/content/{id}/history
    GET /rest/api/content/{id}/version[/{n}]
    GET /rest/api/content/{id}/child/comment?location=&depth=&expand=
    GET /rest/api/content/{id}/child/attachment[/{att}/download]
    GET /download/attachments/{pageId}/{file}?version=
    GET /rest/api/space, /rest/api/space/{key}[?expand=permissions]
    GET /rest/api/space/{key}/permissions/anonymous
    GET /rest/api/user?accountId=|username=|key=, /rest/api/user/current

Shapes follow developer.atlassian.com's v1 REST reference (paged lists with `_links.next`;
search results wrapping `content`; `_expandable` for what was not expanded). A Cloud site sits
under the `/wiki` context path, pages search results with `cursor=`, and names users by
`accountId`; a Data Center site pages with `start=` and names users by `username`/`userKey`.
Authentication: Basic (Cloud: email and API token) and Bearer (Data Center personal access
token); no credentials means the anonymous user. Errors carry Confluence's JSON error body;
`fail()` injects 401, 403, 404, 429 with Retry-After, or 5xx; every request lands in `calls`.

CQL understood: `space`, `type`, `id`, `title`, `lastmodified`, `created` with = != > >= < <=
IN / NOT IN, AND, OR, parentheses, `now("-15m")`, date literals ("yyyy/MM/dd HH:mm", read in the
searching user's time zone at minute resolution, as Confluence does), ORDER BY.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

JSON = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# The site model


@dataclass(eq=False)
class User:
    display_name: str
    account_id: str = ""  # Cloud
    username: str = ""  # Data Center
    user_key: str = ""
    email: str = ""
    email_visible: bool = True

    @property
    def id(self) -> str:
        return self.account_id or self.username


@dataclass(eq=False)
class Space:
    id: int
    key: str
    name: str
    type: str = "global"  # or "personal"
    anonymous: bool = False  # anonymous users may read it
    status: str = "current"


@dataclass(eq=False)
class Version:
    number: int
    when: datetime
    by: User
    title: str
    body: str
    message: str = ""


@dataclass(eq=False)
class Content:
    id: str
    type: str  # page, blogpost, comment, attachment
    space: Space
    versions: list[Version] = field(default_factory=list)
    container: Content | None = None  # the page of a comment or attachment
    parent_comment: Content | None = None
    location: str = "footer"  # comments: footer or inline
    inline_selection: str = ""
    data: bytes = b""  # attachments
    media_type: str = ""
    restricted_to: tuple[User, ...] = ()  # read restriction; empty means not restricted
    deleted: bool = False
    indexed: bool = True  # still found by search (the index can lag a deletion)

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def title(self) -> str:
        return self.current.title

    @property
    def lastmodified(self) -> datetime:
        return self.current.when

    @property
    def page(self) -> Content:
        return self.container.page if self.container is not None else self


class ConfluenceSite:
    """The content of one Confluence site; tests build it, the stand-in serves it."""

    def __init__(
        self,
        *,
        cloud: bool = True,
        user_timezone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.cloud = cloud
        self.user_timezone = ZoneInfo(user_timezone)  # how CQL date literals are read
        self.clock = clock or (lambda: datetime.now(UTC))
        self.users: list[User] = []
        self.spaces: dict[str, Space] = {}
        self.contents: dict[str, Content] = {}
        self.user_lookup_allowed = True  # False: /rest/api/user answers 403
        self._basic: dict[tuple[str, str], User] = {}
        self._bearer: dict[str, User] = {}
        self._ids = itertools.count(98_305)
        self._lock = threading.RLock()

    # users and credentials ---------------------------------------------------------------

    def add_user(self, display_name: str, email: str = "", *, email_visible: bool = True) -> User:
        slug = re.sub(r"[^a-z0-9]+", ".", display_name.lower()).strip(".")
        if self.cloud:
            account_id = f"5b10ac8d82e05b22cc7d{len(self.users):04x}"
            user = User(
                display_name, account_id=account_id, email=email, email_visible=email_visible
            )
        else:
            user = User(
                display_name,
                username=slug,
                user_key=f"8a7f80{len(self.users):04x}",
                email=email,
                email_visible=email_visible,
            )
        self.users.append(user)
        return user

    def add_api_token(self, user: User, token: str) -> None:
        """Cloud: Basic auth with the user's email and an API token."""
        self._basic[(user.email, token)] = user

    def add_password(self, user: User, password: str) -> None:
        """Data Center: Basic auth with username and password."""
        self._basic[(user.username, password)] = user

    def add_pat(self, user: User, pat: str) -> None:
        """Data Center: a personal access token sent as a Bearer token."""
        self._bearer[pat] = user

    # spaces and content -----------------------------------------------------------------

    def add_space(
        self, key: str, name: str = "", *, personal_of: User | None = None, anonymous: bool = False
    ) -> Space:
        if personal_of is not None:
            key = "~" + personal_of.id
            name = name or personal_of.display_name
        space = Space(
            next(self._ids), key, name or key, "personal" if personal_of else "global", anonymous
        )
        self.spaces[key] = space
        return space

    def _new(
        self, content: Content, title: str, body: str, by: User, when: datetime | None
    ) -> Content:
        with self._lock:
            content.versions.append(Version(1, when or self.clock(), by, title, body))
            self.contents[content.id] = content
        return content

    def add_page(
        self,
        space: Space,
        title: str,
        body: str,
        by: User,
        *,
        blog: bool = False,
        when: datetime | None = None,
        restricted_to: tuple[User, ...] = (),
    ) -> Content:
        content = Content(
            str(next(self._ids)), "blogpost" if blog else "page", space, restricted_to=restricted_to
        )
        return self._new(content, title, body, by, when)

    def edit(
        self,
        content: Content,
        body: str,
        by: User,
        *,
        title: str | None = None,
        when: datetime | None = None,
    ) -> Version:
        with self._lock:
            version = Version(
                content.current.number + 1, when or self.clock(), by, title or content.title, body
            )
            content.versions.append(version)
        return version

    def add_comment(
        self,
        page: Content,
        body: str,
        by: User,
        *,
        inline_selection: str = "",
        reply_to: Content | None = None,
        when: datetime | None = None,
    ) -> Content:
        content = Content(
            str(next(self._ids)),
            "comment",
            page.space,
            container=page,
            parent_comment=reply_to,
            location="inline" if inline_selection else "footer",
            inline_selection=inline_selection,
        )
        return self._new(content, f"Re: {page.title}", body, by, when)

    def add_attachment(
        self,
        page: Content,
        filename: str,
        data: bytes,
        by: User,
        *,
        media_type: str = "text/plain",
        when: datetime | None = None,
    ) -> Content:
        content = Content(
            f"att{next(self._ids)}" if self.cloud else str(next(self._ids)),
            "attachment",
            page.space,
            container=page,
            data=data,
            media_type=media_type,
        )
        return self._new(content, filename, "", by, when)

    def delete(self, content: Content, *, keep_in_index: bool = False) -> None:
        """Delete (purge) content; with keep_in_index, search still lists it for a while."""
        with self._lock:
            content.deleted = True
            content.indexed = keep_in_index

    # visibility ---------------------------------------------------------------------------

    def can_read(self, user: User | None, content: Content) -> bool:
        if content.deleted:
            return False
        if not self.can_read_space(user, content.space):
            return False
        page = content.page
        if page.deleted:
            return False
        return not page.restricted_to or (user is not None and user in page.restricted_to)

    def can_read_space(self, user: User | None, space: Space) -> bool:
        return user is not None or space.anonymous

    @property
    def has_anonymous_access(self) -> bool:
        return any(space.anonymous for space in self.spaces.values())

    def authenticate_basic(self, login: str, secret: str) -> User | None:
        return self._basic.get((login, secret))

    def authenticate_bearer(self, token: str) -> User | None:
        return self._bearer.get(token)

    def find_user(self, *, account_id: str = "", username: str = "", key: str = "") -> User | None:
        for user in self.users:
            if (
                (account_id and user.account_id == account_id)
                or (username and user.username == username)
                or (key and user.user_key == key)
            ):
                return user
        return None


# ---------------------------------------------------------------------------------------------
# CQL


class CqlError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|>|<|~|\(|\)|,)"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_.]*|-?\d+))"""
)

Predicate = Callable[[Content], bool]


class _Cql:
    """A small recursive-descent CQL reader that compiles a query to a predicate and an order."""

    def __init__(self, text: str, site: ConfluenceSite) -> None:
        self.site = site
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise CqlError(f"could not parse cql near {text[position : position + 20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def peek(self) -> str:
        return self.tokens[self.index][1].lower() if self.index < len(self.tokens) else ""

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise CqlError("unexpected end of cql")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        _kind, token = self.take()
        if token.lower() != value:
            raise CqlError(f"expected {value!r}, got {token!r}")

    def compile(self) -> tuple[Predicate, str, bool]:
        predicate = self.or_expr() if self.peek() not in ("", "order") else (lambda c: True)
        order, descending = "", False
        if self.peek() == "order":
            self.take()
            self.expect("by")
            order = self.take()[1].lower()
            if self.peek() in ("asc", "desc"):
                descending = self.take()[1].lower() == "desc"
        if self.index != len(self.tokens):
            raise CqlError(f"unexpected {self.tokens[self.index][1]!r}")
        return predicate, order, descending

    def or_expr(self) -> Predicate:
        terms = [self.and_expr()]
        while self.peek() == "or":
            self.take()
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else (lambda c: any(t(c) for t in terms))

    def and_expr(self) -> Predicate:
        terms = [self.atom()]
        while self.peek() == "and":
            self.take()
            terms.append(self.atom())
        return terms[0] if len(terms) == 1 else (lambda c: all(t(c) for t in terms))

    def atom(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        if self.peek() == "not":
            self.take()
            inner = self.atom()
            return lambda c: not inner(c)
        kind, name = self.take()
        if kind != "word":
            raise CqlError(f"expected a field, got {name!r}")
        name = name.lower()
        negate = False
        if self.peek() == "not":
            self.take()
            negate = True
        operator = self.take()[1].lower()
        if operator == "in":
            self.expect("(")
            values = [self.value()]
            while self.peek() == ",":
                self.take()
                values.append(self.value())
            self.expect(")")
            test = self.field_test(name, "=", values)
            return (lambda c: not test(c)) if negate else test
        if operator not in ("=", "!=", ">", ">=", "<", "<=", "~"):
            raise CqlError(f"unknown operator {operator!r}")
        return self.field_test(name, operator, [self.value()])

    def value(self) -> str | datetime:
        kind, token = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", token[1:-1])
        if kind == "word" and token.lower() == "now" and self.peek() == "(":
            self.take()
            offset = ""
            if self.peek() != ")":
                offset = str(self.value())
            self.expect(")")
            return self.site.clock() + _cql_offset(offset)
        if kind == "word":
            return token
        raise CqlError(f"expected a value, got {token!r}")

    def field_test(self, name: str, operator: str, values: list[str | datetime]) -> Predicate:
        if name in ("lastmodified", "created"):
            bounds = [self.moment(v) for v in values]

            def moment_of(c: Content) -> datetime:
                return c.lastmodified if name == "lastmodified" else c.versions[0].when

            def test_moment(c: Content) -> bool:
                when = moment_of(c)
                results = []
                for bound, minute_resolution in bounds:
                    seen = _floor_minute(when) if minute_resolution else when
                    results.append(_compare(seen, operator, bound))
                return any(results)

            return test_moment
        getters: dict[str, Callable[[Content], str]] = {
            "space": lambda c: c.space.key,
            "space.key": lambda c: c.space.key,
            "type": lambda c: c.type,
            "id": lambda c: c.id,
            "title": lambda c: c.title,
        }
        if name not in getters:
            raise CqlError(f"unsupported cql field {name!r}")
        getter = getters[name]
        texts = [str(v) for v in values]
        if operator == "=":
            return lambda c: getter(c) in texts
        if operator == "!=":
            return lambda c: getter(c) not in texts
        if operator == "~":
            return lambda c: texts[0].lower() in getter(c).lower()
        raise CqlError(f"operator {operator!r} is not valid for {name}")

    def moment(self, value: str | datetime) -> tuple[datetime, bool]:
        if isinstance(value, datetime):
            return value, False
        for pattern in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
            try:
                local = datetime.strptime(value, pattern)
            except ValueError:
                continue
            return local.replace(tzinfo=self.site.user_timezone), True
        raise CqlError(f"not a cql date: {value!r}")


def _cql_offset(text: str) -> timedelta:
    total = timedelta()
    units = {"y": 365 * 86400, "M": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
    for sign, number, unit in re.findall(r"([+-]?)\s*(\d+)\s*([yMwdhm])", text):
        seconds = int(number) * units[unit]
        total += timedelta(seconds=-seconds if sign == "-" else seconds)
    return total


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _compare(left: datetime, operator: str, right: datetime) -> bool:
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }.get(operator, False)


# ---------------------------------------------------------------------------------------------
# The HTTP server


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # without the context path
    params: dict[str, str]
    status: int
    auth: str  # "basic", "bearer" or "anonymous"


@dataclass
class _Failure:
    pattern: re.Pattern[str]
    status: int
    times: int
    retry_after: str | None
    message: str


class ConfluenceStandin:
    """Serves a ConfluenceSite on 127.0.0.1 at a random port; use as a context manager."""

    def __init__(self, site: ConfluenceSite, *, context_path: str | None = None) -> None:
        self.site = site
        self.context_path = (
            ("/wiki" if site.cloud else "") if context_path is None else context_path
        )
        self.calls: list[Call] = []
        # called with (path, params) before each request is answered: a test can change the
        # site between two pages of a listing, as other users do on a live site
        self.before_request: Callable[[str, dict[str, str]], None] | None = None
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The base URL to give the client (CONFLUENCE_URL)."""
        return self.origin + self.context_path

    def start(self) -> ConfluenceStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ConfluenceStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(
        self,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        message: str = "",
    ) -> None:
        """The next `times` requests whose path matches the regex answer `status` instead."""
        with self._lock:
            self._failures.append(
                _Failure(
                    re.compile(path_pattern),
                    status,
                    times,
                    None if retry_after is None else str(retry_after),
                    message or _REASONS.get(status, "error"),
                )
            )

    def calls_to(self, path_pattern: str) -> list[Call]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [call for call in self.calls if pattern.search(call.path)]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.times > 0 and failure.pattern.search(path):
                    failure.times -= 1
                    return failure
        return None

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


_REASONS = {
    400: "Bad request",
    401: "Client must be authenticated to access this resource.",
    403: "The calling user does not have permission to use Confluence",
    404: "No content found with id",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
}


class _HttpError(Exception):
    def __init__(
        self, status: int, message: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or _REASONS.get(status, "error")
        self.headers = headers or {}


def _handler_class(standin: ConfluenceStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real service
        disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            auth_kind = "anonymous"
            headers: dict[str, str] = {}
            try:
                if standin.context_path:
                    if not path.startswith(standin.context_path + "/"):
                        raise _HttpError(404, "not under the context path")
                    path = path[len(standin.context_path) :]
                user, auth_kind = self._authenticate()
                if standin.before_request is not None:
                    standin.before_request(path, params)
                failure = standin._take_failure(path)
                if failure is not None:
                    retry = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    raise _HttpError(failure.status, failure.message, retry)
                result = _Api(standin, user, params).route(path)
                if isinstance(result, tuple):
                    body, content_type = result
                else:
                    body, content_type = json.dumps(result).encode(), "application/json"
                status = 200
            except _HttpError as error:
                status, headers = error.status, error.headers
                payload = {
                    "statusCode": status,
                    "data": {"authorized": False},
                    "message": error.message,
                }
                if status == 401:
                    headers.setdefault("WWW-Authenticate", 'Basic realm="Protected"')
                body, content_type = json.dumps(payload).encode(), "application/json"
            except CqlError as error:
                status = 400
                payload = {"statusCode": 400, "message": f"Could not parse cql : {error}"}
                body, content_type = json.dumps(payload).encode(), "application/json"
            # recorded before the answer leaves, so a client never sees a call the log lacks
            standin._record(Call("GET", path, params, status, auth_kind))
            self._send(status, body, content_type, headers)

        def _authenticate(self) -> tuple[User | None, str]:
            header = self.headers.get("Authorization", "")
            site = standin.site
            if header.startswith("Basic "):
                try:
                    login, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise _HttpError(401) from None
                user = site.authenticate_basic(login, secret)
                if user is None:
                    raise _HttpError(401, "Basic authentication with the given credentials failed")
                return user, "basic"
            if header.startswith("Bearer "):
                user = site.authenticate_bearer(header[7:].strip())
                if user is None:
                    raise _HttpError(401, "The personal access token is invalid or expired")
                return user, "bearer"
            if not site.has_anonymous_access:
                raise _HttpError(401)
            return None, "anonymous"

        def _send(
            self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _Api:
    """One request's view of the site, as the authenticated (or anonymous) user."""

    def __init__(
        self, standin: ConfluenceStandin, user: User | None, params: dict[str, str]
    ) -> None:
        self.standin = standin
        self.site = standin.site
        self.user = user
        self.params = params
        self.base = standin.url

    def route(self, path: str) -> JSON | tuple[bytes, str]:
        routes: list[tuple[str, Callable[..., JSON | tuple[bytes, str]]]] = [
            (r"/rest/api/search", self.search),
            (r"/rest/api/content/search", self.content_search),
            (r"/rest/api/content", self.content_list),
            (r"/rest/api/content/([^/]+)", self.content),
            (r"/rest/api/content/([^/]+)/history", self.history),
            (r"/rest/api/content/([^/]+)/version", self.versions),
            (r"/rest/api/content/([^/]+)/version/(\d+)", self.version),
            (r"/rest/api/content/([^/]+)/child/comment", self.comments),
            (r"/rest/api/content/([^/]+)/child/attachment", self.attachments),
            (r"/rest/api/content/([^/]+)/child/attachment/([^/]+)/download", self.download_by_id),
            (r"/download/attachments/([^/]+)/(.+)", self.download),
            (r"/rest/api/space", self.space_list),
            (r"/rest/api/space/([^/]+)", self.space),
            (r"/rest/api/space/([^/]+)/permissions/anonymous", self.space_anonymous),
            (r"/rest/api/user", self.user_details),
            (r"/rest/api/user/current", self.current_user),
        ]
        for pattern, handler in routes:
            match = re.fullmatch(pattern, path.rstrip("/") or "/")
            if match:
                return handler(*match.groups())
        raise _HttpError(404, f"no such resource {path}")

    # helpers -------------------------------------------------------------------------------

    def expand(self, prefix: str = "") -> set[str]:
        parts = {p.strip() for p in self.params.get("expand", "").split(",") if p.strip()}
        if prefix:
            parts = {p[len(prefix) :] for p in parts if p.startswith(prefix)}
        # "a.b.c" also expands "a" and "a.b", as Confluence does
        closed = set()
        for part in parts:
            pieces = part.split(".")
            for i in range(1, len(pieces) + 1):
                closed.add(".".join(pieces[:i]))
        return closed

    def readable(self, content_id: str) -> Content:
        content = self.site.contents.get(content_id)
        if content is None or not self.site.can_read(self.user, content):
            raise _HttpError(404, f"No content found with id: ContentId{{id={content_id}}}")
        return content

    def paged(
        self,
        path: str,
        items: list[Any],
        render: Callable[[Any], JSON],
        *,
        default: int = 25,
        cap: int = 200,
    ) -> JSON:
        start = self.start_index()
        limit = max(1, min(int(self.params.get("limit", default) or default), cap))
        chunk = items[start : start + limit]
        links: JSON = {
            "base": self.base,
            "context": self.standin.context_path,
            "self": self.base + path,
        }
        if start + limit < len(items):
            query = {k: v for k, v in self.params.items() if k not in ("start", "cursor")}
            query["limit"] = str(limit)
            if self.site.cloud and path.endswith("search"):
                query["cursor"] = base64.urlsafe_b64encode(f"s{start + limit}".encode()).decode()
                query["next"] = "true"
            else:
                query["start"] = str(start + limit)
            links["next"] = f"{path}?{urlencode(query)}"
        return {
            "results": [render(item) for item in chunk],
            "start": start,
            "limit": limit,
            "size": len(chunk),
            "_links": links,
        }

    def start_index(self) -> int:
        cursor = self.params.get("cursor")
        if cursor:
            try:
                return int(base64.urlsafe_b64decode(cursor.encode()).decode()[1:])
            except ValueError:
                raise _HttpError(400, "invalid cursor") from None
        try:
            return max(0, int(self.params.get("start", 0) or 0))
        except ValueError:
            raise _HttpError(400, "start must be a number") from None

    def user_json(self, user: User, *, lookup: bool = False) -> JSON:
        data: JSON = {"type": "known", "displayName": user.display_name}
        if self.site.cloud:
            data.update(
                accountId=user.account_id, accountType="atlassian", publicName=user.display_name
            )
            if user.email_visible and user.email:
                data["email"] = user.email
        else:
            data.update(username=user.username, userKey=user.user_key)
            if lookup and user.email_visible and user.email:
                data["email"] = user.email
        return data

    def space_json(self, space: Space, expand: set[str]) -> JSON:
        data: JSON = {
            "id": space.id,
            "key": space.key,
            "name": space.name,
            "type": space.type,
            "status": space.status,
            "_links": {
                "webui": f"/spaces/{quote(space.key)}",
                "self": f"{self.base}/rest/api/space/{space.key}",
            },
            "_expandable": {},
        }
        if "permissions" in expand:
            data["permissions"] = (
                [
                    {
                        "operation": {"operation": "read", "targetType": "space"},
                        "anonymousAccess": True,
                        "unlicensedAccess": False,
                    }
                ]
                if space.anonymous
                else []
            )
            data["permissions"].append(
                {
                    "operation": {"operation": "read", "targetType": "space"},
                    "subjects": {
                        "group": {"results": [{"type": "group", "name": "confluence-users"}]}
                    },
                    "anonymousAccess": False,
                    "unlicensedAccess": False,
                }
            )
        else:
            data["_expandable"]["permissions"] = ""
        return data

    def webui(self, content: Content) -> str:
        slug = quote(re.sub(r"\s+", "+", content.page.title))
        space = quote(content.space.key)
        if content.type == "comment":
            focus = f"focusedCommentId={content.id}#comment-{content.id}"
            return f"/spaces/{space}/pages/{content.page.id}/{slug}?{focus}"
        if content.type == "attachment":
            page_id = content.page.id
            preview = f"/{page_id}/{content.id}"
            return f"/pages/viewpageattachments.action?pageId={page_id}&preview={preview}"
        if content.type == "blogpost":
            day = content.versions[0].when.strftime("%Y/%m/%d")
            return f"/spaces/{space}/blog/{day}/{content.id}/{slug}"
        return f"/spaces/{space}/pages/{content.id}/{slug}"

    def content_json(
        self, content: Content, expand: set[str], version: Version | None = None
    ) -> JSON:
        shown = version or content.current
        latest = shown is content.current
        data: JSON = {
            "id": content.id,
            "type": content.type,
            "status": "current" if latest else "historical",
            "title": shown.title,
            "_links": {
                "webui": self.webui(content),
                "self": f"{self.base}/rest/api/content/{content.id}",
                "tinyui": "/x/" + base64.urlsafe_b64encode(content.id.encode()).decode(),
            },
            "_expandable": {},
        }
        expandable = data["_expandable"]
        if content.type == "attachment":
            data["extensions"] = {
                "mediaType": content.media_type,
                "fileSize": len(content.data),
                "comment": "",
            }
            data["metadata"] = {"mediaType": content.media_type}
            modified = int(shown.when.timestamp() * 1000)
            data["_links"]["download"] = (
                f"/download/attachments/{content.page.id}/{quote(shown.title)}"
                f"?version={shown.number}&modificationDate={modified}&api=v2"
            )
        if content.type == "comment":
            extensions: JSON = {"location": content.location}
            if content.location == "inline":
                extensions["inlineProperties"] = {
                    "originalSelection": content.inline_selection,
                    "markerRef": f"marker-{content.id}",
                }
            data["extensions"] = extensions
        if "space" in expand:
            data["space"] = self.space_json(content.space, set())
        else:
            expandable["space"] = f"/rest/api/space/{content.space.key}"
        if "version" in expand:
            data["version"] = self.version_json(shown)
        else:
            expandable["version"] = ""
        if "history" in expand:
            first = content.versions[0]
            data["history"] = {
                "latest": latest,
                "createdBy": self.user_json(first.by),
                "createdDate": _iso(first.when),
                "lastUpdated": self.version_json(content.current),
            }
        else:
            expandable["history"] = f"/rest/api/content/{content.id}/history"
        if "body" in expand and content.type != "attachment":
            body: JSON = {}
            if "body.storage" in expand:
                body["storage"] = {
                    "value": shown.body,
                    "representation": "storage",
                    "_expandable": {"content": ""},
                }
            body["_expandable"] = {"view": "", "export_view": "", "styled_view": "", "editor": ""}
            data["body"] = body
        else:
            expandable["body"] = ""
        if "container" in expand and content.container is not None:
            data["container"] = self.content_json(content.container, set())
        elif content.container is not None:
            expandable["container"] = f"/rest/api/content/{content.container.id}"
        if "ancestors" in expand:
            data["ancestors"] = (
                [self.content_json(content.container, set())] if content.container else []
            )
        if "restrictions" in expand:
            # a comment or attachment carries no restrictions of its own; its page's apply
            readers = content.restricted_to
            data["restrictions"] = {
                "read": {
                    "operation": "read",
                    "restrictions": {
                        "user": {
                            "results": [self.user_json(u) for u in readers],
                            "size": len(readers),
                        },
                        "group": {"results": [], "size": 0},
                    },
                }
            }
        else:
            expandable["restrictions"] = ""
        return data

    def version_json(self, version: Version) -> JSON:
        return {
            "by": self.user_json(version.by),
            "when": _iso(version.when),
            "message": version.message,
            "number": version.number,
            "minorEdit": False,
        }

    # search -------------------------------------------------------------------------------

    def matching(self) -> list[Content]:
        cql = self.params.get("cql", "")
        if not cql:
            raise _HttpError(400, "cql parameter is required")
        predicate, order, descending = _Cql(cql, self.site).compile()
        with self.site._lock:
            candidates = list(self.site.contents.values())
        found = [
            c
            for c in candidates
            if c.indexed
            and (
                self.site.can_read(self.user, c)
                or (c.deleted and self.site.can_read_space(self.user, c.space))
            )
            and predicate(c)
        ]
        if order in ("lastmodified", "created"):
            found.sort(
                key=lambda c: (
                    c.lastmodified if order == "lastmodified" else c.versions[0].when,
                    int(re.sub(r"\D", "", c.id)),
                ),
                reverse=descending,
            )
        return found

    def search(self) -> JSON:
        found = self.matching()
        expand = self.expand("content.")
        cap = 50 if "body" in expand else 200  # Data Center's caps (Atlassian KB)

        def render(content: Content) -> JSON:
            # a deleted item still in the index carries no expansions it could not resolve
            shown = self.content_json(content, set() if content.deleted else expand)
            return {
                "content": shown,
                "title": content.title,
                "excerpt": "",
                "url": shown["_links"]["webui"],
                "resultGlobalContainer": {
                    "title": content.space.name,
                    "displayUrl": f"/spaces/{content.space.key}",
                },
                "entityType": "content",
                "iconCssClass": content.type,
                "lastModified": _iso(content.lastmodified),
                "friendlyLastModified": content.lastmodified.strftime("%b %d, %Y"),
                "score": 0.0,
            }

        page = self.paged("/rest/api/search", found, render, cap=cap)
        page.update(totalSize=len(found), cqlQuery=self.params.get("cql", ""), searchDuration=3)
        return page

    def content_search(self) -> JSON:
        found = self.matching()
        expand = self.expand()
        cap = 50 if "body" in expand else 200
        return self.paged(
            "/rest/api/content/search",
            found,
            lambda c: self.content_json(c, set() if c.deleted else expand),
            cap=cap,
        )

    def content_list(self) -> JSON:
        key, kind = self.params.get("spaceKey", ""), self.params.get("type", "page")
        found = [
            c
            for c in self.site.contents.values()
            if c.type == kind
            and (not key or c.space.key == key)
            and self.site.can_read(self.user, c)
        ]
        expand = self.expand()
        return self.paged("/rest/api/content", found, lambda c: self.content_json(c, expand))

    # content ------------------------------------------------------------------------------

    def content(self, content_id: str) -> JSON:
        content = self.readable(content_id)
        version = None
        if "version" in self.params:
            number = int(self.params["version"] or 0)
            if not 1 <= number <= len(content.versions):
                raise _HttpError(404, f"No content found with id {content_id} and version {number}")
            version = content.versions[number - 1]
            if version is not content.current and self.params.get("status", "current") not in (
                "historical",
                "any",
            ):
                # an old version is found only when status=historical (or any) is asked for
                raise _HttpError(404, f"No content found with id {content_id} and status current")
        return self.content_json(content, self.expand(), version)

    def history(self, content_id: str) -> JSON:
        content = self.readable(content_id)
        first = content.versions[0]
        data: JSON = {
            "latest": True,
            "createdBy": self.user_json(first.by),
            "createdDate": _iso(first.when),
            "lastUpdated": self.version_json(content.current),
            "_links": {"self": f"{self.base}/rest/api/content/{content_id}/history"},
        }
        if len(content.versions) > 1:
            data["previousVersion"] = self.version_json(content.versions[-2])
        return data

    def versions(self, content_id: str) -> JSON:
        content = self.readable(content_id)
        newest_first = list(reversed(content.versions))
        return self.paged(
            f"/rest/api/content/{content_id}/version", newest_first, self.version_json
        )

    def version(self, content_id: str, number: str) -> JSON:
        content = self.readable(content_id)
        n = int(number)
        if not 1 <= n <= len(content.versions):
            raise _HttpError(404, f"No version {n} of content {content_id}")
        data = self.version_json(content.versions[n - 1])
        if "content" in self.expand():
            data["content"] = self.content_json(
                content, self.expand("content."), content.versions[n - 1]
            )
        return data

    def comments(self, content_id: str) -> JSON:
        page = self.readable(content_id)
        location = self.params.get("location", "")
        depth = self.params.get("depth", "")
        found = [
            c
            for c in self.site.contents.values()
            if c.type == "comment"
            and c.container is page
            and not c.deleted
            and (depth == "all" or c.parent_comment is None)
            and (not location or c.location == location)
        ]
        expand = self.expand()
        return self.paged(
            f"/rest/api/content/{content_id}/child/comment",
            found,
            lambda c: self.content_json(c, expand),
        )

    def attachments(self, content_id: str) -> JSON:
        page = self.readable(content_id)
        filename = self.params.get("filename", "")
        found = [
            c
            for c in self.site.contents.values()
            if c.type == "attachment"
            and c.container is page
            and not c.deleted
            and (not filename or c.title == filename)
        ]
        expand = self.expand()
        page_json = self.paged(
            f"/rest/api/content/{content_id}/child/attachment",
            found,
            lambda c: self.content_json(c, expand),
            default=50,
        )
        page_json["totalSize"] = len(found)
        return page_json

    def download(self, page_id: str, filename: str) -> tuple[bytes, str]:
        page = self.readable(page_id)
        for content in self.site.contents.values():
            if (
                content.type == "attachment"
                and content.container is page
                and content.title == filename
            ):
                if not self.site.can_read(self.user, content):
                    break
                return content.data, content.media_type or "application/octet-stream"
        raise _HttpError(404, "attachment not found")

    def download_by_id(self, page_id: str, attachment_id: str) -> tuple[bytes, str]:
        attachment = self.readable(attachment_id)
        if attachment.container is None or attachment.container.id != page_id:
            raise _HttpError(404, "attachment not found")
        return attachment.data, attachment.media_type or "application/octet-stream"

    # spaces and users ----------------------------------------------------------------------

    def space_list(self) -> JSON:
        kind = self.params.get("type", "")
        found = [
            s
            for s in self.site.spaces.values()
            if self.site.can_read_space(self.user, s) and (not kind or s.type == kind)
        ]
        expand = self.expand()
        return self.paged("/rest/api/space", found, lambda s: self.space_json(s, expand))

    def readable_space(self, key: str) -> Space:
        space = self.site.spaces.get(key)
        if space is None or not self.site.can_read_space(self.user, space):
            raise _HttpError(404, f"No space with key : {key}")
        return space

    def space(self, key: str) -> JSON:
        return self.space_json(self.readable_space(key), self.expand())

    def space_anonymous(self, key: str) -> JSON:
        space = self.readable_space(key)
        operations = [{"operation": "read", "targetType": "space"}] if space.anonymous else []
        return {"results": operations, "size": len(operations)}

    def user_details(self) -> JSON:
        if self.user is None:
            raise _HttpError(401)
        if not self.site.user_lookup_allowed:
            raise _HttpError(403, "The calling user does not have permission to view users")
        found = self.site.find_user(
            account_id=self.params.get("accountId", ""),
            username=self.params.get("username", ""),
            key=self.params.get("key", ""),
        )
        if found is None:
            raise _HttpError(404, "No user found")
        return self.user_json(found, lookup=True)

    def current_user(self) -> JSON:
        if self.user is None:
            return {"type": "anonymous", "displayName": "Anonymous"}
        return self.user_json(self.user, lookup=True)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
