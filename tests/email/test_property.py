"""No byte sequence makes the mail parser raise anything but MalformedMessage."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import document_from_bytes
from connectors.mime import MalformedMessage
from tests.email.messages import CASES, TEXT_ATTACHMENTS, fake_key


def _read(raw: bytes) -> None:
    try:
        document = document_from_bytes(raw, unit="fuzz", company_domains=("corp.example",))
    except MalformedMessage:
        return
    assert isinstance(document.text, str)
    assert document.item_id
    assert "\x00" not in document.text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _read(raw)


_HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "MIME-Version",
    ]
)
_HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            "multipart/mixed; boundary=b",
            "multipart/alternative; boundary=b",
            'text/plain; charset="x-nope"',
            "text/plain; charset=utf-16",
            "text/html; charset=rot13",
            "message/rfc822",
            "text/plain; format=flowed; delsp=yes",
            "base64",
            "quoted-printable",
            "x-uuencode",
            'attachment; filename="a.env"',
            "attachment; filename*=utf-8''%FF.json",
            "=?utf-8?b?////?=",
            "=?bogus?q?=FF?=",
            "<@>",
            '"unterminated <a@b',
            "Mon, 99 Foo 99999",
        ]
    ),
    st.text(max_size=80),
)
_BODIES = st.one_of(
    st.binary(max_size=600),
    st.lists(
        st.sampled_from(
            [
                b"--b\r\n",
                b"--b--\r\n",
                b"\r\n",
                b"Content-Type: text/html\r\n",
                b"=\r\n",
                b"=F",
                b"<p>x</p>",
                b"Content-Type: message/rfc822\r\n\r\n",
                b"QUJD\r\n",
                b"begin 644 a\r\n",
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=8), _BODIES)
def test_mail_shaped_input_never_raises(fields: list[tuple[str, str]], body: bytes) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    _read(head.encode("utf-8", "surrogateescape") + b"\r\n" + body)


_CASE_BYTES = st.sampled_from([case.build(fake_key(1)) for case in CASES])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CASE_BYTES, st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=8)), max_size=6))
def test_damaged_real_mails_never_raise(raw: bytes, damage: list[tuple[int, bytes]]) -> None:
    data = bytearray(raw)
    for position, garbage in damage:
        at = position % (len(data) + 1)
        data[at : at + len(garbage)] = garbage
    _read(bytes(data))


_PROSE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=300).map(
    lambda text: text.replace("\r", "")
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=_PROSE,
    after=_PROSE,
    encoding=st.sampled_from(["quoted-printable", "base64", "8bit", "7bit"]),
    charset=st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "utf-16"]),
    attachment=st.sampled_from([None, *TEXT_ATTACHMENTS]),
    seed=st.integers(0, 1000),
)
def test_a_key_in_any_encoding_and_charset_comes_out_whole(
    before: str, after: str, encoding: str, charset: str, attachment: str | None, seed: int
) -> None:
    key = fake_key(seed)
    text = f"{before} {key} {after}"
    if charset != "utf-8" and charset != "utf-16":
        text = text.encode(charset, "replace").decode(charset)
    if encoding == "7bit" and not text.isascii():
        encoding = "quoted-printable"
    message = EmailMessage()
    message["From"] = "dana@corp.example"
    message["Subject"] = "generated"
    if attachment is None:
        message.set_content(text, charset=charset, cte=encoding)
    else:
        message.set_content("see attached")
        message.add_attachment(
            text.encode("utf-8"), maintype="application", subtype="octet-stream",
            filename=f"settings{attachment}", cte="base64" if encoding == "base64" else None,
        )  # fmt: skip
    document = document_from_bytes(bytes(message), unit="property")
    assert key in document.text
