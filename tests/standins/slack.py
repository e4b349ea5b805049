"""A stand-in Slack for tests: a Web API server on 127.0.0.1 and a sender of signed requests.

Build a workspace, start the server, point the real slack_sdk WebClient (or Bolt) at it:

    from tests.standins.slack import SlackStandin, Workspace

    ws = Workspace(team_id="T0001", name="Acme", domain="acme")
    alice = ws.add_user("alice", email="alice@acme.test")
    bob = ws.add_user("bob", email="bob@acme.test", deleted=True)    # deactivated
    other_bot = ws.add_user("deploybot", is_bot=True)
    general = ws.add_channel("general", members=[alice.id, ws.bot.id])  # the bot is a member
    secret = ws.add_channel("sec", private=True, members=[alice.id])     # bot not invited
    shared = ws.add_channel("partners", shared=True, members=[alice.id, ws.bot.id])
    parent = ws.post(general, alice, "look at this")                   # -> Message
    ws.post(general, bob, "a reply", thread=parent)                    # thread reply
    f = ws.add_file(alice, "creds.txt", "some text")                   # text file or snippet
    ws.post(general, alice, "uploaded", files=[f])
    ws.edit(general, parent.ts, "new text")                            # -> message_changed event

    with SlackStandin(ws) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        ...
        slack.calls_to("conversations.history")       # recorded requests (Call objects)
        slack.dms_to(alice.id)                         # what alice sees in her DM with the bot
        slack.posted                                   # every chat.postMessage, in order
        slack.posted_in(channel)                       # the app's messages in a channel
        slack.ephemerals_to(alice)                     # chat.postEphemeral to alice
        slack.home[alice.id], slack.views              # published App Home views, modals
        slack.responses                                # bodies POSTed to response_url
        iter_posted_text(slack.dms_to(alice))          # every text in those messages' blocks
        slack.wait_for(lambda: slack.dms_to(alice))    # events are handled after the ack

A Posted message keeps its current text and blocks, the versions chat.update replaced
(`updates`), `deleted` after chat.delete, and `at` (when it arrived, time.monotonic()).
Bot tokens may delete or update only the bot's own messages; the admin token
(slack.admin_token, an admin's user token) any message. File downloads need the token in the
Authorization header; without it Slack's login page comes back with status 200.

Failures and limits:

    slack.fail("conversations.history", times=3, status=429, retry_after=1)  # a 429 burst
    slack.fail("conversations.list", times=1, status=503)                     # a 5xx
    slack.fail("conversations.info", error="channel_not_found")              # ok=false once
    slack.rate_limit("conversations.history", calls=1, per_seconds=60)       # a tier
    ws.restricted_history = True       # limit capped at 15 (non-Marketplace apps)
    ws.bot_replies_error = "missing_scope"   # bot tokens refused on conversations.replies
    slack.scopes[slack.bot_token].discard("files:read")  # a missing scope
    slack.revoked.add(slack.bot_token)                      # token_revoked

Signed requests to an app (events, interactivity, slash commands):

    sender = SignedSender("http://127.0.0.1:PORT/slack/events", signing_secret, slack)
    sender.event(ws.message_event(general, parent.ts))          # -> Response(status, body)
    sender.event(event, event_id="Ev1", retry_num=1, retry_reason="http_timeout")
    sender.url_verification("challenge-text")
    sender.block_actions(alice.id, action_id="rotated", value="42")   # issues a trigger_id
    sender.view_submission(alice.id, callback_id="not_a_secret", values={...})
    sender.slash_command("/leakwatch", "status", user=alice.id)

Tokens are made up at run time and do not have the shape of real Slack tokens.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]

ALL_BOT_SCOPES = frozenset(
    {
        "channels:history", "groups:history", "im:history", "mpim:history",
        "channels:read", "groups:read", "im:read", "mpim:read", "channels:join",
        "chat:write", "im:write", "users:read", "users:read.email", "files:read",
        "team:read", "commands", "usergroups:read",
    }
)  # fmt: skip

LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Slack</title></head>"
    b"<body><form action='/signin'>Sign in to your workspace</form></body></html>"
)


# ---------------------------------------------------------------------------------------------
# The workspace model


@dataclass
class User:
    id: str
    name: str
    team_id: str
    email: str | None = None
    real_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False
    is_admin: bool = False
    tz: str = "Europe/Berlin"

    def to_json(self) -> JSON:
        profile: JSON = {
            "real_name": self.real_name or self.name,
            "display_name": self.name,
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.real_name or self.name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": self.is_admin,
            "is_owner": False,
            "tz": self.tz,
            "profile": profile,
        }


@dataclass
class File:
    id: str
    name: str
    user: str
    content: bytes
    mimetype: str = "text/plain"
    filetype: str = "text"
    mode: str = "hosted"  # "snippet" for snippets
    created: int = 0
    title: str = ""
    channels: list[str] = field(default_factory=list)

    def to_json(self, ws: Workspace) -> JSON:
        base = f"{ws.base_url}/files-pri/{ws.team_id}-{self.id}"
        data: JSON = {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.capitalize(),
            "user": self.user,
            "mode": self.mode,
            "editable": self.mode == "snippet",
            "is_external": False,
            "size": len(self.content),
            "url_private": f"{base}/{urllib.parse.quote(self.name)}",
            "url_private_download": f"{base}/download/{urllib.parse.quote(self.name)}",
            "permalink": f"https://{ws.domain}.slack.com/files/{self.user}/{self.id}/{self.name}",
            "channels": list(self.channels),
        }
        if self.mode == "snippet":
            data["preview"] = self.content[:1000].decode("utf-8", "replace")
        return data


@dataclass
class Message:
    channel: str
    ts: str
    user: str | None
    text: str
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    subtype: str | None = None
    bot_id: str | None = None
    files: list[File] = field(default_factory=list)
    edited: JSON | None = None
    reply_broadcast: bool = False
    deleted: bool = False
    replies: list[Message] = field(default_factory=list)  # only on a thread parent

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_json(self, ws: Workspace) -> JSON:
        data: JSON = {"type": "message", "ts": self.ts, "text": self.text, "team": ws.team_id}
        if self.user:
            data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
        if self.subtype:
            data["subtype"] = self.subtype
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.edited:
            data["edited"] = dict(self.edited)
        if self.files:
            data["files"] = [f.to_json(ws) for f in self.files]
            data["upload"] = True
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
            if self.is_reply:
                parent = ws.find(self.channel, self.thread_ts)
                if parent and parent.user:
                    data["parent_user_id"] = parent.user
        live = [r for r in self.replies if not r.deleted]
        if live:
            data["reply_count"] = len(live)
            data["reply_users"] = sorted({r.user for r in live if r.user})
            data["reply_users_count"] = len(data["reply_users"])
            data["latest_reply"] = live[-1].ts
        return data


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_ext_shared: bool = False
    is_archived: bool = False
    is_im: bool = False
    im_user: str | None = None
    members: list[str] = field(default_factory=list)
    created: int = 0
    messages: list[Message] = field(default_factory=list)  # top-level, ordered by ts

    def to_json(self, viewer: str | None) -> JSON:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "is_shared": self.is_ext_shared,
            "is_ext_shared": self.is_ext_shared,
            "is_org_shared": False,
            "is_member": viewer in self.members,
            "created": self.created,
            "creator": self.members[0] if self.members else "",
            "num_members": len(self.members),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


class Workspace:
    """An in-memory Slack workspace; every test builds its own.

    Timestamps come from a clock that starts at `start` (unix seconds) and moves one second per
    post unless `at=` is given, so history order is the order of calls.
    """

    def __init__(
        self,
        team_id: str = "T0STANDIN",
        name: str = "Acme",
        domain: str = "acme",
        *,
        start: float = 1_760_000_000.0,
        bot_name: str = "leakwatch",
    ) -> None:
        self.team_id = team_id
        self.name = name
        self.domain = domain
        self.base_url = "http://127.0.0.1"  # the server fills in its port
        self._ids = itertools.count(1)
        self._clock = start
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, File] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._used_ts: set[str] = set()
        self._index: dict[tuple[str, str], Message] = {}  # (channel, ts) -> message
        self.restricted_history = False
        self.bot_replies_error: str | None = None  # e.g. "missing_scope"
        self.bot = self.add_user(bot_name, is_bot=True)
        self.admin = self.add_user("admin", email="admin@" + domain + ".test", is_admin=True)
        self.lock = threading.RLock()

    # -- building -------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):07d}"

    def _next_ts(self, at: float | datetime | None) -> str:
        if isinstance(at, datetime):
            at = at.timestamp()
        if at is None:
            self._clock += 1.0
            at = self._clock
        else:
            self._clock = max(self._clock, at)
        ts = f"{at:.6f}"
        while ts in self._used_ts:
            at += 0.000001
            ts = f"{at:.6f}"
        self._used_ts.add(ts)
        return ts

    def add_user(
        self,
        name: str,
        *,
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        is_admin: bool = False,
        real_name: str = "",
        team_id: str | None = None,
    ) -> User:
        user = User(
            id=self._id("U"),
            name=name,
            team_id=team_id or self.team_id,
            email=email,
            real_name=real_name,
            is_bot=is_bot,
            bot_id=self._id("B") if is_bot else None,
            deleted=deleted,
            is_admin=is_admin,
        )
        self.users[user.id] = user
        return user

    def add_channel(
        self,
        name: str,
        *,
        members: Iterable[User | str] = (),
        private: bool = False,
        shared: bool = False,
        archived: bool = False,
    ) -> Channel:
        channel = Channel(
            id=self._id("G" if private else "C"),
            name=name,
            is_private=private,
            is_ext_shared=shared,
            is_archived=archived,
            members=[_uid(m) for m in members],
            created=int(self._clock),
        )
        self.channels[channel.id] = channel
        return channel

    def add_usergroup(self, handle: str, members: Iterable[User | str]) -> str:
        group_id = self._id("S")
        self.usergroups[group_id] = [_uid(m) for m in members]
        return group_id

    def add_file(
        self,
        user: User | str,
        name: str,
        content: str | bytes,
        *,
        mimetype: str = "text/plain",
        filetype: str = "text",
        snippet: bool = False,
    ) -> File:
        data = content.encode() if isinstance(content, str) else content
        f = File(
            id=self._id("F"),
            name=name,
            user=_uid(user),
            content=data,
            mimetype=mimetype,
            filetype=filetype,
            mode="snippet" if snippet else "hosted",
            created=int(self._clock),
        )
        self.files[f.id] = f
        return f

    def post(
        self,
        channel: Channel | str,
        user: User | str | None,
        text: str,
        *,
        thread: Message | str | None = None,
        broadcast: bool = False,
        blocks: list[JSON] | None = None,
        files: Sequence[File] = (),
        subtype: str | None = None,
        bot_id: str | None = None,
        at: float | datetime | None = None,
    ) -> Message:
        """Add a message as if someone posted it (no event is sent: see message_event)."""
        with self.lock:
            ch = self.channel(channel)
            uid = _uid(user) if user is not None else None
            if bot_id is None and uid and self.users.get(uid) and self.users[uid].is_bot:
                bot_id = self.users[uid].bot_id
            thread_ts = thread.ts if isinstance(thread, Message) else thread
            msg = Message(
                channel=ch.id,
                ts=self._next_ts(at),
                user=uid,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                subtype=subtype or ("thread_broadcast" if broadcast else None),
                bot_id=bot_id,
                files=list(files),
                reply_broadcast=broadcast,
            )
            self._index[(ch.id, msg.ts)] = msg
            for f in files:
                if ch.id not in f.channels:
                    f.channels.append(ch.id)
            if thread_ts:
                parent = self.find(ch.id, thread_ts)
                if parent is None:
                    raise KeyError(f"no thread parent {thread_ts} in {ch.id}")
                if parent.thread_ts is None:
                    parent.thread_ts = parent.ts
                parent.replies.append(msg)
                parent.replies.sort(key=lambda m: float(m.ts))
                if broadcast:
                    _insert(ch.messages, msg)
            else:
                _insert(ch.messages, msg)
            return msg

    def edit(self, channel: Channel | str, ts: str, text: str, *, blocks: list[JSON] | None = None,
             at: float | None = None) -> JSON:
        """Change a message's text; returns the message_changed event Slack would send."""
        with self.lock:
            ch = self.channel(channel)
            msg = self.find(ch.id, ts)
            if msg is None:
                raise KeyError(ts)
            previous = msg.to_json(self)
            edit_ts = self._next_ts(at)
            msg.text = text
            msg.blocks = blocks
            msg.edited = {"user": msg.user or "", "ts": edit_ts}
            return {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "channel": ch.id,
                "channel_type": _channel_type(ch),
                "message": msg.to_json(self),
                "previous_message": previous,
                "ts": edit_ts,
                "event_ts": edit_ts,
            }

    def delete(self, channel: Channel | str, ts: str) -> JSON:
        """Remove a message; returns the message_deleted event Slack would send."""
        with self.lock:
            ch = self.channel(channel)
            msg = self.find(ch.id, ts)
            if msg is None:
                raise KeyError(ts)
            previous = msg.to_json(self)
            self._remove(ch, msg)
            now = self._next_ts(None)
            event: JSON = {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": ch.id,
                "channel_type": _channel_type(ch),
                "deleted_ts": ts,
                "previous_message": previous,
                "ts": now,
                "event_ts": now,
            }
            if msg.is_reply:
                event["thread_ts"] = msg.thread_ts
            return event

    def message_event(self, channel: Channel | str, ts: str) -> JSON:
        """The `message` event Slack sends for a stored message (file_share when it has files)."""
        with self.lock:
            ch = self.channel(channel)
            msg = self.find(ch.id, ts)
            if msg is None:
                raise KeyError(ts)
            event = msg.to_json(self)
            event.pop("reply_count", None)
            event.pop("reply_users", None)
            event.pop("reply_users_count", None)
            event.pop("latest_reply", None)
            if msg.files and not msg.subtype:
                event["subtype"] = "file_share"
            event["channel"] = ch.id
            event["channel_type"] = _channel_type(ch)
            event["event_ts"] = msg.ts
            return event

    # -- reading ----------------------------------------------------------------------------

    def channel(self, ref: Channel | str) -> Channel:
        if isinstance(ref, Channel):
            return ref
        if ref in self.channels:
            return self.channels[ref]
        for ch in self.channels.values():
            if ch.name == ref.lstrip("#"):
                return ch
        raise KeyError(ref)

    def find(self, channel_id: str, ts: str) -> Message | None:
        msg = self._index.get((channel_id, ts))
        return None if msg is None or msg.deleted else msg

    def _remove(self, ch: Channel, msg: Message) -> None:
        msg.deleted = True
        if msg in ch.messages:
            ch.messages.remove(msg)
        if msg.is_reply and msg.thread_ts:
            parent = self.find(ch.id, msg.thread_ts)
            if parent and msg in parent.replies:
                parent.replies.remove(msg)

    def im_with(self, user_id: str) -> Channel:
        for ch in self.channels.values():
            if ch.is_im and ch.im_user == user_id:
                return ch
        ch = Channel(id=self._id("D"), name="", is_im=True, im_user=user_id,
                     members=[user_id, self.bot.id], created=int(self._clock))
        self.channels[ch.id] = ch
        return ch


