"""Mails that hide a key in each way MIME allows, built at test time around a fake key.

Each case is raw RFC 5322 bytes plus the strings a reader must find in the extracted text. The
same cases go through `document_from_bytes`, mbox, Maildir, .eml files and IMAP.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from bot.detection.fakes import fake_secret


def fake_key(seed: int = 0) -> str:
    """A format-valid fake OpenAI project key, built at run time."""
    return fake_secret("openai_project_key", seed=seed)


def headers(subject: str, message_id: str | None, extra: str = "") -> str:
    lines = [
        "From: Dana Dev <dana@corp.example>",
        "To: ops@corp.example",
        f"Subject: {subject}",
        "Date: Tue, 03 Nov 2026 09:15:00 +0000",
        "MIME-Version: 1.0",
    ]
    if message_id:
        lines.append(f"Message-ID: <{message_id}@corp.example>")
    if extra:
        lines.append(extra.rstrip("\r\n"))
    return "\r\n".join(lines) + "\r\n"


def _b64(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[str], bytes]  # key -> raw mail
    expect: Callable[[str], list[str]] = lambda key: [key]  # strings the text must contain
    absent: Callable[[str], list[str]] = lambda key: []  # strings it must not contain


def _plain(key: str) -> bytes:
    return (
        headers("plain", "plain")
        + "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + f"Here is the key: {key}\r\n"
    ).encode()


def _qp_soft_break(key: str) -> bytes:
    # A quoted-printable soft line break ("=" at the end of a line) right inside the key.
    body = f"OPENAI_API_KEY={key[:17]}=\r\n{key[17:33]}=\r\n{key[33:]}\r\n".replace(
        "OPENAI_API_KEY=", "OPENAI_API_KEY=3D"
    )
    return (
        headers("qp", "qp")
        + "Content-Type: text/plain; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + body
    ).encode()


def _base64_body(key: str) -> bytes:
    return (
        headers("b64", "b64")
        + "Content-Type: text/plain; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(f"token:\n{key}\n".encode())
        + "\r\n"
    ).encode()


def _latin1_declared(key: str) -> bytes:
    return headers("latin1", "latin1").encode() + (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "Schlüssel für die Übergabe: ".encode("latin-1")
        + key.encode()
        + b"\r\n"
    )


def _unknown_charset(key: str) -> bytes:
    return headers("unknown charset", "unknown-cs").encode() + (
        b"Content-Type: text/plain; charset=x-unknown-cs\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "clé: ".encode() + key.encode() + b"\r\n"
    )


def _wrong_charset(key: str) -> bytes:
    # Declared UTF-8, written in Windows-1252: the UTF-8 decode fails, the fallback reads it.
    return headers("wrong charset", "wrong-cs").encode() + (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "café “key”: ".encode("cp1252")
        + key.encode()
        + b"\r\n"
    )


def _html_only(key: str) -> bytes:
    html = (
        "<html><head><style>p {color: red}</style><script>var hidden = 1;</script></head>"
        f"<body><p>Use&nbsp;this &amp; that:</p><div><b>{key[:12]}</b>{key[12:]}</div>"
        '<a href="https://hooks.example.test/services/T0/B0/abc">the webhook</a></body></html>'
    )
    return (
        headers("html", "html")
        + "Content-Type: text/html; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(html.encode())
        + "\r\n"
    ).encode()


def _alternative(key: str) -> bytes:
    return (
        headers("alternative", "alt")
        + 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        + "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + f"the key is {key}\r\n"
        + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + f"<p>the key is {key}</p>\r\n"
        + "--alt--\r\n"
    ).encode()


def _forwarded(key: str) -> bytes:
    inner = (
        headers("the original", "inner")
        + "Content-Type: text/plain; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + f"inner key {key[:20]}=\r\n{key[20:]}\r\n"
    )
    return (
        headers("Fwd: the original", "outer")
        + 'Content-Type: multipart/mixed; boundary="fw"\r\n\r\n'
        + "--fw\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        + "--fw\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + "\r\n--fw--\r\n"
    ).encode()


def _forwarded_base64(key: str) -> bytes:
    # message/rfc822 may not be base64-encoded (RFC 2046 5.2.1), yet some clients do it.
    inner = (headers("encoded original", "inner64") + f"\r\nthe key {key}\r\n").encode()
    return (
        headers("Fwd: encoded", "outer64")
        + 'Content-Type: multipart/mixed; boundary="f64"\r\n\r\n'
        + "--f64\r\nContent-Type: message/rfc822\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(inner)
        + "\r\n--f64--\r\n"
    ).encode()


def _attachment(filename: str, content_type: str = "application/octet-stream") -> Case:
    def build(key: str) -> bytes:
        data = f"# settings\nAPI_KEY={key}\n".encode()
        return (
            headers(f"attachment {filename}", f"att-{filename.strip('.')}")
            + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            + "--b1\r\nContent-Type: text/plain\r\n\r\nfile attached\r\n"
            + f'--b1\r\nContent-Type: {content_type}; name="{filename}"\r\n'
            + f'Content-Disposition: attachment; filename="{filename}"\r\n'
            + "Content-Transfer-Encoding: base64\r\n\r\n"
            + _b64(data)
            + "\r\n--b1--\r\n"
        ).encode()

    return Case(f"attachment{filename}", build, lambda key: [key, f"[attachment: {filename}]"])


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_mail(data: bytes, filename: str = "configs.zip") -> bytes:
    return (
        headers("zipped configs", "zip")
        + 'Content-Type: multipart/mixed; boundary="z"\r\n\r\n'
        + "--z\r\nContent-Type: text/plain\r\n\r\nthe configs\r\n"
        + f'--z\r\nContent-Type: application/zip; name="{filename}"\r\n'
        + f'Content-Disposition: attachment; filename="{filename}"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(data)
        + "\r\n--z--\r\n"
    ).encode()


def _zipped(key: str) -> bytes:
    files = {
        "deploy/.env.production": f"OPENAI_API_KEY={key}\n".encode(),
        "deploy/logo.png": b"\x89PNG\r\n\x1a\n" + key.encode(),
        "README": b"nothing here",
    }
    return zip_mail(zip_bytes(files))


def _binary_attachment(key: str) -> bytes:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + key.encode() + bytes(range(256))
    return (
        headers("binary", "binary")
        + 'Content-Type: multipart/mixed; boundary="b2"\r\n\r\n'
        + "--b2\r\nContent-Type: text/plain\r\n\r\nphoto attached\r\n"
        + '--b2\r\nContent-Type: image/png; name="photo.png"\r\n'
        + 'Content-Disposition: attachment; filename="photo.png"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(png)
        + "\r\n--b2--\r\n"
    ).encode()


def _flowed(key: str) -> bytes:
    # format=flowed with DelSp=yes: a soft break inside the key, the space before it deleted.
    return (
        headers("flowed", "flowed")
        + "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\n"
        + f"key: {key[:25]} \r\n{key[25:]}\r\n"
    ).encode()


def _encoded_subject(key: str) -> bytes:
    subject = "=?utf-8?b?" + base64.b64encode(f"Schlüssel {key}".encode()).decode() + "?="
    return (
        headers(subject, "subject")
        + "Content-Type: text/plain; charset=utf-8\r\n\r\nsee subject\r\n"
    ).encode()


def _no_message_id(key: str) -> bytes:
    return (headers("no id", None) + "Content-Type: text/plain\r\n\r\n" + f"key {key}\r\n").encode()


def _deep(key: str) -> bytes:
    # 60 levels of multipart: the key at level 2 is read, the depth cap stops the rest.
    depth = 60
    parts = [headers("deep", "deep")]
    for level in range(depth):
        if level:
            parts.append(f"--d{level - 1}\r\n")
        parts.append(f'Content-Type: multipart/mixed; boundary="d{level}"\r\n\r\n')
        if level == 2:
            parts.append(f"--d{level}\r\nContent-Type: text/plain\r\n\r\nlevel two {key}\r\n")
    parts.append(f"--d{depth - 1}\r\nContent-Type: text/plain\r\n\r\nbottom\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--d{level}--\r\n")
    return "".join(parts).encode()


TEXT_ATTACHMENTS = [
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
]

CASES: list[Case] = [
    Case("plain", _plain),
    Case("quoted-printable soft break inside the key", _qp_soft_break),
    Case("base64 body", _base64_body),
    Case("declared latin-1", _latin1_declared, lambda key: [key, "Schlüssel für"]),
    Case("unknown charset", _unknown_charset, lambda key: [key, "clé"]),
    Case("wrong charset", _wrong_charset, lambda key: [key, "café “key”"]),
    Case(
        "html",
        _html_only,
        lambda key: [key, "Use this & that:", "https://hooks.example.test/services/T0/B0/abc"],
        lambda key: ["hidden", "color: red", "<b>"],
    ),
    Case("alternative", _alternative),
    Case("nested message/rfc822", _forwarded, lambda key: [key, "the original"]),
    Case("base64 message/rfc822", _forwarded_base64, lambda key: [key, "encoded original"]),
    *[_attachment(name) for name in TEXT_ATTACHMENTS],
    _attachment("config.env.txt", "text/plain"),
    Case(
        "binary attachment skipped",
        _binary_attachment,
        lambda key: ["photo attached"],
        lambda key: [key],
    ),
    Case(
        "zip attachment",
        _zipped,
        lambda key: [key, "[attachment: configs.zip › deploy/.env.production]"],
        lambda key: ["PNG"],
    ),
    Case("format=flowed", _flowed),
    Case("encoded subject", _encoded_subject),
    Case("no Message-ID", _no_message_id),
    Case("deeply nested", _deep, lambda key: [key]),
]
