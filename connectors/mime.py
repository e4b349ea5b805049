"""MIME to the text a person reads: what the email connector hands to detection.

A mail hides keys in many layers: quoted-printable (whose soft line breaks can fall inside a
key), base64, any charset (declared, unknown to Python, or simply wrong), HTML bodies, forwarded
mails (message/rfc822), and attachments such as `.env`, `.json` or `.pem` files, also inside a
zip attachment. This module undoes all of them and returns one string per mail, together with
notes on what it skipped (binary parts, parts over the size cap, nesting beyond MAX_DEPTH).

Parsing uses the standard library's lenient `compat32` policy and decodes headers and payloads
itself, so that no byte sequence makes it raise: `parse_message` raises only `MalformedMessage`
(no header at all, or a structure the parser cannot hold), and `message_text` never raises.
"""

from __future__ import annotations

import base64
import codecs
import email
import email.header
import email.policy
import email.utils
import hashlib
import io
import quopri
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from html.parser import HTMLParser

# Extensions and names of attachments that are read as text (others are skipped as binary).
TEXT_EXTENSIONS = frozenset(
    [
        ".txt",
        ".env",
        ".json",
        ".yaml",
        ".yml",
        ".ini",
        ".cfg",
        ".conf",
        ".properties",
        ".py",
        ".js",
        ".ts",
        ".sh",
        ".log",
        ".csv",
        ".pem",
        ".key",
        ".toml",
        ".xml",
        ".tf",
        ".tfvars",
        ".md",
        ".rb",
        ".go",
        ".java",
        ".php",
        ".ps1",
        ".bat",
        ".sql",
        ".htm",
        ".html",
    ]
)
TEXT_FILENAMES = frozenset(
    [
        ".env",
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".pgpass",
        ".dockercfg",
        "credentials",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
    ]
)
TEXT_APPLICATION_TYPES = frozenset(
    {
        "application/json",
        "application/x-yaml",
        "application/yaml",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/x-sh",
        "application/x-shellscript",
        "application/x-pem-file",
        "application/toml",
        "application/x-python",
        "application/sql",
    }
)
DEFAULT_ATTACHMENT_MAX_BYTES = 1_000_000
MAX_DEPTH = 12  # multipart and message/rfc822 nesting followed; deeper parts are skipped
MAX_PARTS = 500  # leaf parts read per mail
ZIP_MEMBERS = 200  # files looked at inside one zip attachment
ZIP_EXPANSION = 4  # a zip attachment may expand to this many times the attachment cap
MAX_NOTES = 50  # reasons kept per mail for what was skipped
_BINARY_SNIFF_BYTES = 8192


class MalformedMessage(ValueError):
    """The bytes are not a mail that can be read; the caller records it and goes on."""


@dataclass(slots=True)
class MessageText:
    """The readable text of one mail, and what was left out and why."""

    text: str
    skipped: list[str] = field(default_factory=list)  # "binary attachment photo.png (image/png)"
    defects: list[str] = field(default_factory=list)  # parser defects, by class name


def parse_message(raw: bytes) -> Message:
    """Parse raw RFC 5322 bytes; raise `MalformedMessage` if they are not a mail at all."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as error:  # lenient parser: only RecursionError on absurd nesting and bugs
        raise MalformedMessage(f"cannot parse: {type(error).__name__}") from None
    if not message.keys():
        raise MalformedMessage("no header fields")
    return message


def header_text(message: Message, name: str) -> str:
    """A header's value with RFC 2047 encoded words decoded; "" when absent or unreadable."""
    raw = message.get(name)
    if raw is None:
        return ""
    return decode_header_value(raw)


def decode_header_value(raw: object) -> str:
    try:
        if isinstance(raw, email.header.Header):
            return _clean_header(str(raw))
        value = str(raw)
        if "=?" not in value:
            return _clean_header(value)
        chunks = []
        for data, charset in email.header.decode_header(value):
            if isinstance(data, str):
                chunks.append(data)
            else:
                chunks.append(decode_bytes(data, charset))
        return _clean_header("".join(chunks))
    except Exception:  # a broken encoded word: keep the raw text rather than lose the header
        return _clean_header(str(raw))


def _clean_header(value: str) -> str:
    return " ".join(value.replace("\x00", "").split())


def addresses(message: Message, *names: str) -> list[str]:
    """Lower-cased mail addresses from the given address headers, in order, without repeats."""
    values: list[str] = []
    for name in names:
        for raw in message.get_all(name, []) or []:
            values.append(decode_header_value(raw))
    found: list[str] = []
    if any('"' in value or "(" in value for value in values):
        try:
            candidates = [address for _, address in email.utils.getaddresses(values)]
        except Exception:
            candidates = []
    else:  # no quoted names or comments: every address is an unbroken run around an "@"
        candidates = [match for value in values for match in _ADDRESS.findall(value)]
    for address in candidates:
        address = address.strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


_ADDRESS = re.compile(r"[^\s<>,;:@]+@[^\s<>,;:@]+")


