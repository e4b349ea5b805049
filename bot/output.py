"""How the offline scan prints what it found: a table for people, JSON, JSON Lines and SARIF.

Every renderer prints the masked preview and the fingerprint; the raw secret appears only when
the person running the scan asked for it (`reveal=True`, from `scan --reveal`).

    TableRenderer   aligned columns, worst severity first, a summary line
    JsonRenderer    one JSON document: {"findings": [...], "skipped": [...], "summary": {...}}
    JsonLinesRenderer  one JSON object a line, written as each finding is made
    SarifRenderer   SARIF 2.1.0 (rules, results with regions, partialFingerprints)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO
from urllib.parse import quote

from bot.detection.types import Severity

TOOL_NAME = "LeakWatch"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "leakwatch/v1"

_SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
# GitHub code scanning reads `security-severity` (0.0-10.0) to rank security results.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}


@dataclass(frozen=True)
class Finding:
    """One match at one place, ready to print. `secret` is printed only on request."""

    path: str
    line: int
    column: int
    end_column: int
    rule: str
    provider: str
    name: str
    severity: Severity
    preview: str
    fingerprint: str
    secret: str = field(repr=False, compare=False)
    # Where inside an archive (a Slack export, a mailbox, a Confluence export); None for files.
    source: str = "file"
    container: str | None = None
    item: str | None = None
    author: str | None = None
    details: tuple[tuple[str, str], ...] = ()  # source-specific: Slack channel, ts, user

    @property
    def location(self) -> str:
        where = f"{printable(self.path)}:{self.line}:{self.column}"
        if self.source != "file":
            inside = " › ".join(part for part in (self.container, self.item) if part)
            return f"{where} ({self.source}: {inside})" if inside else where
        return where

    def record(self, reveal: bool = False) -> dict[str, Any]:
        """The JSON / JSON Lines form."""
        record: dict[str, Any] = {
            "path": printable(self.path),
            "line": self.line,
            "column": self.column,
            "end_column": self.end_column,
            "rule": self.rule,
            "provider": self.provider,
            "name": self.name,
            "severity": str(self.severity),
            "preview": self.preview,
            "fingerprint": self.fingerprint,
        }
        if self.source != "file":
            record.update(
                source=self.source, container=self.container, item=self.item, author=self.author
            )
            record.update(self.details)
        if reveal:
            record["secret"] = self.secret
        return record


def printable(path: str) -> str:
    """A path as text: bytes of a file name that are not UTF-8 become U+FFFD."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class Summary:
    files: int
    bytes: int
    seconds: float
    skipped: Sequence[tuple[str, str]] = ()  # (path, reason)
    ignored: int = 0  # findings dropped by the ignore file


class Renderer(Protocol):
    def add(self, finding: Finding) -> None: ...

    def close(self, summary: Summary) -> None: ...


class JsonLinesRenderer:
    def __init__(self, stream: TextIO, reveal: bool = False) -> None:
        self.stream = stream
        self.reveal = reveal

    def add(self, finding: Finding) -> None:
        self.stream.write(json.dumps(finding.record(self.reveal), ensure_ascii=False) + "\n")

    def close(self, summary: Summary) -> None:
        self.stream.flush()


class JsonRenderer:
    def __init__(self, stream: TextIO, reveal: bool = False) -> None:
        self.stream = stream
        self.reveal = reveal
        self.findings: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def close(self, summary: Summary) -> None:
        document = {
            "findings": [finding.record(self.reveal) for finding in self.findings],
            "skipped": [{"path": path, "reason": reason} for path, reason in summary.skipped],
            "summary": {
                "findings": len(self.findings),
                "secrets": len({finding.fingerprint for finding in self.findings}),
                "files": summary.files,
                "bytes": summary.bytes,
                "seconds": round(summary.seconds, 3),
                "ignored": summary.ignored,
            },
        }
        json.dump(document, self.stream, ensure_ascii=False, indent=2)
        self.stream.write("\n")


class SarifRenderer:
    def __init__(self, stream: TextIO, reveal: bool = False, version: str = "") -> None:
        self.stream = stream
        self.reveal = reveal
        self.version = version
        self.findings: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def close(self, summary: Summary) -> None:
        rules: dict[str, int] = {}
        rule_records: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for finding in self.findings:
            if finding.rule not in rules:
                rules[finding.rule] = len(rule_records)
                rule_records.append(_sarif_rule(finding))
            results.append(self._result(finding, rules[finding.rule]))
        driver: dict[str, Any] = {"name": TOOL_NAME}
        if self.version:
            driver["version"] = self.version
        driver["rules"] = rule_records
        log = {
            "$schema": SARIF_SCHEMA,
            "version": SARIF_VERSION,
            "runs": [{"tool": {"driver": driver}, "results": results}],
        }
        json.dump(log, self.stream, ensure_ascii=False, indent=2)
        self.stream.write("\n")

    def _result(self, finding: Finding, rule_index: int) -> dict[str, Any]:
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(finding.path)},
                "region": {
                    "startLine": finding.line,
                    "startColumn": finding.column,
                    "endColumn": finding.end_column,
                },
            }
        }
        if finding.source != "file":
            name = "/".join(part for part in (finding.container, finding.item) if part)
            location["logicalLocations"] = [{"fullyQualifiedName": name, "kind": finding.source}]
        properties: dict[str, Any] = {"provider": finding.provider, "severity": finding.severity}
        if finding.source != "file":
            properties.update(source=finding.source, author=finding.author)
            properties.update(finding.details)
        if self.reveal:
            properties["secret"] = finding.secret
        return {
            "ruleId": finding.rule,
            "ruleIndex": rule_index,
            "level": _SARIF_LEVEL[finding.severity],
            "message": {"text": f"{finding.name} {finding.preview}"},
            "locations": [location],
            "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
            "properties": properties,
        }


