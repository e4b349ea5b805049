"""The file walker: what it reads, what it skips, and where text sits in large files."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from connectors.files import ChunkPlacement, FileSource

MARKER = re.compile(r"MARK\d{5}")


def read_all(source: FileSource) -> dict[str, str]:
    return {document.item_id: document.text for document in source.documents()}


def markers(source: FileSource) -> list[tuple[str, int, int, str]]:
    """(path, line, column, marker) of every marker, located the way the scan command does."""
    found = []
    for document in source.documents():
        placement = ChunkPlacement.of(document)
        for match in MARKER.finditer(document.text):
            if not placement.owns(match.start()):
                continue
            line = document.text.count("\n", 0, match.start()) + 1
            column = match.start() - document.text.rfind("\n", 0, match.start())
            found.append((document.item_id, *placement.position(line, column), match.group()))
    return found


def test_walks_folders_recursively_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep").mkdir()
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b" / "c.cfg").write_text("gamma\n")
    (tmp_path / "b" / "deep" / "d.md").write_text("delta\n")
    source = FileSource([str(tmp_path)])
    texts = read_all(source)
    assert list(texts) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b" / "c.cfg"),
        str(tmp_path / "b" / "deep" / "d.md"),
    ]
    assert texts[str(tmp_path / "b" / "deep" / "d.md")] == "delta\n"
    assert source.files_read == 3
    assert source.skipped == []


def test_document_says_where_the_file_is(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    (document,) = FileSource([str(tmp_path / "notes.txt")]).documents()
    assert document.source == "file"
    assert document.unit == str(tmp_path)
    assert document.item_id == str(tmp_path / "notes.txt")
    assert document.title == "notes.txt"


@pytest.mark.parametrize("vcs", [".git", ".hg", ".svn"])
def test_skips_version_control_folders(tmp_path: Path, vcs: str) -> None:
    (tmp_path / vcs).mkdir()
    (tmp_path / vcs / "config").write_text("[core]\n")
    (tmp_path / "kept.txt").write_text("kept\n")
    assert list(read_all(FileSource([str(tmp_path)]))) == [str(tmp_path / "kept.txt")]


def test_skips_binary_files_and_records_them(tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "random.bin").write_bytes(bytes((i * 97 + 13) % 256 for i in range(20000)))
    (tmp_path / "text.txt").write_text("plain text\n")
    source = FileSource([str(tmp_path)])
    assert list(read_all(source)) == [str(tmp_path / "text.txt")]
    assert sorted((Path(s.path).name, s.reason) for s in source.skipped) == [
        ("image.png", "binary"),
        ("random.bin", "binary"),
    ]


def test_invalid_utf8_is_replaced_and_lines_stay_right(tmp_path: Path) -> None:
    raw = b"caf\xe9 au lait\nline two \xff\xfe ok\nMARK00001 here\n"
    (tmp_path / "latin.txt").write_bytes(raw)
    source = FileSource([str(tmp_path)])
    (text,) = read_all(source).values()
    assert text.splitlines()[0] == "caf\ufffd au lait"
    assert markers(FileSource([str(tmp_path)])) == [
        (str(tmp_path / "latin.txt"), 3, 1, "MARK00001")
    ]


def test_a_multibyte_character_split_between_reads_is_decoded_whole(tmp_path: Path) -> None:
    # 1 MiB reads: put a 3-byte character across the boundary.
    text = "x" * ((1 << 20) - 1) + "€ MARK00002\n"
    (tmp_path / "euro.txt").write_text(text, encoding="utf-8")
    (read,) = read_all(FileSource([str(tmp_path)])).values()
    assert read == text


def test_utf16_with_a_byte_order_mark_is_text(tmp_path: Path) -> None:
    (tmp_path / "wide.txt").write_text("first\nMARK00003\n", encoding="utf-16")
    assert markers(FileSource([str(tmp_path)])) == [(str(tmp_path / "wide.txt"), 2, 1, "MARK00003")]


def test_files_over_the_size_cap_are_recorded_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "big.log").write_text("x" * 5000)
    (tmp_path / "small.txt").write_text("small\n")
    source = FileSource([str(tmp_path)], max_file_bytes=1000)
    assert list(read_all(source)) == [str(tmp_path / "small.txt")]
    (skipped,) = source.skipped
    assert skipped.path == str(tmp_path / "big.log")
    assert skipped.reason.startswith("too large")


def test_exclude_hook_prunes_folders_and_files(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "lib.js").write_text("lib\n")
    (tmp_path / "app.min.js").write_text("min\n")
    (tmp_path / "app.js").write_text("app\n")
    seen: list[tuple[str, bool]] = []

    def exclude(path: Path, is_dir: bool) -> bool:
        seen.append((path.name, is_dir))
        return path.name == "vendor" or path.name.endswith(".min.js")

    assert list(read_all(FileSource([str(tmp_path)], exclude=exclude))) == [
        str(tmp_path / "app.js")
    ]
    assert ("vendor", True) in seen
    assert ("lib.js", False) not in seen  # the excluded folder was never entered


def test_stdin(tmp_path: Path) -> None:
    stream = io.BytesIO(b"one\ntwo MARK00004\n")
    assert markers(FileSource(["-"], stdin=stream)) == [("-", 2, 5, "MARK00004")]


def test_missing_paths_are_recorded(tmp_path: Path) -> None:
    source = FileSource([str(tmp_path / "nope")])
    assert read_all(source) == {}
    assert source.skipped[0].reason == "no such file or directory"


def test_archive_hook_replaces_plain_reading(tmp_path: Path) -> None:
    from connectors.base import Document

    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "inner.json").write_text("[]")
    (tmp_path / "other.txt").write_text("other\n")

    def archives(path: Path) -> list[Document] | None:
        if path.name == "export":
            return [Document(source="slack", unit="C1", item_id="1.2", text="from the export")]
        return None

    texts = read_all(FileSource([str(tmp_path)], archives=archives))
    assert texts == {"1.2": "from the export", str(tmp_path / "other.txt"): "other\n"}


def _marked_text(lines: int, seed: int) -> tuple[str, list[tuple[int, int, str]]]:
    import random

    rng = random.Random(seed)
    rows, expected = [], []
    for number in range(1, lines + 1):
        row = "".join(rng.choice("ab c") for _ in range(rng.choice([0, 3, 60, 900, 7000])))
        if number % 5 == 0:
            column = len(row) + 1
            marker = f"MARK{number:05d}"
            row += marker
            expected.append((number, column, marker))
        rows.append(row)
    return "\n".join(rows), expected


@pytest.mark.parametrize(
    ("chunk", "overlap", "context"), [(5000, 64, 32), (20000, 2000, 700), (1 << 22, 1 << 16, 4096)]
)
def test_chunked_reading_reports_every_marker_once_at_its_place(
    tmp_path: Path, chunk: int, overlap: int, context: int
) -> None:
    text, expected = _marked_text(1500, seed=chunk)
    path = tmp_path / "large.txt"
    path.write_text(text)
    source = FileSource(
        [str(path)], chunk_chars=chunk, overlap_chars=overlap, context_chars=context
    )
    assert markers(source) == [(str(path), *row) for row in expected]


def test_one_long_line_is_cut_and_columns_stay_right(tmp_path: Path) -> None:
    path = tmp_path / "one-line.txt"
    path.write_text("q" * 123_456 + "MARK00042" + "z" * 50_000)
    source = FileSource([str(path)], chunk_chars=10_000, overlap_chars=100, context_chars=50)
    documents = list(source.documents())
    assert len(documents) > 10
    assert max(len(d.text) for d in documents) <= 10_000 + 100 + 50 + (1 << 20)
    assert markers(
        FileSource([str(path)], chunk_chars=10_000, overlap_chars=100, context_chars=50)
    ) == [(str(path), 1, 123_457, "MARK00042")]


def test_a_keyword_just_before_a_chunk_boundary_is_in_the_next_chunk(tmp_path: Path) -> None:
    """The chunk owning a value starts early enough to hold the words in front of it."""
    path = tmp_path / "assign.txt"
    prefix = "y" * 9_995  # "label_of=" straddles the 10,000-character boundary
    path.write_text(prefix + "label_of=MARK00007\n")
    source = FileSource([str(path)], chunk_chars=10_000, overlap_chars=100, context_chars=50)
    owners = []
    for document in source.documents():
        placement = ChunkPlacement.of(document)
        at = document.text.find("MARK00007")
        if at >= 0 and placement.owns(at):
            owners.append(document.text[max(0, at - 9) : at])
    assert owners == ["label_of="]