def message_date(message: Message) -> datetime | None:
    """The Date header as an aware datetime (UTC when it names no zone); None if unreadable."""
    value = header_text(message, "date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def message_id(message: Message) -> str:
    """The Message-ID, or a hash of the identifying headers when there is none.

    The same mail stored in two folders or two archives gets the same id either way, so it is
    one occurrence of a secret, not two.
    """
    value = "".join(header_text(message, "message-id").split())
    if value:
        return value[:500]
    digest = hashlib.sha256()
    for name in ("from", "to", "cc", "date", "subject", "in-reply-to", "references"):
        digest.update(name.encode() + b"\x00" + header_text(message, name).encode() + b"\x00")
    return "sha256:" + digest.hexdigest()[:40]


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, then UTF-8, then Windows-1252, then Latin-1.

    Mail often declares a charset Python does not know (`x-unknown`) or the wrong one (UTF-8
    text labelled us-ascii, Latin-1 text labelled UTF-8); each is tried strictly, and Latin-1
    accepts any byte, so some text always comes out and every ASCII key survives.
    """
    tried: list[str] = []
    for candidate in (charset, "utf-8", "cp1252"):
        codec = _text_codec(candidate)
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def _text_codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # Only text encodings: codecs such as base64 or rot13 are looked up by name too.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def message_text(
    message: Message,
    *,
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    include_subject: bool = True,
) -> MessageText:
    """Every readable part of `message` as one text; never raises."""
    reader = _Reader(attachment_max_bytes)
    try:
        if include_subject:
            subject = header_text(message, "subject")
            if subject:
                reader.chunks.append(f"Subject: {subject}")
        reader.read(message, depth=0)
    except Exception as error:  # defensive: a parser corner case must not lose the mail
        reader.skip(f"unreadable part ({type(error).__name__})")
    reader.result.text = "\n\n".join(chunk for chunk in reader.chunks if chunk.strip())
    return reader.result


class _Reader:
    def __init__(self, attachment_max_bytes: int) -> None:
        self.attachment_max_bytes = attachment_max_bytes
        self.chunks: list[str] = []
        self.result = MessageText(text="")
        self.parts = 0

    def skip(self, note: str) -> None:
        """Record why something was left out, once per distinct reason, at most MAX_NOTES."""
        skipped = self.result.skipped
        if note not in skipped and len(skipped) < MAX_NOTES:
            skipped.append(note)

    def read(self, part: Message, depth: int) -> None:
        for defect in getattr(part, "defects", []) or []:
            name = type(defect).__name__
            if name not in self.result.defects:
                self.result.defects.append(name)
        if depth > MAX_DEPTH:
            self.skip(f"part nested deeper than {MAX_DEPTH} levels")
            return
        content_type = _content_type(part)
        if part.is_multipart():
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            if content_type.startswith("message/"):
                encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
                if encoding in ("base64", "quoted-printable"):
                    # Not allowed by RFC 2046, but sent: the parser took the encoded text for
                    # a headerless mail. Decode it and parse the real one.
                    self._read_encoded_forward(children, encoding, depth + 1)
                    return
                for child in children:
                    self._read_forwarded(child, depth + 1)
            elif content_type == "multipart/alternative":
                self._read_alternative(children, depth + 1)
            else:
                for child in children:
                    self.read(child, depth + 1)
            return
        self.parts += 1
        if self.parts > MAX_PARTS:
            self.skip(f"parts beyond the first {MAX_PARTS}")
            return
        text = self.leaf_text(part, content_type, depth)
        if text:
            self.chunks.append(text)

    def _read_forwarded(self, inner: Message, depth: int) -> None:
        subject = header_text(inner, "subject")
        sender = header_text(inner, "from")
        self.chunks.append(f"[forwarded message] From: {sender} Subject: {subject}".rstrip())
        self.read(inner, depth)

    def _read_encoded_forward(self, children: list[Message], encoding: str, depth: int) -> None:
        try:
            encoded = b"".join(child.as_bytes() for child in children)
            data = (
                base64.b64decode(encoded) if encoding == "base64" else quopri.decodestring(encoded)
            )
        except Exception:
            self.skip(f"undecodable {encoding} forwarded message")
            return
        self._nested_from_bytes(data, depth - 1, "forwarded message")

    def _read_alternative(self, children: list[Message], depth: int) -> None:
        # The same content twice (plain and HTML) is read once; differing versions are both kept.
        seen: set[str] = set()
        for child in children:
            before = len(self.chunks)
            self.read(child, depth)
            added = self.chunks[before:]
            key = " ".join(" ".join(added).split())
            if key in seen:
                del self.chunks[before:]
            else:
                seen.add(key)

    def leaf_text(self, part: Message, content_type: str, depth: int) -> str:
        filename = _filename(part)
        label = filename or content_type
        is_attachment = bool(filename) or _disposition(part) == "attachment"
        data = _payload_bytes(part)
        if data is None:
            self.skip(f"undecodable part {label}")
            return ""
        if content_type == "message/rfc822" or (filename or "").lower().endswith(".eml"):
            return self._nested_from_bytes(data, depth, label)
        if _is_zip(content_type, filename):
            return self._zip_text(data, label)
        if not _is_text_like(content_type, filename):
            self.skip(f"binary attachment {label} ({content_type})")
            return ""
        if is_attachment and len(data) > self.attachment_max_bytes:
            self.skip(f"attachment {label} larger than {self.attachment_max_bytes} bytes")
            return ""
        if b"\x00" in data[:_BINARY_SNIFF_BYTES] and not _is_utf16(part):
            self.skip(f"binary content in {label}")
            return ""
        text = decode_bytes(data, part.get_content_charset(None) or _param(part, "charset"))
        text = text.replace("\x00", "").replace("\r\n", "\n")
        if content_type == "text/plain" and _param(part, "format").lower() == "flowed":
            text = unflow(text, delsp=_param(part, "delsp").lower() == "yes")
        if content_type in ("text/html", "application/xhtml+xml") or (
            (filename or "").lower().endswith((".html", ".htm"))
        ):
            text = html_to_text(text)
        if is_attachment:
            return f"[attachment: {label}]\n{text}"
        return text

    def _zip_text(self, data: bytes, label: str) -> str:
        """Text-like files inside a zip attachment ("configs.zip"), each under the size cap.

        Sizes are checked against the bytes actually read, not the sizes the archive claims,
        and the whole archive may expand to at most ZIP_EXPANSION times the cap.
        """
        cap = self.attachment_max_bytes
        if len(data) > cap:
            self.skip(f"attachment {label} larger than {cap} bytes")
            return ""
        chunks: list[str] = []
        budget = cap * ZIP_EXPANSION
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = archive.infolist()
                for info in members[:ZIP_MEMBERS]:
                    name = info.filename
                    if info.is_dir() or not _is_text_like("", name):
                        continue
                    if info.flag_bits & 0x1:
                        self.skip(f"encrypted {name} in {label}")
                        continue
                    with archive.open(info) as member:
                        content = member.read(min(cap, budget) + 1)
                    budget -= len(content)
                    if len(content) > cap or budget < 0:
                        self.skip(f"{name} in {label} too large to read")
                        continue
                    if b"\x00" in content[:_BINARY_SNIFF_BYTES]:
                        self.skip(f"binary content in {name} in {label}")
                        continue
                    text = decode_bytes(content, None).replace("\r\n", "\n")
                    chunks.append(f"[attachment: {label} › {name}]\n{text}")
                if len(members) > ZIP_MEMBERS:
                    self.skip(f"files beyond the first {ZIP_MEMBERS} in {label}")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
                EOFError, OSError, ValueError, zlib.error) as error:  # fmt: skip
            self.skip(f"unreadable zip {label} ({type(error).__name__})")
        return "\n\n".join(chunks)

    def _nested_from_bytes(self, data: bytes, depth: int, label: str) -> str:
        try:
            inner = parse_message(data)
        except MalformedMessage:
            self.skip(f"unreadable forwarded message {label}")
            return ""
        self._read_forwarded(inner, depth + 1)
        return ""


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        return ""
    if not name:
        return ""
    return decode_header_value(name)[:255]


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = email.utils.collapse_rfc2231_value(value)
    return str(value) if value else ""


def _is_utf16(part: Message) -> bool:
    charset = _text_codec(_param(part, "charset")) or ""
    return charset.startswith(("utf-16", "utf-32", "utf_16", "utf_32"))


def _payload_bytes(part: Message) -> bytes | None:
    """The payload with its transfer encoding undone (base64, quoted-printable, uuencode)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return None


def _is_zip(content_type: str, filename: str) -> bool:
    return content_type in ("application/zip", "application/x-zip-compressed") or (
        filename.lower().endswith(".zip")
    )


def _is_text_like(content_type: str, filename: str) -> bool:
    name = filename.lower().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if name:
        if name in TEXT_FILENAMES or name.startswith(".env"):
            return True
        dot = name.rfind(".")
        if dot >= 0 and name[dot:] in TEXT_EXTENSIONS:
            return True
    if content_type.startswith("text/"):
        return True
    return content_type in TEXT_APPLICATION_TYPES or content_type.endswith(("+json", "+xml"))


def unflow(text: str, delsp: bool = False) -> str:
    """Undo RFC 3676 format=flowed: join soft-broken lines (and drop the space if DelSp=yes)."""
    out: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if line.startswith(" "):  # space-stuffing
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            current += line[:-1] if delsp else line
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return "\n".join(out)


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template"})


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append("\t")
        # Link targets carry secrets too (webhook URLs, tokens in query strings).
        for name, value in attrs:
            if name in ("href", "src") and value and not value.startswith(("#", "cid:", "data:")):
                self.out.append(f" <{value}> ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """The visible text of an HTML part, one line per block, with link targets kept."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is lenient; keep whatever was read
        pass
    text = "".join(parser.out)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
