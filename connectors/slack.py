"""Slack: the Web API poller, the message-to-Document code the real-time events share, and the
reader of workspace exports.

    source = SlackSource(settings.slack)              # slack_sdk WebClient on settings.api_url
    for unit in source.units():                       # channels the bot can read
        for document, cursor in source.documents(unit, stored_cursor):
            ...                                       # commit, then store `cursor`
    source.message_documents(channel_id, message)     # an Events API message -> Documents

Units are conversations: public channels (joined first when `join_public_channels` is set) and
private channels the bot was invited to (scopes channels:read, groups:read and their :history;
group DMs would need mpim:read, which app.yaml does not ask for). Archived channels are left out.

Documents: one per message (text and `blocks` rich text, Slack markup turned into what a person
reads), one per text-like file or snippet under `file_max_bytes`. Item ids are "C123:ts" and
"C123:ts:F456". Replies are read with conversations.replies when a new thread parent is seen.
Permalinks are built from the workspace URL that auth.test gives, so no call is spent on them.

Cursors. A unit's cursor is the ts of the newest message read ("1760000000.000100"). History
comes newest first, so while a channel is walked the cursor is "oldest/top/done": the window
starts after `oldest`, `top` is the newest ts of the window and everything from `done` up to
`top` is read. A crash resumes below `done`; the walk ends by storing `top`. An idle channel
costs one conversations.history call per poll.

Not read by polling: edits and deletions of messages already read, and new replies in threads
whose parent was read in an earlier poll. Real-time events cover those.

Errors (connectors/base.py): invalid_auth, token_revoked, missing_scope -> SourceAuthError;
not_in_channel, channel_not_found, is_archived -> UnitError; 429 beyond the retry handler's
patience, 5xx, dropped connections -> TransientSourceError. A bot token refused on
conversations.replies (Slack's docs say bot tokens may lack that permission on channels) falls
back to the admin user token when one is set, and otherwise skips that channel's replies with a
warning.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse

from connectors.base import (
    Document,
    Exposure,
    SourceAuthError,
    SourceKind,
    TransientSourceError,
    Unit,
    UnitError,
)

log = logging.getLogger(__name__)

JSON = dict[str, Any]

AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
     "missing_scope", "no_permission", "team_access_not_granted", "not_allowed_token_type"}
)  # fmt: skip
UNIT_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "method_not_supported_for_channel_type",
     "invalid_cursor", "invalid_ts_oldest", "invalid_ts_latest"}
)  # fmt: skip
CHANNEL_FACTS_TTL = 3600.0  # seconds: member counts and sharing change, but rarely
# Errors of conversations.replies that mean "this token may not read threads here".
REPLIES_REFUSED = frozenset({"missing_scope", "not_allowed_token_type", "no_permission"})
# Messages with these subtypes carry no text a person wrote.
SKIPPED_SUBTYPES = frozenset(
    {"channel_join", "channel_leave", "channel_archive", "channel_unarchive", "group_join",
     "group_leave", "channel_purpose", "channel_topic", "channel_name", "pinned_item",
     "unpinned_item", "message_deleted", "message_replied", "tombstone",
     "joiner_notification_for_inviter"}
)  # fmt: skip
TEXT_MIMETYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml",
     "application/javascript", "application/x-sh", "application/x-shellscript",
     "application/toml", "application/x-python", "application/sql", "application/x-httpd-php",
     "application/x-ruby", "application/x-perl"}
)  # fmt: skip
TEXT_FILETYPES = frozenset(
    {"text", "javascript", "python", "shell", "json", "yaml", "xml", "html", "csv", "markdown",
     "go", "java", "kotlin", "ruby", "php", "sql", "toml", "ini", "dockerfile", "terraform",
     "typescript", "rust", "c", "cpp", "csharp", "swift", "diff", "powershell", "bash", "env",
     "plain", "properties", "groovy", "scala", "perl", "r", "lua", "config", "post"}
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Slack markup to the text a person reads
# Formats: docs.slack.dev/messaging/formatting-message-text (escapes, <…> links and mentions)
# and docs.slack.dev/reference/block-kit/blocks/rich-text-block (rich_text elements).

_ANGLE = re.compile(r"<([^<>\n]*)>")
_FENCE = re.compile(r"```\n?(.*?)\n?```", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def mrkdwn_to_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """`text` of a message as a person sees it: links, mentions, escapes and code resolved.

    A link whose label differs from its address keeps both ("label (url)"): a key can hide in
    either. `names` maps user and channel ids to names where known.
    """
    if not text:
        return ""
    names = names or {}
    if "<" in text:
        text = _ANGLE.sub(lambda m: _angle(m.group(1), names), text)
    if "`" in text:
        text = _FENCE.sub(lambda m: m.group(1), text)
        text = _INLINE_CODE.sub(lambda m: m.group(1), text)
    return html.unescape(text) if "&" in text else text


def _angle(inner: str, names: Mapping[str, str]) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        uid = target[1:]
        return "@" + (label or names.get(uid, uid))
    if target.startswith("#"):
        cid = target[1:]
        return "#" + (label or names.get(cid, cid))
    if target.startswith("!"):
        command = target[1:]
        if label:
            return label
        if command.startswith("subteam^"):
            return "@" + command.partition("^")[2]
        return "@" + command.split("^")[0]
    if not label:
        return target.removeprefix("mailto:")
    bare = target.split("://", 1)[-1].removeprefix("mailto:").rstrip("/")
    if bare in (label, label.rstrip("/")):
        return label
    return f"{label} ({target})"


def blocks_to_text(blocks: Sequence[Mapping[str, Any]] | None,
                   names: Mapping[str, str] | None = None) -> str:
    """The text of Block Kit blocks: rich_text from people, section/context/header from apps."""
    if not blocks or not isinstance(blocks, list | tuple):
        return ""
    names = names or {}
    parts: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):  # exports and events are untrusted JSON
            continue
        kind = block.get("type")
        if kind == "rich_text":
            parts.append("".join(_rich(e, names) for e in _list(block.get("elements"))))
        elif kind in ("section", "header", "context", "markdown"):
            parts.extend(_block_strings(block, names))
    return "\n".join(p.strip("\n") for p in parts if p.strip())


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _rich(element: Any, names: Mapping[str, str]) -> str:
    if not isinstance(element, Mapping):
        return ""
    kind = element.get("type")
    children = _list(element.get("elements"))
    if kind == "rich_text_list":
        return "\n".join(_rich(e, names) for e in children) + "\n"
    if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
        body = "".join(_rich(e, names) for e in children)
        return body + ("\n" if kind != "rich_text_section" else "")
    if kind == "text":
        return str(element.get("text") or "")
    if kind == "link":
        url, label = str(element.get("url") or ""), str(element.get("text") or "")
        if not label or label == url:
            return url
        return f"{label} ({url})"
    if kind == "user":
        uid = str(element.get("user_id") or "")
        return "@" + names.get(uid, uid)
    if kind == "channel":
        cid = str(element.get("channel_id") or "")
        return "#" + names.get(cid, cid)
    if kind == "usergroup":
        return "@" + str(element.get("usergroup_id") or "")
    if kind == "broadcast":
        return "@" + str(element.get("range") or "")
    if kind == "emoji":
        return ":" + str(element.get("name") or "") + ":"
    if kind == "date":
        return str(element.get("fallback") or element.get("timestamp") or "")
    if kind == "color":
        return str(element.get("value") or "")
    if children:
        return "".join(_rich(e, names) for e in children)
    return str(element.get("text") or "")


def _block_strings(node: Any, names: Mapping[str, str]) -> Iterator[str]:
    if isinstance(node, Mapping):
        text = node.get("text")
        if isinstance(text, str) and node.get("type") in ("mrkdwn", "plain_text", "markdown"):
            yield mrkdwn_to_text(text, names) if node.get("type") != "plain_text" else text
        for key, value in node.items():
            if key != "text" or not isinstance(value, str):
                yield from _block_strings(value, names)
    elif isinstance(node, list):
        for item in node:
            yield from _block_strings(item, names)


def message_text(message: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """What a person reads in a message: `text`, plus its blocks when they say more."""
    text = mrkdwn_to_text(str(message.get("text") or ""), names)
    rich = blocks_to_text(message.get("blocks"), names)
    if not rich or _squash(rich) == _squash(text) or _squash(rich) in _squash(text):
        return text
    if not text or _squash(text) in _squash(rich):
        return rich
    return text + "\n" + rich


def _squash(text: str) -> str:
    return "".join(text.split())


# ---------------------------------------------------------------------------------------------
# Messages to Documents (shared by the poller, the events and the export reader)


@dataclass(frozen=True)
class ChannelFacts:  # not slotted: `exposure` is cached on the instance
    """What the Documents of one conversation share."""

    id: str
    name: str
    is_private: bool = False
    is_external: bool = False
    is_archived: bool = False
    is_member: bool = True
    members: int | None = None
    is_im: bool = False

    @property
    def unit_name(self) -> str:
        return self.name if self.is_im or not self.name else "#" + self.name

    @functools.cached_property
    def exposure(self) -> Exposure:
        return Exposure(audience=self.members, is_public=not self.is_private and not self.is_im,
                        is_external=self.is_external)

    @classmethod
    def from_api(cls, channel: Mapping[str, Any]) -> ChannelFacts:
        is_im = bool(channel.get("is_im"))
        members = channel.get("num_members")
        return cls(
            id=str(channel["id"]),
            name=str(channel.get("name") or channel.get("user") or channel["id"]),
            is_private=bool(channel.get("is_private") or channel.get("is_group")
                            or channel.get("is_mpim") or is_im),
            is_external=bool(channel.get("is_ext_shared")),
            is_archived=bool(channel.get("is_archived")),
            is_member=bool(channel.get("is_member", True)),
            members=int(members) if isinstance(members, int) else (2 if is_im else None),
            is_im=is_im,
        )


def item_id(channel: str, ts: str, file_id: str | None = None) -> str:
    """The stable id of a message ("C1:ts") or of a file shared in it ("C1:ts:F1")."""
    return f"{channel}:{ts}" if file_id is None else f"{channel}:{ts}:{file_id}"


def permalink(base_url: str, channel: str, ts: str, thread_ts: str | None = None) -> str | None:
    """https://<domain>.slack.com/archives/C…/p<ts without dot>, as chat.getPermalink gives."""
    if not base_url:
        return None
    link = f"{base_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel}"
    return link


