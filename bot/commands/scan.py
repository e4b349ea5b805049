"""`python -m bot scan PATH...`: find credentials in files, folders, exports and archives offline.

    python -m bot scan .                       # a table of masked findings
    python -m bot scan export.zip --format sarif > leakwatch.sarif
    cat notes.txt | python -m bot scan -       # standard input
    python -m bot scan ~/mail.mbox --format jsonl --reveal   # raw values, on your own terminal

Each path is first offered to the archive readers (a Slack export, an mbox / Maildir / .eml, a
Confluence export); anything else is read as plain text (connectors/files.py). Findings whose
fingerprint or path the ignore file lists (`.leakwatchignore` in a scanned folder, and any
`--ignore FILE`) are left out. `--store` also records findings in the database, as a poll would.

Exit status: 0 nothing found, 1 something found, 2 error (a path that does not exist, a bad
option, a failure while scanning).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot import ignore
from bot.config import Settings
from bot.output import Finding, ProgressBar, Summary, printable, renderer
from connectors.base import Document
from connectors.files import STDIN, ChunkPlacement, FileSource, SkippedPath, total_bytes

if TYPE_CHECKING:
    from bot.detection.engine import Detector
    from bot.detection.types import Match
    from bot.pipeline import Scanner

log = logging.getLogger(__name__)

FORMATS = ("table", "json", "jsonl", "sarif")
ARCHIVE_MODULES = ("slack", "email", "confluence")
STDIN_NAME = "<stdin>"
ARCHIVE_PATH_KEY = "leakwatch_archive_path"
# Documents sent to the store at once with --store (their total size in characters).
STORE_BATCH_CHARS = 8_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, exports or archives; - for stdin"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument(
        "--reveal",
        action="store_true",
        help="print the raw secret values too (only on your own terminal)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="FILE",
        type=Path,
        help="an ignore file (fingerprints or path globs) besides each folder's .leakwatchignore",
    )
    parser.add_argument("--store", action="store_true", help="also record findings in the database")
    parser.add_argument(
        "--max-file-size",
        type=float,
        default=512,
        metavar="MB",
        help="skip (and report) files larger than this; 0 for no limit (default 512)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar, even on a terminal"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    missing = [p for p in args.paths if p != STDIN and not Path(p).exists()]
    for path in missing:
        print(f"leakwatch: scan: no such file or directory: {path}", file=sys.stderr)
    missing_ignores = [p for p in args.ignore if not p.is_file()]
    for path in missing_ignores:
        print(f"leakwatch: scan: no such ignore file: {path}", file=sys.stderr)
    if missing or missing_ignores:
        return 2
    if args.paths.count(STDIN) > 1:
        print("leakwatch: scan: - (stdin) may be given once", file=sys.stderr)
        return 2
    scan = Scan.build(args, settings)
    return scan.run(sys.stdout, sys.stderr)


@dataclass
class Scan:
    paths: list[str]
    detector: Detector
    rules: ignore.IgnoreRules
    format: str = "table"
    reveal: bool = False
    max_file_bytes: int = 0
    progress: bool = True
    settings: Settings | None = None  # needed by --store
    store: bool = False
    archives: ArchiveReaders | None = None  # loaded on first use when not given

    @classmethod
    def build(cls, args: argparse.Namespace, settings: Settings) -> Scan:
        from bot.detection.engine import Detector
        from bot.detection.fingerprint import fingerprinter_from_settings

        roots = [Path(p) for p in args.paths if p != STDIN and Path(p).is_dir()]
        fingerprinter = fingerprinter_from_settings(settings)
        # Compiling the patterns runs outside the GIL: import the archive readers meanwhile.
        with ThreadPoolExecutor(max_workers=1) as pool:
            compiling = pool.submit(
                Detector.default, fingerprinter, cache_dir=settings.cache_dir
            )
            archives = ArchiveReaders.load(settings.company_domains)
            detector = compiling.result()
        return cls(
            paths=list(args.paths),
            detector=detector,
            archives=archives,
            rules=ignore.load(roots, args.ignore),
            format=args.format,
            reveal=args.reveal,
            max_file_bytes=int(args.max_file_size * 1_000_000),
            progress=not args.no_progress,
            settings=settings,
            store=args.store,
        )

    def run(self, out: TextIO, err: TextIO) -> int:
        started = time.monotonic()
        color = self.format == "table" and _is_tty(out)
        output = renderer(self.format, out, reveal=self.reveal, color=color)
        bar = self._progress_bar(err)
        archives = self.archives if self.archives is not None else ArchiveReaders.load()
        archive_errors = archives.errors
        source = FileSource(
            self.paths,
            exclude=self._excluder(),
            archives=archives.hook,
            max_file_bytes=self.max_file_bytes,
            on_progress=bar.advance if bar else None,
        )
        found = ignored = 0
        store = _Store(self.settings, _Unignored(self.detector, self.rules)) if self.store else None
        try:
            for document in source.documents():
                findings, dropped = self.findings(document)
                ignored += dropped
                for finding in findings:
                    output.add(finding)
                found += len(findings)
                if store is not None and findings:
                    store.add(document)
            if store is not None:
                store.flush()
        finally:
            if bar is not None:
                bar.finish()
        skipped = [(printable(s.path), s.reason) for s in [*source.skipped, *archive_errors]]
        summary = Summary(
            files=source.files_read,
            bytes=source.bytes_read,
            seconds=time.monotonic() - started,
            skipped=skipped,
            ignored=ignored,
        )
        output.close(summary)
        if self.format != "table":
            for path, reason in skipped:
                if reason != "binary":
                    print(f"leakwatch: scan: skipped {path}: {reason}", file=err)
        if store is not None:
            print(f"leakwatch: scan: recorded {store.recorded} documents in the store", file=err)
        return 1 if found else 0

    def findings(self, document: Document) -> tuple[list[Finding], int]:
        """The findings of one document, and how many the ignore file dropped."""
        placement = ChunkPlacement.of(document)
        findings: list[Finding] = []
        ignored = 0
        for match in self.detector.scan(document.text):
            if not placement.owns(match.start):
                continue
            if self.rules.ignores_fingerprint(match.fingerprint):
                ignored += 1
                continue
            findings.append(_finding(document, match, placement))
        return findings, ignored

    def _excluder(self) -> Callable[[Path, bool], bool] | None:
        if not (self.rules.globs or self.rules.folder_globs):
            return None
        roots = [Path(p) for p in self.paths if p != STDIN and Path(p).is_dir()]

        def is_excluded(path: Path, is_dir: bool) -> bool:
            for root in roots:
                try:
                    relative = path.relative_to(root)
                except ValueError:
                    continue
                if self.rules.ignores_path(relative, is_dir):
                    return True
            return False

        return is_excluded

    def _progress_bar(self, err: TextIO) -> ProgressBar | None:
        if not (self.progress and _is_tty(err)):
            return None
        return ProgressBar(err, total_bytes(self.paths, self._excluder()))


def _finding(document: Document, match: Match, placement: ChunkPlacement) -> Finding:
    line, column = placement.position(match.line, match.column)
    end_column = match.end_column + (column - match.column)
    common: dict[str, Any] = dict(
        line=line,
        column=column,
        end_column=end_column,
        rule=match.rule_id,
        provider=match.provider,
        name=match.name,
        severity=match.severity,
        preview=match.preview,
        fingerprint=match.fingerprint,
        secret=match.secret,
    )
    if document.source == "file":
        path = STDIN_NAME if document.item_id == STDIN else document.item_id
        return Finding(path=path, **common)
    details: tuple[tuple[str, str], ...] = ()
    if document.source == "slack":
        details = (
            ("channel", document.unit_name or document.unit),
            ("ts", document.extra.get("ts", document.item_id)),
            ("user", document.author or ""),
        )
    if document.title:
        details += (("title", document.title),)
    if document.permalink:
        details += (("permalink", document.permalink),)
    return Finding(
        path=document.extra.get(ARCHIVE_PATH_KEY, ""),
        source=document.source,
        container=document.unit_name or document.unit,
        item=document.item_id,
        author=document.author,
        details=details,
        **common,
    )


@dataclass(frozen=True)
class ArchiveReader:
    name: str
    looks_like_archive: Callable[[Path], bool]
    read_archive: Callable[[Path], Iterable[Document]]


@dataclass
class ArchiveReaders:
    """The archive readers the connectors provide; a connector without one is left out."""

    readers: list[ArchiveReader]
    errors: list[SkippedPath]  # archives that could not be read, reported as skipped

    @classmethod
    def load(cls, company_domains: Sequence[str] = ()) -> ArchiveReaders:
        """`company_domains`: mail to other domains counts as sent outside (risk)."""
        readers = []
        for name in ARCHIVE_MODULES:
            try:
                module = importlib.import_module(f"connectors.{name}")
            except ImportError:
                continue
            looks = getattr(module, "looks_like_archive", None)
            read = getattr(module, "read_archive", None)
            if callable(looks) and callable(read):
                if name == "email":
                    read = functools.partial(read, company_domains=tuple(company_domains))
                readers.append(ArchiveReader(name, looks, read))
        return cls(readers, [])

    def hook(self, path: Path) -> Iterable[Document] | None:
        if not _may_be_archive(path):
            return None
        for reader in self.readers:
            try:
                claimed = reader.looks_like_archive(path)
            except (OSError, ValueError) as error:
                log.debug("%s reader could not inspect %s: %s", reader.name, path, error)
                continue
            if claimed:
                return self._read(reader, path)
        return None

    def _read(self, reader: ArchiveReader, path: Path) -> Iterator[Document]:
        """The archive's documents, tagged with its path; a broken archive is recorded."""
        extra = {ARCHIVE_PATH_KEY: str(path)}
        try:
            for document in reader.read_archive(path):
                yield replace(document, extra={**document.extra, **extra})
        except Exception as error:  # one unreadable archive must not end the whole scan
            reason = f"unreadable {reader.name} archive: {type(error).__name__}: {error}"
            self.errors.append(SkippedPath(str(path), reason))


