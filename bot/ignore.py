"""The ignore file (`.leakwatchignore`): known fixtures the offline scan should not report.

One entry a line; `#` starts a comment (a whole line, or after whitespace at a line's end):

    # a fingerprint: the HMAC-SHA256 of one secret, as `scan --format jsonl` prints it
    3f1c…(64 hex digits)
    # a path glob, matched against the path relative to the scanned folder
    tests/fixtures/*.pem
    # without a slash: matched against the name at any depth
    *.min.js
    # a trailing slash: that folder and everything under it
    vendor/

Fingerprints are keyed with this installation's fingerprint key, so they carry over between
runs on one machine (or with the same LEAKWATCH_FINGERPRINT_KEY), not between installations;
path globs carry over everywhere. `*` matches across `/` (as in fnmatch).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

IGNORE_FILE_NAME = ".leakwatchignore"

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class IgnoreRules:
    fingerprints: frozenset[str] = frozenset()
    globs: tuple[str, ...] = ()  # file globs
    folder_globs: tuple[str, ...] = ()  # entries written with a trailing slash
    sources: tuple[str, ...] = field(default=(), compare=False)  # the files read, for messages

    @classmethod
    def parse(cls, text: str, source: str = "") -> IgnoreRules:
        fingerprints: set[str] = set()
        globs: list[str] = []
        folder_globs: list[str] = []
        for raw in text.splitlines():
            entry = _strip_comment(raw)
            if not entry:
                continue
            if _FINGERPRINT.fullmatch(entry.lower()):
                fingerprints.add(entry.lower())
            elif entry.endswith("/"):
                folder_globs.append(_normalise(entry.rstrip("/")))
            else:
                globs.append(_normalise(entry))
        return cls(
            frozenset(fingerprints),
            tuple(globs),
            tuple(folder_globs),
            (source,) if source else (),
        )

    @classmethod
    def read(cls, path: Path) -> IgnoreRules:
        return cls.parse(path.read_text(encoding="utf-8", errors="replace"), str(path))

    def __or__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules(
            self.fingerprints | other.fingerprints,
            self.globs + other.globs,
            self.folder_globs + other.folder_globs,
            self.sources + other.sources,
        )

    def __bool__(self) -> bool:
        return bool(self.fingerprints or self.globs or self.folder_globs)

    def ignores_fingerprint(self, fingerprint: str) -> bool:
        return fingerprint in self.fingerprints

    def ignores_path(self, relative: PurePath, is_dir: bool) -> bool:
        """Whether a path (relative to the scanned folder) is excluded from the scan."""
        text = relative.as_posix()
        if text in ("", "."):
            return False
        name = relative.name
        if is_dir and any(_matches(glob, text, name) for glob in self.folder_globs):
            return True
        return any(_matches(glob, text, name) for glob in self.globs)


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    hash_at = line.find(" #")
    if hash_at >= 0:
        line = line[:hash_at]
    return line.strip()


def _normalise(glob: str) -> str:
    glob = glob.replace("\\", "/")
    while glob.startswith("./"):
        glob = glob[2:]
    return glob


def _matches(glob: str, relative: str, name: str) -> bool:
    if glob.startswith("/"):
        return fnmatch.fnmatchcase(relative, glob.lstrip("/"))
    if "/" in glob:
        return fnmatch.fnmatchcase(relative, glob)
    return fnmatch.fnmatchcase(name, glob)


def load(roots: Iterable[Path], extra_files: Iterable[Path] = ()) -> IgnoreRules:
    """The rules of each scanned folder's own ignore file plus any given with --ignore."""
    rules = IgnoreRules()
    for root in roots:
        candidate = root / IGNORE_FILE_NAME
        if candidate.is_file():
            rules = rules | IgnoreRules.read(candidate)
    for path in extra_files:
        rules = rules | IgnoreRules.read(path)
    return rules