def ts_datetime(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def is_bot_message(message: Mapping[str, Any]) -> bool:
    return bool(message.get("bot_id")) or message.get("subtype") == "bot_message"


def is_text_file(file: Mapping[str, Any]) -> bool:
    """A file worth reading as text: a snippet, or text by its MIME type or Slack filetype."""
    if file.get("mode") in ("tombstone", "external", "hidden_by_limit"):
        return False
    if file.get("mode") == "snippet":
        return True
    mimetype = str(file.get("mimetype") or "").split(";")[0].strip().lower()
    if mimetype.startswith("text/") or mimetype in TEXT_MIMETYPES:
        return True
    return str(file.get("filetype") or "").lower() in TEXT_FILETYPES and not mimetype.startswith(
        ("image/", "video/", "audio/", "application/pdf", "application/zip"))


class FileReader(Protocol):
    def __call__(self, file: Mapping[str, Any]) -> str | None: ...


@dataclass
class MessageReader:
    """Turns one message into Documents; the poller, the events and the export use it."""

    workspace: str
    base_url: str  # https://<domain>.slack.com/, for permalinks
    read_file: FileReader | None = None
    names: Mapping[str, str] = field(default_factory=dict)

    def documents(self, channel: ChannelFacts, message: Mapping[str, Any],
                  extra: Mapping[str, str] | None = None) -> list[Document]:
        ts = str(message.get("ts") or "")
        if not ts:
            return []
        thread_ts = message.get("thread_ts")
        author = message.get("user") or message.get("bot_id")
        common: dict[str, Any] = dict(
            source="slack",
            workspace=self.workspace,
            unit=channel.id,
            unit_name=channel.unit_name,
            author=str(author) if author else None,
            posted_at=ts_datetime(ts),
            exposure=channel.exposure,
            permalink=permalink(self.base_url, channel.id, ts,
                                str(thread_ts) if thread_ts else None),
        )
        facts = {"ts": ts, **({"thread_ts": str(thread_ts)} if thread_ts else {}), **(extra or {})}
        text = message_text(message, self.names)
        documents = [Document(item_id=item_id(channel.id, ts), text=text, extra=facts, **common)]
        for file in message.get("files") or []:
            if not isinstance(file, Mapping) or not file.get("id"):
                continue
            content = self.read_file(file) if self.read_file else _export_file_text(file)
            if content is None:
                continue
            documents.append(Document(
                item_id=item_id(channel.id, ts, str(file["id"])),
                text=content,
                title=str(file.get("title") or file.get("name") or ""),
                extra={**facts, "file_id": str(file["id"])},
                **common,
            ))
        return documents


def _export_file_text(file: Mapping[str, Any]) -> str | None:
    """In an export, a file is its metadata: a snippet's preview and its links, whose `t=`
    parameter is itself a token."""
    parts = [str(file.get(k) or "") for k in ("preview", "url_private", "url_private_download")]
    text = "\n".join(p for p in parts if p)
    return text or None


# ---------------------------------------------------------------------------------------------
# The Web API poller


class SlackSourceSettings(Protocol):
    """What the connector reads of bot.config.SlackSettings (connectors import only base)."""

    @property
    def bot_token(self) -> str: ...
    @property
    def admin_token(self) -> str: ...
    @property
    def api_url(self) -> str: ...
    @property
    def history_page_size(self) -> int: ...
    @property
    def history_pace_seconds(self) -> float: ...
    @property
    def file_max_bytes(self) -> int: ...
    @property
    def join_public_channels(self) -> bool: ...
    @property
    def scan_bot_messages(self) -> bool: ...


def build_client(settings: SlackSourceSettings, token: str | None = None) -> WebClient:
    """A WebClient that waits out 429 + Retry-After and retries dropped connections and 5xx."""
    return WebClient(
        token=token or settings.bot_token,
        base_url=settings.api_url,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=3),
            RateLimitErrorRetryHandler(max_retry_count=8),
            ServerErrorRetryHandler(max_retry_count=3),
        ],
    )


