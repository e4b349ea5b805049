"""Email: IMAP mailboxes (read-only, incremental) and mbox, Maildir and .eml archives.

Every mail goes through the same parsing (connectors/mime.py) and becomes one `Document`:

    source="email", unit=folder or archive path, item_id=Message-ID (a hash of the headers
    when there is none), title=Subject, author and author_email=From address, posted_at=Date,
    exposure: the number of recipients and whether any is outside the company's domains.

IMAP reading never changes a mailbox: folders are opened with EXAMINE and mail is fetched with
BODY.PEEK[], which leaves \\Seen unset. The cursor of a folder is "uidvalidity:uid"; a changed
UIDVALIDITY (the folder was recreated, the server rebuilt) rescans it, and since the item id is
the Message-ID, mail seen before is the same occurrence and is not alerted twice.

Connections use implicit TLS (IMAP_SECURITY=ssl) or STARTTLS, verified against the system's
CAs (or SSL_CERT_FILE, or an `ssl_context`); plain IMAP only to a loopback address or with
IMAP_ALLOW_PLAIN. One connection is kept between polls and reopened when the server closed it.
A folder list of "*" reads every selectable folder.

Errors (see connectors/base.py): a refused login is `SourceAuthError`, a connection that fails
or drops mid-fetch is `TransientSourceError` (the next poll resumes from the committed cursor),
a folder that cannot be opened is `UnitError`. A mail that cannot be parsed is recorded in
`problems` and skipped, never fatal.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

from connectors.base import (
    Document,
    Exposure,
    FatalSourceError,
    SourceAuthError,
    SourceKind,
    TransientSourceError,
    Unit,
    UnitError,
)
from connectors.mime import (
    DEFAULT_ATTACHMENT_MAX_BYTES,
    MalformedMessage,
    addresses,
    header_text,
    message_date,
    message_id,
    message_text,
    parse_message,
)

log = logging.getLogger(__name__)

RECIPIENT_HEADERS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
DEFAULT_MESSAGE_MAX_BYTES = 25_000_000  # larger mails are read up to this many bytes
MAX_PROBLEMS = 1000


@dataclass(slots=True)
class Problem:
    """A mail or folder that was skipped, and why (never its content)."""

    unit: str
    item: str
    reason: str


def document_from_bytes(
    raw: bytes,
    *,
    unit: str,
    unit_name: str = "",
    company_domains: Sequence[str] = (),
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    permalink: str | None = None,
    received_at: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> Document:
    """Parse one mail into a Document; raises only `MalformedMessage`."""
    message = parse_message(raw)
    return document_from_message(
        message,
        unit=unit,
        unit_name=unit_name,
        company_domains=company_domains,
        attachment_max_bytes=attachment_max_bytes,
        permalink=permalink,
        received_at=received_at,
        extra=extra,
    )


def document_from_message(
    message: Message,
    *,
    unit: str,
    unit_name: str = "",
    company_domains: Sequence[str] = (),
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    permalink: str | None = None,
    received_at: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> Document:
    content = message_text(message, attachment_max_bytes=attachment_max_bytes)
    senders = addresses(message, "from") or addresses(message, "sender")
    sender = senders[0] if senders else None
    recipients = addresses(message, *RECIPIENT_HEADERS)
    facts = dict(extra or {})
    if content.skipped:
        facts["skipped"] = "; ".join(content.skipped)[:1000]
    return Document(
        source="email",
        unit=unit,
        unit_name=unit_name or unit,
        item_id=message_id(message),
        text=content.text,
        title=header_text(message, "subject")[:500],
        author=sender,
        author_email=sender,
        permalink=permalink,
        posted_at=message_date(message) or received_at,
        exposure=Exposure(
            audience=len(recipients),
            is_external=any(is_outside(address, company_domains) for address in recipients),
        ),
        extra=facts,
    )


def is_outside(address: str, company_domains: Sequence[str]) -> bool:
    """True if the address is in none of the company's domains (or their subdomains).

    With no company domains configured nothing counts as outside: there is nothing to compare.
    """
    if not company_domains:
        return False
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    return not any(
        domain == own or domain.endswith("." + own)
        for own in (d.strip().lstrip("@").lower() for d in company_domains)
    )


# ---------------------------------------------------------------------------------------------
# Archives: mbox files, Maildir folders, .eml files


def looks_like_archive(path: Path) -> bool:
    """True for an mbox file, a Maildir folder or an .eml file."""
    return _archive_kind(path) is not None


def _archive_kind(path: Path) -> str | None:
    try:
        if path.is_dir():
            return "maildir" if _is_maildir(path) else None
        if not path.is_file():
            return None
        if path.suffix.lower() == ".eml":
            return "eml"
        with path.open("rb") as handle:
            first = handle.readline(1024)
    except OSError:
        return None
    if path.suffix.lower() in (".mbox", ".mbx") and (not first or first.startswith(b"From ")):
        return "mbox"
    return "mbox" if _ENVELOPE.match(first) else None


# The mbox separator: "From ", the envelope sender, then a date with a weekday, a month, a day
# and a time: "Tue Nov  3 09:15:00 2026" (asctime), "Tue, 3 Nov 2026 09:15:00 +0000" (RFC 5322),
# "Thu Jan 05 10:00:00 +0000 2023". A body line such as "From me at 10:30" is no separator.
_DAY = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_ENVELOPE = re.compile(
    rb"From \S+ +" + _DAY + rb",? +(?:" + _MONTH + rb" +\d{1,2}|\d{1,2} +" + _MONTH + rb")"
    rb" .*\d{1,2}:\d\d"
)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def read_archive(
    path: Path,
    *,
    company_domains: Sequence[str] = (),
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    problems: list[Problem] | None = None,
) -> Iterator[Document]:
    """Yield one Document per mail in an mbox file, a Maildir folder or an .eml file.

    Streams: an mbox is read message by message, never whole. Unreadable mails are appended to
    `problems` (when given), logged, and skipped.
    """
    kind = _archive_kind(path)
    if kind is None:
        raise UnitError(str(path), "not an mbox file, Maildir folder or .eml file")
    unit = str(path)
    for label, raw in _archive_messages(path, kind):
        try:
            yield document_from_bytes(
                raw,
                unit=unit,
                unit_name=path.name,
                company_domains=company_domains,
                attachment_max_bytes=attachment_max_bytes,
                extra={"archive": unit, "message": label},
            )
        except MalformedMessage as error:
            _record(problems, Problem(unit, label, str(error)))


def _record(problems: list[Problem] | None, problem: Problem) -> None:
    log.warning("skipped mail %s in %s: %s", problem.item, problem.unit, problem.reason)
    if problems is not None:
        problems.append(problem)
        if len(problems) > MAX_PROBLEMS:  # a long-running poller keeps only the latest
            del problems[:-MAX_PROBLEMS]


def _archive_messages(path: Path, kind: str) -> Iterator[tuple[str, bytes]]:
    if kind == "eml":
        yield path.name, path.read_bytes()
    elif kind == "maildir":
        yield from maildir_messages(path)
    else:
        with path.open("rb") as handle:
            for number, raw in enumerate(mbox_messages(handle), start=1):
                yield f"#{number}", raw


def mbox_messages(handle: BinaryIO) -> Iterator[bytes]:
    """Split an mbox stream into raw mails, one at a time.

    A message starts at the "From " line on top of the file and at every later line that is a
    full envelope line (sender and date; see _ENVELOPE), whether or not an empty line comes
    before it, as some writers omit it. Escaped body lines (">From ", mboxrd and mboxo) lose one
    ">". Envelope lines are dropped.
    """
    lines: list[bytes] = []
    started = False
    for line in handle:
        is_first = not started and not lines
        if line.startswith(b"From ") and (is_first or _ENVELOPE.match(line)):
            if started or any(kept.strip() for kept in lines):
                yield _join_mbox(lines)
            lines = []
            started = True
            continue
        if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
            line = line[1:]
        lines.append(line)
    if started or any(kept.strip() for kept in lines):
        yield _join_mbox(lines)


def _join_mbox(lines: list[bytes]) -> bytes:
    # The empty line before the next separator belongs to the mbox format, not to the mail.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def maildir_messages(root: Path) -> Iterator[tuple[str, bytes]]:
    """Mails in a Maildir folder (new/ and cur/) and its Maildir++ subfolders (".Name")."""
    folders = [root]
    with contextlib.suppress(OSError):
        folders += sorted(
            child for child in root.iterdir() if child.name.startswith(".") and _is_maildir(child)
        )
    for folder in folders:
        for sub in ("cur", "new"):
            directory = folder / sub
            try:
                names = sorted(entry.name for entry in os.scandir(directory) if entry.is_file())
            except OSError:
                continue
            for name in names:
                if name.startswith("."):
                    continue
                try:
                    raw = (directory / name).read_bytes()
                except OSError:
                    continue  # delivered or moved while we read: gone from this folder
                yield str((directory / name).relative_to(root)), raw


# ---------------------------------------------------------------------------------------------
# IMAP


class ImapConfig(Protocol):
    """What ImapSource needs; bot.config.ImapSettings has these fields."""

    @property
    def host(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def security(self) -> str: ...
    @property
    def folders(self) -> tuple[str, ...]: ...
    @property
    def allow_plain(self) -> bool: ...
    @property
    def attachment_max_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Fetched:
    uid: int
    raw: bytes
    internal_date: datetime | None
    size: int | None  # the whole mail's size; more than len(raw) when it was cut at the cap


@dataclass(frozen=True)
class ImapCursor:
    """Where a folder was read up to: "uidvalidity:uid"."""

    uidvalidity: int
    uid: int

    def __str__(self) -> str:
        return f"{self.uidvalidity}:{self.uid}"

    @classmethod
    def parse(cls, value: str | None) -> ImapCursor | None:
        if not value:
            return None
        validity, _, uid = value.partition(":")
        if not (validity.isdigit() and uid.isdigit()):
            return None
        return cls(int(validity), int(uid))


@dataclass
class ImapSource:
    """A read-only IMAP account: each configured folder is a unit.

    `folders` may hold "*" to read every selectable folder of the account.
    """

    config: ImapConfig
    company_domains: Sequence[str] = ()
    ssl_context: ssl.SSLContext | None = None  # default: the system's trusted CAs
    batch_size: int = 100
    timeout: float = 60.0
    message_max_bytes: int = DEFAULT_MESSAGE_MAX_BYTES
    kind: SourceKind = "email"
    problems: list[Problem] = field(default_factory=list)
    _connection: imaplib.IMAP4 | None = field(default=None, init=False, repr=False)

    # -- the Source protocol

    def units(self) -> Iterator[Unit]:
        wanted = [folder for folder in self.config.folders if folder]
        if "*" not in wanted:
            for folder in wanted:
                yield Unit(id=folder, name=folder)
            return
        for folder in self.list_folders():
            yield Unit(id=folder, name=folder)

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        folder = unit.id
        reused = self._connection is not None
        connection = self._connect()
        try:
            validity, uidnext = self._examine(connection, folder)
        except TransientSourceError:
            if not reused:
                raise
            # A kept connection the server closed while idle (autologout): open a new one once.
            connection = self._connect()
            validity, uidnext = self._examine(connection, folder)
        previous = ImapCursor.parse(cursor)
        last_uid = previous.uid if previous and previous.uidvalidity == validity else 0
        if previous and previous.uidvalidity != validity:
            log.info("folder %s has a new UIDVALIDITY (%s): rescanning it", folder, validity)
        if uidnext is not None and uidnext <= last_uid + 1:
            return
        uids = self._new_uids(connection, folder, last_uid)
        skipped_to: int | None = None  # a trailing unreadable mail must still move the cursor
        for start in range(0, len(uids), self.batch_size):
            batch = uids[start : start + self.batch_size]
            for fetched in self._fetch(connection, folder, batch):
                uid = fetched.uid
                next_cursor = str(ImapCursor(validity, uid))
                facts = {"uid": str(uid), "uidvalidity": str(validity)}
                if fetched.size is not None and fetched.size > len(fetched.raw):
                    facts["truncated"] = f"first {len(fetched.raw)} of {fetched.size} bytes read"
                try:
                    document = document_from_bytes(
                        fetched.raw,
                        unit=folder,
                        unit_name=folder,
                        company_domains=self.company_domains,
                        attachment_max_bytes=self.config.attachment_max_bytes,
                        permalink=self.permalink(folder, validity, uid),
                        received_at=fetched.internal_date,
                        extra=facts,
                    )
                except MalformedMessage as error:
                    _record(self.problems, Problem(folder, f"uid {uid}", str(error)))
                    skipped_to = uid
                    continue
                skipped_to = None
                yield document, next_cursor
        if skipped_to is not None:
            # An empty document: nothing to scan, but the cursor passes the unreadable mail,
            # so it is not fetched and recorded again at every poll.
            placeholder = Document(
                source="email",
                unit=folder,
                unit_name=folder,
                item_id=f"unreadable:{validity}:{skipped_to}",
                text="",
                extra={"skipped": "unreadable mail"},
            )
            yield placeholder, str(ImapCursor(validity, skipped_to))

    # -- helpers a caller may use

    def list_folders(self) -> list[str]:
        """Every selectable folder of the account, decoded from modified UTF-7."""
        connection = self._connect()
        _typ, data = self._call(connection, "LIST", lambda: connection.list())
        folders: list[str] = []
        for line in data or []:
            if not isinstance(line, bytes):
                continue
            match = _LIST_LINE.match(line)
            if not match or b"\\noselect" in match["flags"].lower():
                continue
            name = match["name"]
            if name.startswith(b'"') and name.endswith(b'"'):
                name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
            folders.append(decode_mutf7(name))
        return folders

    def permalink(self, folder: str, uidvalidity: int, uid: int) -> str:
        """An RFC 5092 IMAP URL naming the mail."""
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        default_port = 993 if self.config.security == "ssl" else 143
        port = "" if self.config.port == default_port else f":{self.config.port}"
        return (
            f"imap://{quote(self.config.user, safe='')}@{host}{port}/{quote(folder, safe='/')}"
            f";UIDVALIDITY={uidvalidity}/;UID={uid}"
        )

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            connection.logout()

    def __enter__(self) -> ImapSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol conversation

    def _connect(self) -> imaplib.IMAP4:
        if self._connection is not None:
            return self._connection
        config = self.config
        security = config.security.lower()
        if security == "plain" and not (config.allow_plain or is_loopback(config.host)):
            raise FatalSourceError(
                f"IMAP_SECURITY=plain would send the password unencrypted to {config.host}: "
                "use ssl or starttls, or set IMAP_ALLOW_PLAIN=true"
            )
        if security not in ("ssl", "starttls", "plain"):
            raise FatalSourceError(
                f"IMAP_SECURITY must be ssl, starttls or plain, not {security!r}"
            )
        try:
            connection = self._open(security)
        except ssl.SSLCertVerificationError as error:
            raise FatalSourceError(
                f"the TLS certificate of {config.host} is not trusted ({error.verify_message})"
            ) from None
        except (OSError, imaplib.IMAP4.error) as error:
            raise TransientSourceError(
                f"cannot connect to IMAP server {config.host}:{config.port}: {_describe(error)}"
            ) from None
        try:
            connection.login(config.user, config.password)
        except imaplib.IMAP4.abort as error:
            _shutdown(connection)
            raise TransientSourceError(f"IMAP login interrupted: {_describe(error)}") from None
        except imaplib.IMAP4.error:
            _shutdown(connection)
            raise SourceAuthError(
                f"the IMAP server {config.host} refused the login: check IMAP_USER and "
                "IMAP_PASSWORD"
            ) from None
        except OSError as error:
            _shutdown(connection)
            raise TransientSourceError(f"IMAP login interrupted: {_describe(error)}") from None
        self._connection = connection
        return connection

    def _open(self, security: str) -> imaplib.IMAP4:
        """Connect, and upgrade to TLS unless plain was asked for; the socket never leaks."""
        config = self.config
        context = self.ssl_context or ssl.create_default_context()
        if security == "ssl":
            return imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=context, timeout=self.timeout
            )
        connection = imaplib.IMAP4(config.host, config.port, timeout=self.timeout)
        try:
            if security == "starttls":
                if "STARTTLS" not in connection.capabilities:
                    raise FatalSourceError(
                        f"{config.host} does not offer STARTTLS: set IMAP_SECURITY=ssl "
                        "and the TLS port (IMAP_PORT, usually 993)"
                    )
                connection.starttls(ssl_context=context)
        except BaseException:
            _shutdown(connection)
            raise
        return connection

    def _examine(self, connection: imaplib.IMAP4, folder: str) -> tuple[int, int | None]:
        """EXAMINE (read-only SELECT) the folder; return its UIDVALIDITY and UIDNEXT."""
        typ, data = self._call(
            connection, folder, lambda: connection.select(quote_mailbox(folder), readonly=True)
        )
        if typ != "OK":
            raise UnitError(folder, f"cannot open the folder: {_text(data)}")
        validity = _first_int(connection.untagged_responses.get("UIDVALIDITY"))
        if validity is None:
            raise UnitError(folder, "the server sent no UIDVALIDITY")
        return validity, _first_int(connection.untagged_responses.get("UIDNEXT"))

    def _new_uids(self, connection: imaplib.IMAP4, folder: str, last_uid: int) -> list[int]:
        typ, data = self._call(
            connection, folder, lambda: connection.uid("SEARCH", "UID", f"{last_uid + 1}:*")
        )
        if typ != "OK":
            raise UnitError(folder, f"UID SEARCH failed: {_text(data)}")
        # "n:*" always includes the highest UID, even when it is below n (RFC 3501 6.4.8).
        found = {int(word) for line in data if line for word in line.split() if word.isdigit()}
        return sorted(uid for uid in found if uid > last_uid)

    def _fetch(self, connection: imaplib.IMAP4, folder: str, uids: list[int]) -> list[_Fetched]:
        # BODY.PEEK never sets \Seen; the partial range caps a giant mail's bytes.
        items = f"(UID RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.{self.message_max_bytes}>)"
        typ, data = self._call(
            connection, folder, lambda: connection.uid("FETCH", _uid_set(uids), items)
        )
        if typ != "OK":
            raise UnitError(folder, f"UID FETCH failed: {_text(data)}")
        wanted = set(uids)
        messages: list[_Fetched] = []
        for index, entry in enumerate(data):
            if not isinstance(entry, tuple) or len(entry) < 2:
                continue
            head = entry[0]
            # Items may come in any order, some after the literal (in the next element).
            tail = data[index + 1] if index + 1 < len(data) else b""
            context = head + b" " + (tail if isinstance(tail, bytes) else b"")
            uid_match = _UID.search(context)
            if uid_match is None or int(uid_match[1]) not in wanted:
                continue
            size_match = _SIZE.search(context)
            messages.append(
                _Fetched(
                    uid=int(uid_match[1]),
                    raw=entry[1],
                    internal_date=_internaldate(context),
                    size=int(size_match[1]) if size_match else None,
                )
            )
        messages.sort(key=lambda fetched: fetched.uid)
        return messages

    def _call(self, connection: imaplib.IMAP4, what: str, command):  # type: ignore[no-untyped-def]
        """Run one command; a dropped connection becomes TransientSourceError."""
        try:
            return command()
        except (imaplib.IMAP4.abort, OSError) as error:
            self._drop()
            raise TransientSourceError(
                f"IMAP connection lost during {what}: {_describe(error)}"
            ) from None
        except imaplib.IMAP4.error as error:
            raise UnitError(what, _describe(error)) from None

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            _shutdown(connection)


_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')


def _internaldate(head: bytes) -> datetime | None:
    match = _INTERNALDATE.search(head)
    if match is None:
        return None
    try:
        return datetime.strptime(match[1].decode(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None


def _uid_set(uids: list[int]) -> str:
    """A compact UID set: 1:5,8,10:12."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in [*uids[1:], 0]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    return ",".join(ranges)


def _first_int(values: Sequence[object] | None) -> int | None:
    for value in values or []:
        text = value.decode("ascii", "replace").strip() if isinstance(value, bytes) else str(value)
        if text.isdigit():
            return int(text)
    return None


def _text(data: object) -> str:
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")[:200]
    return str(data)[:200]


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:200]


def _shutdown(connection: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown()


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: the only hosts plain IMAP may reach."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def quote_mailbox(name: str) -> str:
    """A folder name as an IMAP quoted string, in modified UTF-7 (RFC 3501 5.1.3)."""
    encoded = encode_mutf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mutf7(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_mutf7(raw: bytes) -> str:
    text = raw.decode("ascii", "replace")

    def expand(match: re.Match[str]) -> str:
        body = match[1]
        if not body:
            return "&"
        data = body.replace(",", "/")
        data += "=" * (-len(data) % 4)
        try:
            return base64.b64decode(data).decode("utf-16-be")
        except ValueError:
            return match[0]

    return re.sub(r"&([A-Za-z0-9+,]*)-", expand, text)