# Every archive file the readers know is a zip (Slack and Confluence exports), an mbox or an
# .eml file: a file with none of these suffixes or first bytes is read as plain text without
# asking each reader (which would open it as a zip and read its first line: ~60 µs a file).
# A reader for a new kind of archive file adds its suffix or magic bytes here.
ARCHIVE_SUFFIXES = frozenset({".zip", ".eml", ".mbox", ".mbx"})
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"From ")


def _may_be_archive(path: Path) -> bool:
    """Folders, and files that start like a zip or an mbox or are named like an archive."""
    if path.suffix.lower() in ARCHIVE_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(5).startswith(ARCHIVE_MAGIC)
    except IsADirectoryError:
        return True
    except OSError:
        return True  # let the readers report what is wrong with it


@dataclass
class _Unignored:
    """The detector without the fingerprints the ignore file lists: what `--store` records is
    what the scan reports, so a known fixture in a document with a real key is not stored."""

    detector: Detector
    rules: ignore.IgnoreRules

    def scan(self, text: str) -> list[Match]:
        return [
            match for match in self.detector.scan(text)
            if not self.rules.ignores_fingerprint(match.fingerprint)
        ]


class _Store:
    """Sends documents with findings to the pipeline in batches (`scan --store`)."""

    def __init__(self, settings: Settings | None, detector: Scanner) -> None:
        from bot.store.db import Database

        if settings is None:
            raise ValueError("--store needs settings")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.db.upgrade()
        self.detector = detector
        self.pending: list[Document] = []
        self.pending_chars = 0
        self.recorded = 0

    def add(self, document: Document) -> None:
        placement = ChunkPlacement.of(document)
        if placement.first_line > 1 or placement.first_column > 1:
            # A chunk of a large file: pad it to its place, so the lines the store keeps are
            # the file's (the pipeline scans the text it is given).
            padding = "\n" * (placement.first_line - 1) + " " * (placement.first_column - 1)
            document = replace(document, text=padding + document.text)
        self.pending.append(document)
        self.pending_chars += len(document.text)
        if self.pending_chars >= STORE_BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        from bot.pipeline import ingest

        with self.db.session() as session:
            ingest(session, self.pending, self.detector, now=datetime.now(UTC))
        self.recorded += len(self.pending)
        self.pending, self.pending_chars = [], 0


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