@dataclass
class SlackSource:
    """The Slack connector (connectors.base.Source)."""

    settings: SlackSourceSettings
    client: WebClient | None = None
    sleep: Callable[[float], None] = time.sleep
    kind: SourceKind = "slack"
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = build_client(self.settings)
        self._admin: WebClient | None = (
            build_client(self.settings, self.settings.admin_token)
            if self.settings.admin_token else None
        )
        self._identity: JSON | None = None
        self._channels: dict[str, tuple[ChannelFacts, float]] = {}  # id -> (facts, read at)
        self._no_replies: set[str] = set()
        self._last_history_call = 0.0
        self.page_size = self.settings.history_page_size
        self.pace = self.settings.history_pace_seconds
        self.file_max_bytes = self.settings.file_max_bytes
        self.join = self.settings.join_public_channels
        self.scan_bots = self.settings.scan_bot_messages

    @property
    def web(self) -> WebClient:
        assert self.client is not None
        return self.client

    # -- identity ---------------------------------------------------------------------------

    def identity(self) -> JSON:
        """auth.test, once: team id, bot user and bot id, and the workspace URL."""
        if self._identity is None:
            data = self._call("auth.test", None, self.web.auth_test).data
            self._identity = dict(data) if isinstance(data, dict) else {}
        return self._identity

    @property
    def workspace(self) -> str:
        return str(self.identity().get("team_id") or "")

    @property
    def bot_user_id(self) -> str:
        return str(self.identity().get("user_id") or "")

    @property
    def bot_id(self) -> str:
        return str(self.identity().get("bot_id") or "")

    def reader(self) -> MessageReader:
        return MessageReader(self.workspace, str(self.identity().get("url") or ""),
                             read_file=self.read_file)

    # -- units ------------------------------------------------------------------------------

    def units(self) -> Iterator[Unit]:
        cursor: str | None = None
        while True:
            page = self._call("conversations.list", None, self.web.conversations_list,
                              types="public_channel,private_channel",
                              exclude_archived=True, limit=200, cursor=cursor)
            for raw in page.get("channels") or []:
                facts = ChannelFacts.from_api(raw)
                if not facts.is_member:
                    if facts.is_private or not self.join or not self._join(facts):
                        continue
                    facts = dataclasses.replace(facts, is_member=True)
                self._channels[facts.id] = (facts, time.monotonic())
                yield Unit(facts.id, facts.unit_name)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    def _join(self, facts: ChannelFacts) -> bool:
        try:
            self._call("conversations.join", facts.id, self.web.conversations_join,
                       channel=facts.id)
            return True
        except (UnitError, SourceAuthError) as error:
            self.problems.append(f"could not join #{facts.name}: {error}")
            log.warning("could not join %s: %s", facts.id, error)
            return False

    def channel(self, channel_id: str) -> ChannelFacts:
        """The facts of a channel: from a listing or conversations.info in the last hour."""
        known = self._channels.get(channel_id)
        if known is not None and time.monotonic() - known[1] < CHANNEL_FACTS_TTL:
            return known[0]
        info = self._call("conversations.info", channel_id, self.web.conversations_info,
                          channel=channel_id, include_num_members=True)
        facts = ChannelFacts.from_api(info["channel"])
        self._channels[channel_id] = (facts, time.monotonic())
        return facts

    def forget_channels(self) -> None:
        """Drop what is known of channels (member counts, archived); the next read asks Slack."""
        self._channels.clear()

    # -- documents --------------------------------------------------------------------------

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        facts = self.channel(unit.id)
        if facts.is_archived:
            raise UnitError(unit.id, "the channel is archived")
        walk = Walk.parse(cursor)
        reader = self.reader()
        pending: Document | None = None
        pending_cursor = str(cursor) if cursor else None
        for message in self._history(unit.id, walk):
            ts = str(message["ts"])
            if walk.top is None:
                walk.top = ts
            for document in self._message_and_thread(reader, facts, message):
                if pending is not None:
                    yield pending, pending_cursor
                pending = document
            walk.done = ts
            pending_cursor = walk.encode()
        if walk.top is None:
            return  # nothing new: the cursor stays
        final = walk.top
        if pending is not None:
            yield pending, final
        else:
            yield self._marker(facts, final), final

    def _marker(self, facts: ChannelFacts, ts: str) -> Document:
        """An empty Document that only carries a cursor (the newest messages had no text)."""
        # its own item id: an empty text must not read as "the message no longer holds a key"
        return Document(source="slack", workspace=self.workspace, unit=facts.id,
                        unit_name=facts.unit_name, item_id=item_id(facts.id, ts) + ":cursor",
                        text="",
                        exposure=facts.exposure, extra={"ts": ts, "cursor_only": "1"})

    def _history(self, channel: str, walk: Walk) -> Iterator[Mapping[str, Any]]:
        page_cursor: str | None = None
        latest = walk.done  # resuming: below the last message read
        while True:
            args: JSON = {"channel": channel, "limit": self.page_size}
            if walk.oldest:
                args["oldest"] = walk.oldest
            if latest:
                args["latest"] = latest
            if page_cursor:
                args["cursor"] = page_cursor
            page = self._paced("conversations.history", channel,
                               self.web.conversations_history, **args)
            yield from page.get("messages") or []
            page_cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page_cursor or not page.get("has_more", True):
                return

    def _message_and_thread(self, reader: MessageReader, facts: ChannelFacts,
                            message: Mapping[str, Any]) -> Iterator[Document]:
        if self._is_scanned(message):
            yield from reader.documents(facts, message)
        ts = str(message.get("ts"))
        if message.get("reply_count") and message.get("thread_ts") in (None, ts):
            for reply in self._replies(facts.id, ts):
                if reply.get("ts") == ts or reply.get("subtype") == "thread_broadcast":
                    continue  # the parent, and broadcasts that history already gave
                if self._is_scanned(reply):
                    yield from reader.documents(facts, reply)

    def _is_scanned(self, message: Mapping[str, Any]) -> bool:
        if message.get("subtype") in SKIPPED_SUBTYPES:
            return False
        identity = self.identity()
        if message.get("user") and message.get("user") == identity.get("user_id"):
            return False
        if message.get("bot_id") and message.get("bot_id") == identity.get("bot_id"):
            return False
        return self.scan_bots or not is_bot_message(message)

    def _replies(self, channel: str, ts: str) -> Iterator[Mapping[str, Any]]:
        if channel in self._no_replies:
            return
        client = self.web
        page_cursor: str | None = None
        while True:
            try:
                page = self._paced("conversations.replies", channel, client.conversations_replies,
                                   channel=channel, ts=ts, limit=self.page_size,
                                   cursor=page_cursor)
            except SourceAuthError as refused:
                if self._admin is not None and client is not self._admin:
                    client = self._admin
                    continue
                self._no_replies.add(channel)
                self.problems.append(f"{channel}: thread replies not readable: {refused}")
                log.warning("thread replies in %s not readable with this token: %s", channel,
                            refused)
                return
            except UnitError as error:
                if "thread_not_found" in str(error):
                    return
                raise
            yield from page.get("messages") or []
            page_cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page_cursor or not page.get("has_more", True):
                return

    def message_documents(self, channel_id: str, message: Mapping[str, Any]) -> list[Document]:
        """The Documents of one message from an event (the same code the poller runs).

        Messages the bot ignores (its own, other bots' unless configured, joins) give none.
        """
        if not self._is_scanned(message):
            return []
        return self.reader().documents(self.channel(channel_id), message)

    # -- files ------------------------------------------------------------------------------

    def read_file(self, file: Mapping[str, Any]) -> str | None:
        """A text file's content, or None (not text, too big, or not readable)."""
        if file.get("file_access") == "check_file_info":
            try:
                file = self._call("files.info", None, self.web.files_info,
                                  file=str(file["id"]))["file"]
            except (UnitError, SourceAuthError) as error:
                self.problems.append(f"file {file.get('id')}: {error}")
                return None
        if not is_text_file(file):
            return None
        size = file.get("size")
        if isinstance(size, int) and size > self.file_max_bytes:
            return None
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not url or not self._is_slack_url(url):
            return None
        auth = {"Authorization": f"Bearer {self.web.token}"}
        request = urllib.request.Request(url, headers=auth)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                ctype = str(answer.headers.get("Content-Type") or "").lower()
                data = answer.read(self.file_max_bytes + 1)
        except (urllib.error.URLError, OSError) as error:
            self.problems.append(f"file {file.get('id')}: download failed: {error}")
            return None
        expected_html = "html" in str(file.get("mimetype") or file.get("filetype") or "")
        if ctype.startswith("text/html") and not expected_html:
            # a missing or refused token gets Slack's login page with status 200
            self.problems.append(f"file {file.get('id')}: Slack answered with a login page "
                                 "(is files:read granted?)")
            return None
        if len(data) > self.file_max_bytes:
            return None
        return bytes(data).decode("utf-8", "replace")

    def _is_slack_url(self, url: str) -> bool:
        """The token goes only to Slack's own hosts (or the configured API host)."""
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        api_host = (urllib.parse.urlsplit(self.settings.api_url).hostname or "").lower()
        return host == api_host or host == "slack.com" or host.endswith(".slack.com")

    # -- calls ------------------------------------------------------------------------------

    def _paced(self, method: str, unit: str | None, call: Callable[..., SlackResponse],
               **args: Any) -> SlackResponse:
        if self.pace > 0:
            wait = self._last_history_call + self.pace - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last_history_call = time.monotonic()
        return self._call(method, unit, call, **args)

    def _call(self, method: str, unit: str | None, call: Callable[..., SlackResponse],
              **args: Any) -> SlackResponse:
        """Call a Web API method; errors become the SourceError of `unit` (a channel id)."""
        try:
            return call(**{k: v for k, v in args.items() if v is not None})
        except SlackApiError as error:
            raise _translate(method, unit, error) from None
        except OSError as error:  # URLError, timeouts, refused and dropped connections
            raise TransientSourceError(f"{method}: {type(error).__name__}: {error}") from None


