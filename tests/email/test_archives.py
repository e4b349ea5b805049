"""mbox files, Maildir folders and .eml files through the same parsing as IMAP."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from connectors.base import Document
from connectors.email import (
    Problem,
    document_from_bytes,
    looks_like_archive,
    mbox_messages,
    read_archive,
)
from tests.email.messages import CASES, fake_key, headers

KEY = fake_key(11)


def _assert_every_case_read(documents: list[Document], key: str) -> None:
    by_id = {document.item_id: document for document in documents}
    assert len(documents) == len(CASES)
    for case in CASES:
        item_id = document_from_bytes(case.build(key), unit="x").item_id
        document = by_id[item_id]
        for expected in case.expect(key):
            assert expected in document.text, f"{case.name}: {expected!r} missing"
        for unexpected in case.absent(key):
            assert unexpected not in document.text, f"{case.name}: {unexpected!r} present"


def _write_mbox(path: Path, raws: list[bytes]) -> None:
    box = mailbox.mbox(path, create=True)
    box.lock()
    try:
        for raw in raws:
            box.add(raw)
    finally:
        box.unlock()
        box.close()


def test_mbox_reads_every_mime_case(tmp_path: Path) -> None:
    path = tmp_path / "archive.mbox"
    _write_mbox(path, [case.build(KEY) for case in CASES])
    assert looks_like_archive(path)
    documents = list(read_archive(path))
    _assert_every_case_read(documents, KEY)
    assert {document.unit for document in documents} == {str(path)}
    assert all(document.source == "email" for document in documents)


def test_maildir_with_subfolders_reads_every_mime_case(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    half = len(CASES) // 2
    for case in CASES[:half]:
        box.add(case.build(KEY))
    sent = box.add_folder("Sent")  # Maildir++: stored as .Sent
    for case in CASES[half:]:
        message = mailbox.MaildirMessage(case.build(KEY))
        message.set_subdir("cur")
        message.add_flag("S")
        sent.add(message)
    assert looks_like_archive(root)
    _assert_every_case_read(list(read_archive(root)), KEY)


def test_eml_files_read_every_mime_case(tmp_path: Path) -> None:
    documents = []
    for number, case in enumerate(CASES):
        path = tmp_path / f"mail{number}.eml"
        path.write_bytes(case.build(KEY))
        assert looks_like_archive(path)
        documents += list(read_archive(path))
    _assert_every_case_read(documents, KEY)


def test_same_mail_in_two_archives_has_one_item_id(tmp_path: Path) -> None:
    raw = CASES[0].build(KEY)
    _write_mbox(tmp_path / "a.mbox", [raw])
    (tmp_path / "b.eml").write_bytes(raw)
    [from_mbox] = read_archive(tmp_path / "a.mbox")
    [from_eml] = read_archive(tmp_path / "b.eml")
    assert from_mbox.item_id == from_eml.item_id
    assert from_mbox.unit != from_eml.unit


def test_mbox_from_lines_in_bodies_are_restored_and_do_not_split(tmp_path: Path) -> None:
    body = f"Hi,\n\nFrom here on use {KEY}\n>From the old notes\n".encode()
    raws = [(headers(f"mail {n}", f"from-{n}") + "\r\n").encode() + body for n in range(3)]
    path = tmp_path / "escaped.mbox"
    _write_mbox(path, raws)
    assert b"\n>From here on" in path.read_bytes()  # the writer escaped it
    documents = list(read_archive(path))
    assert [document.title for document in documents] == ["mail 0", "mail 1", "mail 2"]
    assert all(f"From here on use {KEY}" in document.text for document in documents)
    assert all("\nFrom the old notes" in document.text for document in documents)


def test_malformed_mail_is_recorded_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.mbox"
    good = CASES[0].build(KEY)
    path.write_bytes(
        b"From dana@corp.example Tue Nov  3 09:15:00 2026\n"
        + good
        + b"\nFrom junk@corp.example Tue Nov  3 09:16:00 2026\n"
        + b"\x00\x01\x02\x03 not a mail\n"
        + b"\nFrom dana@corp.example Tue Nov  3 09:17:00 2026\n"
        + good.replace(b"Message-ID: <plain@", b"Message-ID: <plain2@")
    )
    problems: list[Problem] = []
    documents = list(read_archive(path, problems=problems))
    assert len(documents) == 2
    assert all(KEY in document.text for document in documents)
    assert [(problem.item, problem.reason) for problem in problems] == [("#2", "no header fields")]


def test_mbox_is_split_one_message_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "stream.mbox"
    _write_mbox(path, [CASES[0].build(fake_key(n)) for n in range(50)])
    with path.open("rb") as handle:
        messages = mbox_messages(handle)
        first = next(messages)
        assert fake_key(0).encode() in first
        assert handle.tell() < path.stat().st_size  # the rest is not read yet
        assert len(list(messages)) == 49


def test_recipients_outside_the_company_in_an_archive(tmp_path: Path) -> None:
    raw = (
        CASES[0].build(KEY).replace(b"To: ops@corp.example", b"To: ops@corp.example, x@vendor.test")
    )
    (tmp_path / "m.eml").write_bytes(raw)
    [document] = read_archive(tmp_path / "m.eml", company_domains=("corp.example",))
    assert document.exposure.audience == 2
    assert document.exposure.is_external


@pytest.mark.parametrize(
    "name, content",
    [
        ("notes.txt", b"From here on we use tabs\n"),
        ("data.bin", b"\x00\x01"),
        ("empty.mbox.txt", b""),
    ],
)
def test_other_files_are_not_mail_archives(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert not looks_like_archive(path)


def test_a_plain_folder_is_not_a_maildir(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    assert not looks_like_archive(tmp_path)


def test_an_unescaped_from_line_in_a_body_does_not_split_the_mail(tmp_path: Path) -> None:
    path = tmp_path / "mboxo.mbox"
    first = CASES[0].build(KEY).replace(b"\r\n", b"\n")
    path.write_bytes(
        b"From dana@corp.example Tue Nov  3 09:15:00 2026\n"
        + first
        + b"\nFrom me at 10:30 we meet, the key is above\n"
        + b"\nFrom - Tue, 3 Nov 2026 09:20:00 +0000\n"
        + first.replace(b"<plain@", b"<plain2@")
    )
    documents = list(read_archive(path))
    assert len(documents) == 2
    assert "From me at 10:30 we meet" in documents[0].text


def test_mails_without_an_empty_line_between_them_are_split(tmp_path: Path) -> None:
    path = tmp_path / "tight.mbox"
    mails = [CASES[0].build(fake_key(n)).replace(b"<plain@", f"<t{n}@".encode()) for n in range(3)]
    path.write_bytes(
        b"".join(b"From dana@corp.example Tue Nov  3 09:15:00 2026\n" + raw for raw in mails)
    )
    documents = list(read_archive(path))
    assert [fake_key(n) in d.text for n, d in enumerate(documents)] == [True, True, True]