def _sarif_rule(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.rule,
        "name": "".join(part.capitalize() for part in finding.rule.split("_")),
        "shortDescription": {"text": finding.name},
        "fullDescription": {
            "text": f"A {finding.name} ({finding.provider}) written in plain text."
            " Rotate it, then remove it."
        },
        "defaultConfiguration": {"level": _SARIF_LEVEL[finding.severity]},
        "properties": {
            "provider": finding.provider,
            "tags": ["security", "secret"],
            "security-severity": _SECURITY_SEVERITY[finding.severity],
        },
    }


def _uri(path: str) -> str:
    """A relative URI reference for a path, as SARIF's artifactLocation.uri wants."""
    if path.startswith("<"):
        return quote(path.strip("<>"))
    # The file system's bytes, percent-encoded: names that are not UTF-8 survive.
    posix = os.fsencode(path.replace(os.sep, "/"))
    if os.path.isabs(path):
        return "file://" + quote(posix)
    return quote(posix.removeprefix(b"./"))


class TableRenderer:
    """Aligned columns for a terminal; nothing printed is a raw secret unless `reveal`."""

    HEADERS = ("SEVERITY", "TYPE", "SECRET", "WHERE")

    def __init__(self, stream: TextIO, reveal: bool = False, color: bool = False) -> None:
        self.stream = stream
        self.reveal = reveal
        self.color = color
        self.findings: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def close(self, summary: Summary) -> None:
        ordered = sorted(self.findings, key=lambda f: (-f.severity.rank, f.path, f.line, f.column))
        rows = [
            (str(f.severity), f.name, f.secret if self.reveal else f.preview, f.location)
            for f in ordered
        ]
        write = self.stream.write
        if rows:
            widths = [
                max(len(header), *(len(row[i]) for row in rows))
                for i, header in enumerate(self.HEADERS)
            ]
            widths[-1] = 0  # the last column is not padded
            write(_line(self.HEADERS, widths) + "\n")
            for row, finding in zip(rows, ordered, strict=True):
                write(self._paint(_line(row, widths), finding.severity) + "\n")
            write("\n")
        write(_summary_line(self.findings, summary) + "\n")
        if self.findings:
            write(
                "  a known fixture? list its fingerprint (--format jsonl) or a path glob"
                " in .leakwatchignore\n"
            )
        binary = sum(1 for _, reason in summary.skipped if reason == "binary")
        if binary:
            write(f"  skipped {binary} binary file{'s' if binary != 1 else ''}\n")
        for path, reason in summary.skipped:
            if reason != "binary":
                write(f"  skipped {path}: {reason}\n")

    def _paint(self, text: str, severity: Severity) -> str:
        if not self.color:
            return text
        code = {Severity.CRITICAL: "1;31", Severity.HIGH: "31", Severity.MEDIUM: "33"}.get(
            severity, "0"
        )
        return f"\x1b[{code}m{text}\x1b[0m"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _summary_line(findings: Sequence[Finding], summary: Summary) -> str:
    files = f"{summary.files} file{'s' if summary.files != 1 else ''}"
    scanned = f"{files}, {_size(summary.bytes)} in {summary.seconds:.1f} s"
    extra = f"; {summary.ignored} ignored by the ignore file" if summary.ignored else ""
    if not findings:
        return f"No secrets found ({scanned}{extra})."
    secrets = len({f.fingerprint for f in findings})
    places = len({f.path for f in findings})
    return (
        f"Found {secrets} secret{'s' if secrets != 1 else ''} at {len(findings)} "
        f"place{'s' if len(findings) != 1 else ''} in {places} "
        f"file{'s' if places != 1 else ''} ({scanned}{extra})."
    )


def _size(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    if count >= 1_000:
        return f"{count / 1_000:.1f} kB"
    return f"{count} B"


def renderer(
    format: str, stream: TextIO, reveal: bool = False, color: bool = False, version: str = ""
) -> Renderer:
    if format == "json":
        return JsonRenderer(stream, reveal)
    if format == "jsonl":
        return JsonLinesRenderer(stream, reveal)
    if format == "sarif":
        return SarifRenderer(stream, reveal, version)
    return TableRenderer(stream, reveal, color)


class ProgressBar:
    """A one-line bar on a terminal's stderr, drawn only once a scan has run for `delay` s."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, delay: float = 1.0, clock: Any = None) -> None:
        import time

        self.stream = stream
        self.total = max(total, 1)
        self.done = 0
        self.delay = delay
        self.clock = clock or time.monotonic
        self.started = self.clock()
        self.drawn_at = 0.0
        self.visible = False

    def advance(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if now - self.started < self.delay or now - self.drawn_at < 0.1:
            return
        self.drawn_at = now
        self.visible = True
        share = min(self.done / self.total, 1.0)
        filled = int(share * self.WIDTH)
        rate = self.done / max(now - self.started, 1e-9) / 1_000_000
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%}"
            f"  {_size(self.done)} of {_size(self.total)}  {rate:.0f} MB/s "
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.visible:
            self.stream.write("\r" + " " * (self.WIDTH + 50) + "\r")
            self.stream.flush()