def _translate(method: str, channel: str | None, error: SlackApiError) -> Exception:
    response = error.response
    status = getattr(response, "status_code", 200)
    code = str(response.get("error") or "") if hasattr(response, "get") else ""
    if status == 429 or code in ("ratelimited", "rate_limited"):
        return TransientSourceError(f"{method}: rate limited beyond the retry budget")
    if status >= 500:
        return TransientSourceError(f"{method}: Slack answered HTTP {status}")
    if code in UNIT_ERRORS and channel:
        return UnitError(channel, code)
    if code == "thread_not_found" and channel:
        return UnitError(channel, code)
    if code in AUTH_ERRORS:
        needed = response.get("needed") if hasattr(response, "get") else None
        return SourceAuthError(f"{method}: {code}" + (f" (needs {needed})" if needed else ""))
    if channel:
        return UnitError(channel, f"{method}: {code or status}")
    return TransientSourceError(f"{method}: {code or status}")


@dataclass
class Walk:
    """A unit's cursor: "oldest" when idle, "oldest/top/done" while a walk is under way."""

    oldest: str | None = None
    top: str | None = None
    done: str | None = None

    @classmethod
    def parse(cls, cursor: str | None) -> Walk:
        if not cursor:
            return cls()
        parts = cursor.split("/")
        if len(parts) == 3:
            return cls(parts[0] or None, parts[1], parts[2])
        return cls(parts[0] or None)

    def encode(self) -> str:
        return f"{self.oldest or ''}/{self.top}/{self.done}"


