"""No byte sequence makes the mail parser raise anything but MalformedMessage."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import document_from_bytes
from connectors.mime import MalformedMessage


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