def _insert(messages: list[Message], msg: Message) -> None:
    """Keep a channel's messages in ts order (posts usually come last)."""
    if not messages or float(messages[-1].ts) <= float(msg.ts):
        messages.append(msg)
    else:
        bisect.insort(messages, msg, key=lambda m: float(m.ts))


def _uid(ref: User | str) -> str:
    return ref.id if isinstance(ref, User) else ref


def _channel_type(ch: Channel) -> str:
    if ch.is_im:
        return "im"
    return "group" if ch.is_private else "channel"


# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class Call:
    """One request the stand-in received."""

    method: str
    params: Mapping[str, Any]
    token: str | None
    status: int
    error: str | None
    at: float


@dataclass
class Posted:
    """A message the app posted with chat.postMessage (or postEphemeral), with later updates."""

    channel: str  # the conversation id (D… for a DM)
    ts: str
    text: str
    blocks: list[JSON] | None
    thread_ts: str | None = None
    user: str | None = None  # the recipient of an ephemeral message
    ephemeral: bool = False
    updates: list[JSON] = field(default_factory=list)
    deleted: bool = False
    at: float = field(default_factory=time.monotonic)  # when the stand-in received it


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int
    remaining: int


class _ApiError(Exception):
    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


class SlackStandin:
    """The Web API server. Use as a context manager, or call start() and stop()."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        secret = hashlib.sha256(f"{id(self)}{time.time()}".encode()).hexdigest()[:16]
        self.bot_token = f"xoxb-standin-bot-{secret}"
        self.admin_token = f"xoxp-standin-admin-{secret}"
        self.tokens: dict[str, str] = {self.bot_token: workspace.bot.id,
                                       self.admin_token: workspace.admin.id}
        self.scopes: dict[str, set[str]] = {self.bot_token: set(ALL_BOT_SCOPES),
                                             self.admin_token: set(ALL_BOT_SCOPES)}
        self.revoked: set[str] = set()
        self.calls: list[Call] = []
        self.posted: list[Posted] = []
        self.views: dict[str, JSON] = {}
        self.home: dict[str, JSON] = {}
        self.trigger_ids: dict[str, float] = {}
        self.trigger_ttl = 3.0
        self._used: set[str] = set()
        self.responses: list[tuple[str, JSON]] = []  # bodies POSTed to response_url
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._limits: dict[str, tuple[int, float]] = {}
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._view_ids = itertools.count(1)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> SlackStandin:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.ws.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.ws.base_url

    @property
    def api_url(self) -> str:
        """What WebClient(base_url=...) and SLACK_API_URL take."""
        return self.ws.base_url + "/api/"

    # -- test controls ----------------------------------------------------------------------

    def fail(self, method: str, *, times: int = 1, status: int = 200, error: str | None = None,
             retry_after: int = 1) -> None:
        """The next `times` calls of `method` fail: status 429 (ratelimited, Retry-After),
        5xx, or 200 with ok=false and `error`."""
        if status == 429 and error is None:
            error = "ratelimited"
        if status == 200 and error is None:
            raise ValueError("give an error code for an ok=false failure")
        with self._lock:
            self._failures[method].append(_Failure(status, error, retry_after, times))

    def rate_limit(self, method: str, *, calls: int, per_seconds: float) -> None:
        """At most `calls` calls of `method` per `per_seconds`; beyond that 429 + Retry-After."""
        self._limits[method] = (calls, per_seconds)

    def add_token(self, user: User, scopes: Iterable[str] = ALL_BOT_SCOPES) -> str:
        token = f"xoxp-standin-{user.id.lower()}-{len(self.tokens)}"
        self.tokens[token] = user.id
        self.scopes[token] = set(scopes)
        return token

    def issue_trigger_id(self) -> str:
        trigger = f"{int(time.time())}.{len(self.trigger_ids) + 1}.standin"
        self.trigger_ids[trigger] = time.monotonic()
        return trigger

    # -- what tests read --------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def dms_to(self, user: User | str) -> list[Posted]:
        """Messages the app posted in its DM with `user` (not deleted), oldest first."""
        uid = _uid(user)
        im = next((c for c in self.ws.channels.values() if c.is_im and c.im_user == uid), None)
        if im is None:
            return []
        with self._lock:
            return [p for p in self.posted
                    if p.channel == im.id and not p.ephemeral and not p.deleted]

    def posted_in(self, channel: Channel | str) -> list[Posted]:
        ch = self.ws.channel(channel)
        with self._lock:
            return [p for p in self.posted if p.channel == ch.id and not p.deleted]

    def ephemerals_to(self, user: User | str) -> list[Posted]:
        uid = _uid(user)
        with self._lock:
            return [p for p in self.posted if p.ephemeral and p.user == uid]

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Poll `predicate()` until it is true (events are handled after the ack)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    # -- request handling -------------------------------------------------------------------

    def handle(
        self, method: str, params: JSON, token: str | None
    ) -> tuple[int, JSON, dict[str, str]]:
        status, body, headers = 200, {}, {}
        try:
            self._check_failures(method)
            self._check_rate(method)
            user_id = self._authenticate(token)
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                raise _ApiError("unknown_method", status=404)
            with self.ws.lock:
                body = handler(params, user_id, token)
            body = {"ok": True, **body}
            if method == "auth.test":
                headers["x-oauth-scopes"] = ",".join(sorted(self.scopes.get(token or "", ())))
        except _ApiError as error:
            status = error.status
            body = {"ok": False, "error": error.error, **error.extra}
            if status == 429:
                headers["Retry-After"] = str(error.extra.pop("retry_after", 1))
                body.pop("retry_after", None)
        with self._lock:
            self.calls.append(Call(method, dict(params), token, status,
                                   None if body.get("ok") else body.get("error"), time.time()))
        return status, body, headers

    def _check_failures(self, method: str) -> None:
        with self._lock:
            queue = self._failures.get(method)
            if not queue:
                return
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
        if failure.status == 429:
            raise _ApiError("ratelimited", status=429, retry_after=failure.retry_after)
        if failure.status >= 500:
            raise _ApiError(failure.error or "internal_error", status=failure.status)
        raise _ApiError(failure.error or "fatal_error", status=failure.status)

    def _check_rate(self, method: str) -> None:
        limit = self._limits.get(method)
        if (method in ("conversations.history", "conversations.replies")
                and self.ws.restricted_history and limit is None):
            limit = (1, 60.0)
        if limit is None:
            return
        calls, period = limit
        now = time.monotonic()
        with self._lock:
            hits = self._hits[method]
            while hits and now - hits[0] >= period:
                hits.popleft()
            if len(hits) >= calls:
                wait = max(1, math.ceil(period - (now - hits[0])))
                raise _ApiError("ratelimited", status=429, retry_after=wait)
            hits.append(now)

    def _authenticate(self, token: str | None) -> str:
        if not token:
            raise _ApiError("not_authed")
        if token in self.revoked:
            raise _ApiError("token_revoked")
        user_id = self.tokens.get(token)
        if user_id is None:
            raise _ApiError("invalid_auth")
        return user_id

    def _need(self, token: str | None, *scopes: str) -> None:
        """Require any one of `scopes`."""
        granted = self.scopes.get(token or "", set())
        if not any(s in granted for s in scopes):
            raise _ApiError("missing_scope", needed=",".join(scopes),
                            provided=",".join(sorted(granted)))

    def _is_bot_token(self, token: str | None) -> bool:
        return token is not None and self.tokens.get(token) == self.ws.bot.id

    # -- file downloads ---------------------------------------------------------------------

    def download(self, path: str, token: str | None) -> tuple[int, bytes, str]:
        with self._lock:
            self.calls.append(Call("files.download", {"path": path}, token, 200, None, time.time()))
        parts = path.strip("/").split("/")  # files-pri / T-F / [download /] name
        if len(parts) < 3 or parts[0] != "files-pri":
            return 404, b"not found", "text/plain"
        file_id = parts[1].split("-", 1)[-1]
        f = self.ws.files.get(file_id)
        user_id = self.tokens.get(token or "")
        if (f is None or user_id is None or token in self.revoked
                or "files:read" not in self.scopes.get(token or "", set())):
            # Slack answers a bad or missing token with its login page, status 200
            return 200, LOGIN_PAGE, "text/html; charset=utf-8"
        return 200, f.content, f.mimetype

    # -- methods ----------------------------------------------------------------------------

    def _m_api_test(self, p: JSON, uid: str, token: str | None) -> JSON:
        return {"args": p}

    def _m_auth_test(self, p: JSON, uid: str, token: str | None) -> JSON:
        user = self.ws.users[uid]
        data: JSON = {
            "url": f"https://{self.ws.domain}.slack.com/",
            "team": self.ws.name,
            "user": user.name,
            "team_id": self.ws.team_id,
            "user_id": uid,
            "is_enterprise_install": False,
        }
        if user.bot_id:
            data["bot_id"] = user.bot_id
        return data

    def _m_team_info(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "team:read")
        return {"team": {"id": self.ws.team_id, "name": self.ws.name, "domain": self.ws.domain,
                         "email_domain": self.ws.domain + ".test", "icon": {}}}

    def _readable(self, ch: Channel, uid: str, token: str | None) -> None:
        kind = {"im": "im", "group": "groups", "channel": "channels"}[_channel_type(ch)]
        self._need(token, f"{kind}:history")
        if uid not in ch.members and not (ch.is_im and uid == self.ws.bot.id):
            raise _ApiError("not_in_channel" if not ch.is_private else "channel_not_found")

    def _get_channel(self, p: JSON, uid: str, key: str = "channel") -> Channel:
        cid = str(p.get(key) or "")
        if not cid:
            raise _ApiError("invalid_arguments")
        ch = self.ws.channels.get(cid)
        if ch is None:
            raise _ApiError("channel_not_found")
        if ch.is_private and uid not in ch.members:
            raise _ApiError("channel_not_found")  # a private channel is invisible to outsiders
        if ch.is_im and uid not in ch.members:
            raise _ApiError("channel_not_found")
        return ch

    def _m_conversations_list(self, p: JSON, uid: str, token: str | None) -> JSON:
        types = set(str(p.get("types") or "public_channel").split(","))
        needs = {"public_channel": "channels:read", "private_channel": "groups:read",
                 "im": "im:read", "mpim": "mpim:read"}
        for t in types:
            if t in needs:
                self._need(token, needs[t])
        exclude_archived = _truthy(p.get("exclude_archived"))
        chosen = []
        for ch in self.ws.channels.values():
            if ch.is_im:
                if "im" in types and uid in ch.members:
                    chosen.append(ch)
                continue
            if exclude_archived and ch.is_archived:
                continue
            if ch.is_private:
                if "private_channel" in types and uid in ch.members:
                    chosen.append(ch)
            elif "public_channel" in types:
                chosen.append(ch)
        page, next_cursor = _page(chosen, p, default=100, maximum=999)
        return {"channels": [c.to_json(uid) for c in page],
                "response_metadata": {"next_cursor": next_cursor}}

    def _m_conversations_info(self, p: JSON, uid: str, token: str | None) -> JSON:
        ch = self._get_channel(p, uid)
        self._need(token, "im:read" if ch.is_im else "groups:read" if ch.is_private
                   else "channels:read")
        data = ch.to_json(uid)
        if not _truthy(p.get("include_num_members")):
            data.pop("num_members", None)
        return {"channel": data}

    def _m_conversations_members(self, p: JSON, uid: str, token: str | None) -> JSON:
        ch = self._get_channel(p, uid)
        page, next_cursor = _page(list(ch.members), p, default=100, maximum=1000)
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _m_conversations_join(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "channels:join")
        ch = self._get_channel(p, uid)
        if ch.is_private or ch.is_im:
            raise _ApiError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise _ApiError("is_archived")
        if uid not in ch.members:
            ch.members.append(uid)
        return {"channel": ch.to_json(uid)}

    def _m_conversations_open(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "im:write")
        users = [u for u in str(p.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise _ApiError("not_implemented" if users else "users_list_not_supplied")
        user = self.ws.users.get(users[0])
        if user is None:
            raise _ApiError("user_not_found")
        if user.deleted:
            raise _ApiError("user_disabled")
        ch = self.ws.im_with(user.id)
        return {"channel": {"id": ch.id} if not _truthy(p.get("return_im")) else ch.to_json(uid)}

    def _history_window(self, p: JSON) -> tuple[float, float, bool]:
        try:
            oldest = float(p.get("oldest") or 0)
            latest = float(p["latest"]) if p.get("latest") else math.inf
        except ValueError:
            raise _ApiError("invalid_ts_oldest") from None
        return oldest, latest, _truthy(p.get("inclusive"))

    def _limit(self, p: JSON, default: int, maximum: int) -> int:
        if self.ws.restricted_history:
            default = maximum = 15
        try:
            limit = int(p.get("limit") or default)
        except ValueError:
            raise _ApiError("invalid_limit") from None
        return max(1, min(limit, maximum))

    def _m_conversations_history(self, p: JSON, uid: str, token: str | None) -> JSON:
        ch = self._get_channel(p, uid)
        self._readable(ch, uid, token)
        oldest, latest, inclusive = self._history_window(p)

        def inside(m: Message) -> bool:
            t = float(m.ts)
            if inclusive:
                return oldest <= t <= latest
            return oldest < t < latest

        window = [m for m in reversed(ch.messages) if inside(m)]  # newest first
        start = _cursor_ts(p.get("cursor"))
        if start is not None:
            window = [m for m in window if float(m.ts) <= start]
        limit = self._limit(p, default=100, maximum=999)
        page, rest = window[:limit], window[limit:]
        data: JSON = {
            "messages": [m.to_json(self.ws) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        data["response_metadata"] = {"next_cursor": _make_cursor(rest[0].ts) if rest else ""}
        return data

    def _m_conversations_replies(self, p: JSON, uid: str, token: str | None) -> JSON:
        ch = self._get_channel(p, uid)
        if self._is_bot_token(token) and not ch.is_im and self.ws.bot_replies_error:
            raise _ApiError(self.ws.bot_replies_error)
        self._readable(ch, uid, token)
        parent = self.ws.find(ch.id, str(p.get("ts") or ""))
        if parent is None:
            raise _ApiError("thread_not_found")
        if parent.is_reply and parent.thread_ts:
            parent = self.ws.find(ch.id, parent.thread_ts) or parent
        oldest, latest, inclusive = self._history_window(p)
        thread = [parent, *parent.replies]

        def inside(m: Message) -> bool:
            if m is parent:
                return True  # the parent always comes first
            t = float(m.ts)
            return (oldest <= t <= latest) if inclusive else (oldest < t < latest)

        items = [m for m in thread if inside(m)]
        start = _cursor_ts(p.get("cursor"))
        if start is not None:
            items = [m for m in items if m is not parent and float(m.ts) >= start]
        limit = self._limit(p, default=100, maximum=999)
        page, rest = items[:limit], items[limit:]
        return {
            "messages": [m.to_json(self.ws) for m in page],
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": _make_cursor(rest[0].ts) if rest else ""},
        }

    def _m_users_info(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "users:read")
        user = self.ws.users.get(str(p.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        data = user.to_json()
        if "users:read.email" not in self.scopes.get(token or "", set()):
            data["profile"].pop("email", None)
        return {"user": data}

    def _m_users_lookupByEmail(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "users:read.email")
        email = str(p.get("email") or "").lower()
        for user in self.ws.users.values():
            if user.email and user.email.lower() == email:
                return {"user": user.to_json()}
        raise _ApiError("users_not_found")

    def _m_users_list(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "users:read")
        page, next_cursor = _page(list(self.ws.users.values()), p, default=100, maximum=1000)
        return {"members": [u.to_json() for u in page],
                "response_metadata": {"next_cursor": next_cursor}}

    def _m_usergroups_users_list(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "usergroups:read")
        group = self.ws.usergroups.get(str(p.get("usergroup") or ""))
        if group is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(group)}

    def _target(self, p: JSON, uid: str) -> Channel:
        ref = str(p.get("channel") or "")
        if ref.startswith(("U", "W")):
            user = self.ws.users.get(ref)
            if user is None:
                raise _ApiError("channel_not_found")
            if user.deleted:
                raise _ApiError("user_disabled")
            return self.ws.im_with(user.id)
        ch = self.ws.channels.get(ref) or next(
            (c for c in self.ws.channels.values() if c.name and c.name == ref.lstrip("#")), None)
        if ch is None or (ch.is_private and uid not in ch.members):
            raise _ApiError("channel_not_found")
        if ch.is_archived:
            raise _ApiError("is_archived")
        if not ch.is_im and uid not in ch.members:
            raise _ApiError("not_in_channel")
        return ch

    def _m_chat_postMessage(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "chat:write")
        blocks = _json_field(p.get("blocks"))
        text = str(p.get("text") or "")
        if not text and not blocks:
            raise _ApiError("no_text")
        if blocks is not None and len(blocks) > 50:
            raise _ApiError("invalid_blocks")
        ch = self._target(p, uid)
        thread_ts = p.get("thread_ts") or None
        user = self.ws.users[uid]
        msg = self.ws.post(ch, uid, text[:40000], blocks=blocks, thread=thread_ts,
                           bot_id=user.bot_id)
        posted = Posted(channel=ch.id, ts=msg.ts, text=msg.text, blocks=blocks,
                        thread_ts=thread_ts)
        with self._lock:
            self.posted.append(posted)
        return {"channel": ch.id, "ts": msg.ts, "message": msg.to_json(self.ws)}

    def _m_chat_postEphemeral(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "chat:write")
        ch = self._target(p, uid)
        target = str(p.get("user") or "")
        if target not in ch.members:
            raise _ApiError("user_not_in_channel")
        ts = f"{time.time():.6f}"
        with self._lock:
            self.posted.append(Posted(channel=ch.id, ts=ts, text=str(p.get("text") or ""),
                                      blocks=_json_field(p.get("blocks")),
                                      thread_ts=p.get("thread_ts") or None, user=target,
                                      ephemeral=True))
        return {"message_ts": ts}

    def _m_chat_update(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "chat:write")
        ch = self._get_channel(p, uid)
        ts = str(p.get("ts") or "")
        msg = self.ws.find(ch.id, ts)
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.user != uid and not (self.ws.users[uid].is_admin and not self._is_bot_token(token)):
            raise _ApiError("cant_update_message")
        blocks = _json_field(p.get("blocks"))
        if "text" in p:
            msg.text = str(p.get("text") or "")
        if blocks is not None:
            msg.blocks = blocks
        msg.edited = {"user": uid, "ts": f"{time.time():.6f}"}
        with self._lock:
            for posted in self.posted:
                if posted.channel == ch.id and posted.ts == ts:
                    posted.updates.append({"text": posted.text, "blocks": posted.blocks})
                    posted.text = msg.text
                    if blocks is not None:
                        posted.blocks = blocks
        return {"channel": ch.id, "ts": ts, "text": msg.text, "message": msg.to_json(self.ws)}

    def _m_chat_delete(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "chat:write")
        ch = self._get_channel(p, uid)
        ts = str(p.get("ts") or "")
        msg = self.ws.find(ch.id, ts)
        if msg is None:
            raise _ApiError("message_not_found")
        # a bot token deletes only the bot's own messages; an admin's user token any message
        if msg.user != uid and not (self.ws.users[uid].is_admin and not self._is_bot_token(token)):
            raise _ApiError("cant_delete_message")
        self.ws._remove(ch, msg)
        with self._lock:
            for posted in self.posted:
                if posted.channel == ch.id and posted.ts == ts:
                    posted.deleted = True
        return {"channel": ch.id, "ts": ts}

    def _m_chat_getPermalink(self, p: JSON, uid: str, token: str | None) -> JSON:
        ch = self._get_channel(p, uid)
        ts = str(p.get("message_ts") or "")
        msg = self.ws.find(ch.id, ts)
        if msg is None:
            raise _ApiError("message_not_found")
        link = f"https://{self.ws.domain}.slack.com/archives/{ch.id}/p{ts.replace('.', '')}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _m_files_info(self, p: JSON, uid: str, token: str | None) -> JSON:
        self._need(token, "files:read")
        f = self.ws.files.get(str(p.get("file") or ""))
        if f is None:
            raise _ApiError("file_not_found")
        return {"file": f.to_json(self.ws), "comments": [],
                "response_metadata": {"next_cursor": ""}}

    def _use_trigger(self, p: JSON) -> None:
        trigger = str(p.get("trigger_id") or "")
        issued = self.trigger_ids.pop(trigger, None)
        if issued is None:
            raise _ApiError("invalid_trigger_id" if trigger not in self._used else
                            "exchanged_trigger_id")
        self._used.add(trigger)
        if time.monotonic() - issued > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")

    def _store_view(self, view: JSON, view_id: str | None = None, **extra: Any) -> JSON:
        if len(view.get("blocks", [])) > 100:
            raise _ApiError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"]})
        view_id = view_id or f"V{next(self._view_ids):08d}"
        stored = {**view, "id": view_id, "team_id": self.ws.team_id, "hash": f"h{time.time_ns()}",
                  "state": {"values": {}}, **extra}
        self.views[view_id] = stored
        return stored

    def _m_views_open(self, p: JSON, uid: str, token: str | None) -> JSON:
        view = _json_field(p.get("view"))
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        self._use_trigger(p)
        return {"view": self._store_view(view)}

    def _m_views_push(self, p: JSON, uid: str, token: str | None) -> JSON:
        return self._m_views_open(p, uid, token)

    def _m_views_update(self, p: JSON, uid: str, token: str | None) -> JSON:
        view = _json_field(p.get("view"))
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        view_id = str(p.get("view_id") or "")
        if not view_id and p.get("external_id"):
            view_id = next((k for k, v in self.views.items()
                            if v.get("external_id") == p["external_id"]), "")
        old = self.views.get(view_id)
        if old is None:
            raise _ApiError("not_found")
        if p.get("hash") and p["hash"] != old["hash"]:
            raise _ApiError("hash_conflict")
        return {"view": self._store_view(view, view_id)}

    def _m_views_publish(self, p: JSON, uid: str, token: str | None) -> JSON:
        view = _json_field(p.get("view"))
        user_id = str(p.get("user_id") or "")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise _ApiError("invalid_arguments")
        if user_id not in self.ws.users:
            raise _ApiError("user_not_found")
        old = self.home.get(user_id)
        if p.get("hash") and old is not None and p["hash"] != old["hash"]:
            raise _ApiError("hash_conflict")
        stored = self._store_view(view, old["id"] if old else None)
        self.home[user_id] = stored
        return {"view": stored}


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def _json_field(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError("invalid_arguments") from None
    return value


def _make_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _cursor_ts(cursor: Any) -> float | None:
    if not cursor:
        return None
    try:
        kind, _, value = base64.b64decode(str(cursor)).decode().partition(":")
        if kind != "next_ts":
            raise ValueError(kind)
        return float(value)
    except (ValueError, UnicodeDecodeError):
        raise _ApiError("invalid_cursor") from None


def _page(items: list[Any], p: JSON, *, default: int, maximum: int) -> tuple[list[Any], str]:
    """Offset cursors for lists (conversations.list, members, users.list)."""
    try:
        limit = max(1, min(int(p.get("limit") or default), maximum))
    except ValueError:
        raise _ApiError("invalid_limit") from None
    start = 0
    if p.get("cursor"):
        try:
            kind, _, value = base64.b64decode(str(p["cursor"])).decode().partition(":")
            if kind != "offset":
                raise ValueError(kind)
            start = int(value)
        except (ValueError, UnicodeDecodeError):
            raise _ApiError("invalid_cursor") from None
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""


class _Handler(BaseHTTPRequestHandler):
    owner: SlackStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _token(self, params: JSON) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if auth.lower().startswith("basic "):  # oauth.v2.access: client id and secret
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            params.setdefault("client_id", client_id)
            params.setdefault("client_secret", client_secret)
        token = params.pop("token", None)
        return str(token) if token else None

    def _params(self) -> JSON:
        parsed = urllib.parse.urlsplit(self.path)
        params: JSON = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        if raw:
            if "json" in ctype or raw.lstrip().startswith(b"{"):
                params.update(json.loads(raw))
            elif "multipart" not in ctype:
                params.update({k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()})
        return params

    def _send(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] = {}) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/files-pri/"):
            self._params()
            auth = self.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            status, body, ctype = self.owner.download(path, token)
            self._send(status, body, ctype)
            return
        if path in ("/actions/response", "/commands/response"):
            with self.owner._lock:
                self.owner.responses.append((path, self._params()))
            self._send(200, b"ok", "text/plain")
            return
        if not path.startswith("/api/"):
            self._send(404, b"not found", "text/plain")
            return
        params = self._params()
        token = self._token(params)
        status, body, headers = self.owner.handle(path[len("/api/"):], params, token)
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

    do_GET = _dispatch
    do_POST = _dispatch


# ---------------------------------------------------------------------------------------------
# Signed requests to the app


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class SignedSender:
    """Sends requests to an app the way Slack does: v0 HMAC signature and timestamp."""

    def __init__(self, url: str, signing_secret: str, slack: SlackStandin | None = None,
                 *, team_id: str | None = None, api_app_id: str = "A0STANDIN") -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.slack = slack
        self.team_id = team_id or (slack.ws.team_id if slack else "T0STANDIN")
        self.api_app_id = api_app_id
        self._event_ids = itertools.count(1)

    def sign(self, body: bytes, timestamp: int) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def send(self, body: bytes, content_type: str, *, timestamp: int | None = None,
             signature: str | None = None, headers: Mapping[str, str] | None = None,
             timeout: float = 10.0) -> Response:
        ts = int(time.time()) if timestamp is None else timestamp
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or self.sign(body, ts),
            **(headers or {}),
        }
        request = urllib.request.Request(self.url, data=body, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return Response(reply.status, reply.read().decode(), dict(reply.headers))
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read().decode(), dict(error.headers))

    def envelope(self, event: JSON, event_id: str | None = None) -> JSON:
        bot_id = self.slack.ws.bot.id if self.slack else "U0BOT"
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._event_ids):08d}{time.time_ns() % 10**6:06d}",
            "event_time": int(float(event.get("event_ts") or event.get("ts") or time.time())),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id,
                                "user_id": bot_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": "4-standin",
        }

    def event(self, event: JSON, *, event_id: str | None = None, retry_num: int | None = None,
              retry_reason: str = "http_timeout", **kwargs: Any) -> Response:
        """POST an event_callback envelope; returns the app's answer."""
        body = json.dumps(self.envelope(event, event_id)).encode()
        headers = dict(kwargs.pop("headers", {}) or {})
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return self.send(body, "application/json", headers=headers, **kwargs)

    def event_body(self, event: JSON, event_id: str) -> bytes:
        return json.dumps(self.envelope(event, event_id)).encode()

    def url_verification(self, challenge: str, **kwargs: Any) -> Response:
        body = json.dumps({"token": "legacy-verification-token", "challenge": challenge,
                           "type": "url_verification"}).encode()
        return self.send(body, "application/json", **kwargs)

    def _interactive(self, payload: JSON, **kwargs: Any) -> Response:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.send(body, "application/x-www-form-urlencoded", **kwargs)

    def _user(self, user_id: str) -> JSON:
        name = user_id
        if self.slack and user_id in self.slack.ws.users:
            name = self.slack.ws.users[user_id].name
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _trigger(self) -> str:
        return self.slack.issue_trigger_id() if self.slack else f"{int(time.time())}.0.standin"

    def block_actions(self, user: User | str, *, action_id: str, value: str = "",
                      block_id: str = "b", channel: str | None = None,
                      message: JSON | None = None, view: JSON | None = None,
                      action_type: str = "button", selected_option: JSON | None = None,
                      **kwargs: Any) -> Response:
        """A button press (or select) by `user`, in a message (channel + message) or a view."""
        uid = _uid(user)
        action: JSON = {"action_id": action_id, "block_id": block_id, "type": action_type,
                        "action_ts": f"{time.time():.6f}"}
        if action_type == "button":
            action["value"] = value
            action["text"] = {"type": "plain_text", "text": action_id}
        if selected_option is not None:
            action["selected_option"] = selected_option
        payload: JSON = {
            "type": "block_actions",
            "user": self._user(uid),
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "team": {"id": self.team_id, "domain": self.slack.ws.domain if self.slack else "x"},
            "trigger_id": self._trigger(),
            "response_url": f"{self.slack.url if self.slack else 'http://127.0.0.1'}"
                            "/actions/response",
            "actions": [action],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "")}
            payload["view"] = view
        else:
            payload["container"] = {"type": "message", "message_ts": (message or {}).get("ts", ""),
                                    "channel_id": channel or "", "is_ephemeral": False}
            payload["channel"] = {"id": channel or "", "name": ""}
            payload["message"] = message or {}
        return self._interactive(payload, **kwargs)

    def view_submission(self, user: User | str, *, callback_id: str,
                        values: Mapping[str, Mapping[str, JSON]] | None = None,
                        private_metadata: str = "", view_id: str = "V0STANDIN",
                        **kwargs: Any) -> Response:
        """A modal submitted by `user`; `values` is view.state.values: {block: {action: value}}."""
        payload: JSON = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.slack.ws.domain if self.slack else "x"},
            "user": self._user(_uid(user)),
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "trigger_id": self._trigger(),
            "view": {
                "id": view_id,
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": {k: dict(v) for k, v in (values or {}).items()}},
                "hash": "h",
                "title": {"type": "plain_text", "text": "LeakWatch"},
                "blocks": [],
            },
            "response_urls": [],
        }
        return self._interactive(payload, **kwargs)

    def slash_command(self, command: str, text: str = "", *, user: User | str,
                      channel: str = "", **kwargs: Any) -> Response:
        uid = _uid(user)
        fields = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "team_domain": self.slack.ws.domain if self.slack else "x",
            "channel_id": channel,
            "channel_name": "",
            "user_id": uid,
            "user_name": self._user(uid)["name"],
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "response_url": f"{self.slack.url if self.slack else 'http://127.0.0.1'}"
                            "/commands/response",
            "trigger_id": self._trigger(),
        }
        body = urllib.parse.urlencode(fields).encode()
        return self.send(body, "application/x-www-form-urlencoded", **kwargs)


def iter_posted_text(posted: Iterable[Posted]) -> Iterator[str]:
    """All visible text of posted messages: `text` and every text field in their blocks."""
    for p in posted:
        yield p.text
        yield from _block_texts(p.blocks or [])


def _block_texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _block_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _block_texts(item)