# ---------------------------------------------------------------------------------------------
# Workspace exports: the zip (or its unpacked folder) an admin downloads
# Layout: slack.com/help/articles/220556107 ; channels.json, users.json, groups.json, mpims.json,
# dms.json, and one folder per conversation with one YYYY-MM-DD.json array per day.

_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
_CONVERSATION_LISTS = (("channels.json", False), ("groups.json", True), ("mpims.json", True),
                       ("dms.json", True))


def looks_like_archive(path: Path) -> bool:
    """A Slack export: a zip or folder with channels.json or users.json beside day files."""
    try:
        if path.is_dir():
            return (path / "channels.json").is_file() or (
                (path / "users.json").is_file() and any(path.glob("*/????-??-??.json")))
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = {PurePosixPath(n).name for n in archive.namelist()[:10_000]}
                return "channels.json" in names or (
                    "users.json" in names and any(_DAY_FILE.match(n) for n in names))
    except OSError:
        return False
    return False


class _Tree(Protocol):
    def names(self) -> Iterable[str]: ...
    def open(self, name: str) -> IO[bytes]: ...


class _Folder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> Iterable[str]:
        for p in sorted(self.root.rglob("*.json")):
            yield p.relative_to(self.root).as_posix()

    def open(self, name: str) -> IO[bytes]:
        return (self.root / name).open("rb")


