"""MIME to text: every way a key hides in a mail comes out as readable text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.detection.engine import Detector
from bot.detection.fingerprint import Fingerprinter
from connectors.email import document_from_bytes, is_outside
from connectors.mime import MalformedMessage, html_to_text, message_text, parse_message
from tests.email.messages import CASES, Case, fake_key, headers, zip_bytes, zip_mail


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_mime_case_yields_the_key_in_the_text(case: Case) -> None:
    key = fake_key(3)
    document = document_from_bytes(case.build(key), unit="test")
    for expected in case.expect(key):
        assert expected in document.text, f"{expected!r} missing from {document.text!r}"
    for unexpected in case.absent(key):
        assert unexpected not in document.text


def test_the_same_content_in_plain_and_html_is_read_once() -> None:
    key = fake_key(1)
    case = next(case for case in CASES if case.name == "alternative")
    assert document_from_bytes(case.build(key), unit="t").text.count(key) == 1


def test_encoded_subject_is_the_title_and_is_scanned() -> None:
    key = fake_key(2)
    case = next(case for case in CASES if case.name == "encoded subject")
    document = document_from_bytes(case.build(key), unit="t")
    assert document.title == f"Schlüssel {key}"
    assert key in document.text


def test_binary_and_oversized_parts_are_skipped_and_recorded() -> None:
    key = fake_key(4)
    binary = next(case for case in CASES if case.name == "binary attachment skipped")
    document = document_from_bytes(binary.build(key), unit="t")
    assert "binary attachment photo.png (image/png)" in document.extra["skipped"]

    attachment = next(case for case in CASES if case.name == "attachment.env")
    raw = attachment.build(key)
    small = document_from_bytes(raw, unit="t", attachment_max_bytes=20)
    assert key not in small.text
    assert "larger than 20 bytes" in small.extra["skipped"]
    assert key in document_from_bytes(raw, unit="t", attachment_max_bytes=10_000).text


def test_text_attachment_with_nul_bytes_is_treated_as_binary() -> None:
    raw = (
        headers("nul", "nul")
        + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + "--b\r\nContent-Type: application/octet-stream\r\n"
        + 'Content-Disposition: attachment; filename="dump.log"\r\n\r\n'
        + "MZ\x00\x00\x00 not really a log\r\n--b--\r\n"
    ).encode()
    document = document_from_bytes(raw, unit="t")
    assert "not really a log" not in document.text
    assert "binary content in dump.log" in document.extra["skipped"]


def test_deep_nesting_is_capped_without_error() -> None:
    key = fake_key(5)
    deep = next(case for case in CASES if case.name == "deeply nested")
    document = document_from_bytes(deep.build(key), unit="t")
    assert key in document.text
    assert "bottom" not in document.text  # below the depth cap
    assert "nested deeper than" in document.extra["skipped"]


def test_headers_become_document_fields_and_exposure() -> None:
    raw = (
        b"From: =?utf-8?q?Ren=C3=A9?= <Rene@Corp.Example>\r\n"
        b"To: a@corp.example, b@eu.corp.example\r\n"
        b"Cc: vendor@contractor.test, a@corp.example\r\n"
        b"Bcc: c@corp.example\r\n"
        b"Subject: creds\r\n"
        b"Date: Wed, 04 Nov 2026 18:30:00 +0100\r\n"
        b"Message-ID: <  abc.123@corp.example >\r\n\r\nbody\r\n"
    )
    document = document_from_bytes(raw, unit="INBOX", company_domains=("corp.example",))
    assert document.source == "email"
    assert document.unit == "INBOX"
    assert document.item_id == "<abc.123@corp.example>"
    assert document.title == "creds"
    assert document.author == document.author_email == "rene@corp.example"
    assert document.posted_at == datetime(2026, 11, 4, 17, 30, tzinfo=UTC)
    assert document.exposure.audience == 4  # a@ counted once
    assert document.exposure.is_external  # the contractor

    internal = raw.replace(b"vendor@contractor.test, ", b"")
    assert not document_from_bytes(
        internal, unit="x", company_domains=("corp.example",)
    ).exposure.is_external


def test_outside_means_not_the_company_domain_nor_a_subdomain() -> None:
    domains = ("corp.example",)
    assert not is_outside("a@corp.example", domains)
    assert not is_outside("a@mail.corp.example", domains)
    assert is_outside("a@notcorp.example", domains)
    assert is_outside("a@corp.example.evil.test", domains)
    assert not is_outside("a@anything.test", ())  # no domains configured: cannot tell


def test_mail_without_message_id_gets_a_stable_header_hash() -> None:
    key = fake_key(6)
    case = next(case for case in CASES if case.name == "no Message-ID")
    raw = case.build(key)
    relayed = b"Received: from relay.corp.example by mx; Tue, 3 Nov 2026 09:15:02 +0000\r\n" + raw
    first = document_from_bytes(raw, unit="a")
    assert first.item_id.startswith("sha256:")
    assert document_from_bytes(relayed, unit="b").item_id == first.item_id
    other = raw.replace(b"Subject: no id", b"Subject: another")
    assert document_from_bytes(other, unit="a").item_id != first.item_id


def test_missing_or_garbled_date_leaves_posted_at_empty() -> None:
    raw = b"From: a@corp.example\r\nDate: not a date\r\n\r\nbody\r\n"
    assert document_from_bytes(raw, unit="t").posted_at is None


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x02 binary junk without headers", b"\r\n\r\n"])
def test_bytes_that_are_not_a_mail_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(raw)


def test_message_without_body_or_text_parts_gives_subject_only() -> None:
    raw = b"Subject: only a subject\r\nContent-Type: image/png\r\n\r\n\x89PNG"
    assert message_text(parse_message(raw)).text == "Subject: only a subject"


def test_html_to_text_joins_inline_markup_and_breaks_blocks() -> None:
    text = html_to_text("<p>a<b>b</b>c</p><p>d&lt;e&gt;</p><ul><li>one</li><li>two</li></ul>")
    assert text.splitlines() == ["abc", "d<e>", "one", "two"]


def test_recipients_with_quoted_names_and_groups_are_counted_by_address() -> None:
    raw = (
        b'From: "ops@corp.example (on behalf)" <mallory@vendor.test>\r\n'
        b'To: "bob@corp.example" <bob@partner.test>, team: c@corp.example, d@corp.example;\r\n'
        b"Cc: undisclosed-recipients:;\r\n\r\nbody\r\n"
    )
    document = document_from_bytes(raw, unit="t", company_domains=("corp.example",))
    assert document.author == "mallory@vendor.test"
    assert document.exposure.audience == 3
    assert document.exposure.is_external


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.default(Fingerprinter(b"email-mime-tests-fingerprint-key"))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_detector_finds_exactly_the_mailed_key(case: Case, detector: Detector) -> None:
    key = fake_key(12)
    document = document_from_bytes(case.build(key), unit="t")
    secrets = {match.secret for match in detector.scan(document.text)}
    assert secrets == ({key} if key in case.expect(key) else set())


def test_a_zip_that_expands_beyond_the_cap_is_not_read_past_it() -> None:
    key = fake_key(13)
    bomb = b"A" * 50_000_000  # compresses to about 50 kB
    raw = zip_mail(zip_bytes({"huge.log": bomb, "small.env": f"KEY={key}".encode()}))
    document = document_from_bytes(raw, unit="t", attachment_max_bytes=1_000_000)
    assert key in document.text
    assert "huge.log in configs.zip too large to read" in document.extra["skipped"]
    assert "AAAA" not in document.text


def test_a_corrupt_zip_is_recorded_and_the_mail_still_read() -> None:
    key = fake_key(14)
    data = zip_bytes({"a.env": f"KEY={key}".encode()})
    document = document_from_bytes(zip_mail(data[: len(data) // 2]), unit="t")
    assert "the configs" in document.text
    assert "unreadable zip configs.zip (BadZipFile)" in document.extra["skipped"]
