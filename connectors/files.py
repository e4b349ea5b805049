"""Plain files and folders as Documents, for the offline scan.

`FileSource(paths).documents()` walks every path (a file, a folder recursively, or `-` for
standard input) and yields one Document per file, or several for a large file: such a file is
read in chunks of `chunk_chars` characters, so memory stays flat whatever its size. Each chunk
Document carries, in `extra`, where its text sits in the file and which part of it the chunk
owns (see `ChunkPlacement`): a chunk's text runs a little past its owned part (`overlap_chars`,
longer than any credential) and starts a little before it (`context_chars`, so a keyword such as
`password=` just before a boundary is still seen). A match belongs to the chunk whose owned part
holds its first character, so nothing is reported twice or lost at a boundary.

What is skipped, and recorded in `skipped` with the reason (never fatal):
    version-control folders (.git, .hg, .svn, ...), paths an `exclude` predicate rejects,
    binary files (NUL bytes or mostly undecodable bytes near the start), files over
    `max_file_bytes`, and files that cannot be read (permissions, vanished while walking).

Invalid UTF-8 is decoded with U+FFFD replacement characters: one per bad byte sequence, so
line numbers and the columns of everything on other lines stay right. A UTF-16 or UTF-32 byte
order mark selects that encoding.

Archives (a Slack export, an mbox, a Confluence export) are recognised by the caller: the
`archives` hook is asked about each path first and, when it returns documents, the walk uses
them instead of reading the path as plain text.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from connectors.base import Document

STDIN = "-"
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "CVS", "_darcs", ".jj", ".fossil"})

SNIFF_BYTES = 8192
# More than this share of replacement characters in the sniffed head means "not text".
UNDECODABLE_SHARE = 0.10
READ_BYTES = 1 << 20

DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
DEFAULT_CHUNK_CHARS = 4 * 1024 * 1024
# Longer than any credential we detect (a 4096-bit PEM private key is about 3,300 characters).
DEFAULT_OVERLAP_CHARS = 64 * 1024
DEFAULT_CONTEXT_CHARS = 4 * 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

ArchiveHook = Callable[[Path], Iterable[Document] | None]
ExcludeHook = Callable[[Path, bool], bool]  # (path, is_dir) -> skip it


@dataclass(frozen=True, slots=True)
class SkippedPath:
    path: str
    reason: str  # "binary", "too large (612 MB > 512 MB)", "unreadable: Permission denied"


@dataclass(frozen=True, slots=True)
class ChunkPlacement:
    """Where a Document's text sits in its file, read back from `Document.extra`.

    `first_line`/`first_column` are the 1-based position of the text's first character in the
    file. A match starting at character offset `o` in the text belongs to this chunk when
    `owned_start <= o < owned_end`.
    """

    first_line: int = 1
    first_column: int = 1
    owned_start: int = 0
    owned_end: int | None = None  # None: to the end of the text

    @classmethod
    def of(cls, document: Document) -> ChunkPlacement:
        extra = document.extra
        if "owned_start" not in extra:
            return _WHOLE
        return cls(
            first_line=int(extra["first_line"]),
            first_column=int(extra["first_column"]),
            owned_start=int(extra["owned_start"]),
            owned_end=int(extra["owned_end"]),
        )

    def owns(self, offset: int) -> bool:
        return self.owned_start <= offset and (self.owned_end is None or offset < self.owned_end)

    def position(self, line: int, column: int) -> tuple[int, int]:
        """The file's (line, column) of a (line, column) counted in the chunk's text."""
        if line == 1:
            return self.first_line, self.first_column + column - 1
        return self.first_line + line - 1, column


_WHOLE = ChunkPlacement()


class FileSource:
    """Documents from files, folders and standard input; see the module docstring."""

    kind = "file"

    def __init__(
        self,
        paths: Iterable[str],
        *,
        exclude: ExcludeHook | None = None,
        archives: ArchiveHook | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
        overlap_chars: int = DEFAULT_OVERLAP_CHARS,
        context_chars: int = DEFAULT_CONTEXT_CHARS,
        stdin: BinaryIO | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if chunk_chars <= overlap_chars or chunk_chars <= context_chars:
            raise ValueError("chunk_chars must exceed overlap_chars and context_chars")
        self.paths = list(paths)
        self.exclude = exclude
        self.archives = archives
        self.max_file_bytes = max_file_bytes
        self.chunk_chars = chunk_chars
        self.overlap_chars = overlap_chars
        self.context_chars = context_chars
        self.stdin = stdin
        self.on_progress = on_progress
        self.skipped: list[SkippedPath] = []
        self.files_read = 0
        self.bytes_read = 0

    def documents(self) -> Iterator[Document]:
        for raw in self.paths:
            if raw == STDIN:
                stream = self.stdin if self.stdin is not None else sys.stdin.buffer
                yield from self._read_stream(stream, STDIN, unit="")
                continue
            path = Path(raw)
            if path.is_dir():
                yield from self._walk(path)
            elif path.exists():
                yield from self._visit_file(path)
            else:
                self._skip(path, "no such file or directory")

    # The walk ---------------------------------------------------------------------------------

    def _walk(self, root: Path) -> Iterator[Document]:
        archive = self._archive(root)
        if archive is not None:
            yield from archive
            return
        try:
            entries = sorted(os.scandir(root), key=lambda entry: entry.name)
        except OSError as error:
            self._skip(root, f"unreadable: {error.strerror or error}")
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=True)
            except OSError as error:
                self._skip(path, f"unreadable: {error.strerror or error}")
                continue
            if is_dir:
                if entry.name in VCS_DIRS or self._excluded(path, is_dir=True):
                    continue
                yield from self._walk(path)
            elif is_file and not self._excluded(path, is_dir=False):
                yield from self._visit_file(path)

    def _excluded(self, path: Path, is_dir: bool) -> bool:
        return self.exclude is not None and self.exclude(path, is_dir)

    def _archive(self, path: Path) -> Iterator[Document] | None:
        if self.archives is None:
            return None
        documents = self.archives(path)
        if documents is None:
            return None
        return self._count_archive(path, documents)

    def _count_archive(self, path: Path, documents: Iterable[Document]) -> Iterator[Document]:
        yield from documents
        size = _size_of(path)
        self.files_read += 1
        self.bytes_read += size
        if self.on_progress is not None:
            self.on_progress(size)

    def _visit_file(self, path: Path) -> Iterator[Document]:
        archive = self._archive(path)
        if archive is not None:
            yield from archive
            return
        try:
            info = path.stat()
        except OSError as error:
            self._skip(path, f"unreadable: {error.strerror or error}")
            return
        if not stat.S_ISREG(info.st_mode):
            return  # sockets, FIFOs, devices: nothing a person wrote
        if self.max_file_bytes and info.st_size > self.max_file_bytes:
            self._skip(
                path,
                f"too large ({_megabytes(info.st_size)} > {_megabytes(self.max_file_bytes)})",
            )
            if self.on_progress is not None:
                self.on_progress(info.st_size)
            return
        try:
            with path.open("rb") as stream:
                yield from self._read_stream(stream, str(path), unit=str(path.parent))
        except OSError as error:
            self._skip(path, f"unreadable: {error.strerror or error}")

    def _skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append(SkippedPath(str(path), reason))

    # Reading one file -------------------------------------------------------------------------

    def _read_stream(self, stream: BinaryIO, name: str, unit: str) -> Iterator[Document]:
        head = _read_at_least(stream, SNIFF_BYTES)
        encoding = _encoding_of(head)
        if encoding is None:
            self._skip(name, "binary")
            if self.on_progress is not None:
                self.on_progress(len(head))
            return
        self.files_read += 1
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        title = os.path.basename(name)

        def pieces() -> Iterator[str]:
            block = head
            while block:
                self.bytes_read += len(block)
                if self.on_progress is not None:
                    self.on_progress(len(block))
                text = decoder.decode(block)
                if text:
                    yield text
                block = stream.read(READ_BYTES)
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail

        for text, extra in self._chunks(pieces()):
            yield Document(
                source="file", unit=unit, item_id=name, text=text, title=title, extra=extra
            )

    def _chunks(self, pieces: Iterator[str]) -> Iterator[tuple[str, dict[str, str]]]:
        """Cut a stream of decoded text into overlapping chunks; see ChunkPlacement."""
        chunk, overlap, context = self.chunk_chars, self.overlap_chars, self.context_chars
        buffer = ""
        line, column = 1, 1  # the file position of buffer[0]
        owned_start = 0  # buffer[:owned_start] is context already owned by the previous chunk
        exhausted = False
        first = True
        while True:
            parts = [buffer]
            size = len(buffer)
            while not exhausted and size < owned_start + chunk + overlap:
                piece = next(pieces, None)
                if piece is None:
                    exhausted = True
                else:
                    parts.append(piece)
                    size += len(piece)
            buffer = "".join(parts) if len(parts) > 1 else buffer
            if exhausted and len(buffer) <= owned_start + chunk + overlap:
                if first:
                    yield buffer, {}
                elif len(buffer) > owned_start:
                    yield buffer, _placement(line, column, owned_start, len(buffer))
                return
            first = False
            # Own up to a line end near the chunk size, so most chunks start on a fresh line.
            target = owned_start + chunk
            newline = buffer.rfind("\n", owned_start + chunk // 2, target)
            owned_end = newline + 1 if newline >= 0 else target
            yield buffer[: owned_end + overlap], _placement(line, column, owned_start, owned_end)
            keep = max(0, owned_end - context)
            line_start = buffer.find("\n", keep, owned_end)
            if 0 <= line_start < owned_end - 1:
                keep = line_start + 1
            newlines = buffer.count("\n", 0, keep)
            if newlines:
                line += newlines
                column = keep - buffer.rfind("\n", 0, keep)
            else:
                column += keep
            buffer = buffer[keep:]
            owned_start = owned_end - keep


def _placement(line: int, column: int, owned_start: int, owned_end: int) -> dict[str, str]:
    return {
        "first_line": str(line),
        "first_column": str(column),
        "owned_start": str(owned_start),
        "owned_end": str(owned_end),
    }


def _read_at_least(stream: BinaryIO, size: int) -> bytes:
    """Read `size` bytes unless the stream ends first (pipes return short reads)."""
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        block = stream.read(wanted)
        if not block:
            break
        parts.append(block)
        wanted -= len(block)
    return b"".join(parts)


def _encoding_of(head: bytes) -> str | None:
    """The encoding to read a file with, or None when its first bytes say it is binary."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if b"\0" in head:
        return None
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head)
    if text and text.count("\ufffd") > UNDECODABLE_SHARE * len(text):
        return None
    return "utf-8"


def _size_of(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(
                (Path(folder) / name).stat().st_size
                for folder, _, names in os.walk(path)
                for name in names
            )
        return path.stat().st_size
    except OSError:
        return 0


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.0f} MB"


def total_bytes(paths: Iterable[str], exclude: ExcludeHook | None = None) -> int:
    """The bytes a walk of `paths` would read: the total of a progress bar."""
    total = 0
    for raw in paths:
        if raw == STDIN:
            continue
        root = Path(raw)
        if root.is_file():
            total += _size_of(root)
            continue
        for folder, dirs, names in os.walk(root):
            base = Path(folder)
            dirs[:] = [
                d for d in dirs if d not in VCS_DIRS and not (exclude and exclude(base / d, True))
            ]
            for name in names:
                path = base / name
                if exclude is None or not exclude(path, False):
                    with contextlib.suppress(OSError):
                        total += path.stat().st_size
    return total