class _Zip:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def names(self) -> Iterable[str]:
        return sorted(n for n in self.archive.namelist() if n.endswith(".json"))

    def open(self, name: str) -> IO[bytes]:
        return self.archive.open(name)


def read_archive(path: Path) -> Iterator[Document]:
    """Every message (and file link) of a workspace export, one day file at a time."""
    if path.is_dir():
        yield from _read_tree(_Folder(path))
        return
    with zipfile.ZipFile(path) as archive:
        yield from _read_tree(_Zip(archive))


# One day of one channel is small whatever the export's size; a member that expands beyond these
# (a zip bomb, a damaged file) is skipped instead of being read into memory.
EXPORT_DAY_MAX_BYTES = 32 * 1024 * 1024
EXPORT_LIST_MAX_BYTES = 512 * 1024 * 1024  # users.json, channels.json of a large organisation


def _load(tree: _Tree, name: str, limit: int = EXPORT_DAY_MAX_BYTES) -> Any:
    with tree.open(name) as raw:
        data = raw.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} expands beyond {limit // (1024 * 1024)} MB")
    return json.loads(data)


def _load_list(tree: _Tree, name: str) -> list[Any]:
    """users.json, channels.json…: a list, or nothing (with a warning) when it cannot be read."""
    try:
        value = _load(tree, name, EXPORT_LIST_MAX_BYTES)
    except (ValueError, UnicodeDecodeError) as error:
        log.warning("skipping unreadable export file %s: %s", name, error)
        return []
    return value if isinstance(value, list) else []


def _read_tree(tree: _Tree) -> Iterator[Document]:
    names = list(tree.names())
    roots = {str(PurePosixPath(n).parent) for n in names
             if PurePosixPath(n).name in ("channels.json", "users.json")}
    root = min(roots, key=len) if roots else "."
    prefix = "" if root == "." else root + "/"
    users: dict[str, str] = {}
    if prefix + "users.json" in names:
        for user in _load_list(tree, prefix + "users.json"):
            if isinstance(user, Mapping) and user.get("id"):
                users[str(user["id"])] = str(user.get("name") or user["id"])
    channels: dict[str, ChannelFacts] = {}  # by folder name
    for list_name, private in _CONVERSATION_LISTS:
        if prefix + list_name not in names:
            continue
        for raw in _load_list(tree, prefix + list_name):
            if not isinstance(raw, Mapping) or not raw.get("id"):
                continue
            members = raw.get("members")
            facts = ChannelFacts(
                id=str(raw["id"]), name=str(raw.get("name") or raw["id"]), is_private=private,
                is_archived=bool(raw.get("is_archived")),
                members=len(members) if isinstance(members, list) else None,
                is_im=list_name == "dms.json",
            )
            channels[str(raw.get("name") or raw["id"])] = facts
            channels.setdefault(str(raw["id"]), facts)
    names_map = {**users, **{c.id: c.name for c in channels.values()}}
    readers: dict[str, MessageReader] = {}
    for name in names:
        relative = name[len(prefix):] if name.startswith(prefix) else name
        parts = PurePosixPath(relative).parts
        if len(parts) != 2 or not _DAY_FILE.match(parts[1]):
            continue
        folder = parts[0]
        facts = channels.get(folder) or ChannelFacts(id=folder, name=folder)
        try:
            messages = _load(tree, name)
        except (ValueError, UnicodeDecodeError) as error:
            log.warning("skipping unreadable export file %s: %s", name, error)
            continue
        if not isinstance(messages, list):
            continue
        for message in messages:
            if not isinstance(message, Mapping) or str(message.get("subtype")) in SKIPPED_SUBTYPES:
                continue
            team = str(message.get("team") or "")
            reader = readers.get(team)
            if reader is None:
                reader = readers[team] = MessageReader(team, "", None, names_map)
            where = {"export_file": relative, "user": str(message.get("user") or "")}
            try:
                documents = list(reader.documents(facts, message, where))
            except (TypeError, ValueError, AttributeError, KeyError) as error:
                # a damaged message in an untrusted file: skip it, keep the rest of the export
                log.warning("skipping a malformed message in %s: %s", name,
                            type(error).__name__)
                continue
            yield from (document for document in documents if document.text)
