"""The multi-pattern pass: every rule's pattern over the whole input, in linear time.

A scanner reports where matches END, as (form index, byte offset): the forms are every rule's
patterns in order (`Rule.engine_forms`: its `pattern`, then its `pattern_after` if it has one).
Hyperscan does this natively (start-of-match tracking would make wide patterns "too large" for
it, and is not needed: the engine re-reads a window of at most the form's width before each end
with Python `re`). RE2 is the fallback where Hyperscan cannot be imported: an RE2 set says which
forms match in a chunk, then only those forms run over that chunk. Databases are compiled once
per process.

Compiling the Hyperscan database takes about a second. Given a `cache_dir`, the compiled
database is saved there (named by a hash of the patterns and the Hyperscan version) and loaded
by later processes in well under a millisecond; a missing, stale or unreadable file is simply
compiled again.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from bot.detection.rules import Rule

# RE2 works chunk by chunk (chunks overlap by the widest rule): a small chunk holds few keys, so
# few rules need their own pass over it.
CHUNK = 1 << 16
# The engine takes at most 512 hits per rule in 64 KiB (engine._HITS_PER_BLOCK): RE2 stops
# looking for more at the same density, so a flood of look-alikes costs it no more.
_RE2_HITS_PER_CHUNK = 512 * (CHUNK >> 16)


class Scanner(Protocol):
    name: str

    def ends(self, data: bytes) -> list[tuple[int, int]]: ...


def available_engines() -> tuple[str, ...]:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return ("re2",)
    return ("hyperscan", "re2")


def scanner_for(
    rules: tuple[Rule, ...], engine: str = "auto", cache_dir: Path | None = None
) -> Scanner:
    if engine == "auto":
        engine = available_engines()[0]
    if engine == "hyperscan":
        return _hyperscan(rules, cache_dir)
    if engine == "re2":
        return _re2(rules)
    raise ValueError(f"unknown engine {engine!r}: use auto, hyperscan or re2")


class HyperscanScanner:
    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule], cache_dir: Path | None = None) -> None:
        import hyperscan

        expressions = [form.encode("ascii") for rule in rules for form in rule.engine_forms]
        self._database = _load(expressions, cache_dir) or _compile(expressions, cache_dir)
        self._local = threading.local()  # Hyperscan scratch space may not be shared by threads
        self._scratch_type: Any = hyperscan.Scratch

    def ends(self, data: bytes) -> list[tuple[int, int]]:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch_type(self._database)
        hits: list[tuple[int, int]] = []
        append = hits.append

        def on_match(form_index: int, _start: int, end: int, _flags: int, _context: Any) -> None:
            append((form_index, end))

        if data:
            self._database.scan(data, match_event_handler=on_match, scratch=scratch)
        return hits


class Re2Scanner:
    name = "re2"

    def __init__(self, rules: Sequence[Rule]) -> None:
        import re2

        options = re2.Options()
        options.max_mem = 256 << 20
        self._set = re2.Set.SearchSet(options)
        self._patterns = []
        for form in (form for rule in rules for form in rule.engine_forms):
            pattern = _re2_pattern(form).encode("ascii")
            self._set.Add(pattern)
            self._patterns.append(re2.compile(pattern, options))
        self._set.Compile()
        self._overlap = max((max(rule.width, rule.width_after) for rule in rules), default=0)

    def ends(self, data: bytes) -> list[tuple[int, int]]:
        hits: set[tuple[int, int]] = set()
        step = CHUNK
        for chunk_start in range(0, max(len(data), 1), step):
            low = max(0, chunk_start - self._overlap)
            high = min(len(data), chunk_start + step)
            chunk = data[low:high]
            for form_index in self._set.Match(chunk) or ():
                pattern = self._patterns[form_index]
                position, budget = 0, _RE2_HITS_PER_CHUNK
                while position <= len(chunk) and budget:
                    budget -= 1
                    found = pattern.search(chunk, position)
                    if found is None:
                        break
                    start, end = found.span()
                    if low + end < high or high == len(data):  # a cut match: the next chunk
                        hits.add((form_index, low + end))  # sees it whole, in its overlap
                    # Restart just after the match's start: boundaries consume one character,
                    # and two keys may share the space between them.
                    position = max(start + 1, end - 1)
        return sorted(hits, key=lambda hit: hit[1])


class Lookout:
    """Which of many short values hold a suspicious literal (filters.SUSPICIOUS_LITERALS).

    One Hyperscan pass over all values joined by NUL, so that the filters those literals cover
    run only for the values that hold one: most keys hold none. `wakes` gives each literal the
    bits of the filters it may make fire (filters.LITERAL_WAKES); `woken` ORs them per value.
    """

    def __init__(
        self, literals: Sequence[tuple[str, bool]], wakes: Sequence[int] | None = None
    ) -> None:
        import hyperscan

        self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._database.compile(
            expressions=[re.escape(text).encode("ascii") for text, _ in literals],
            ids=list(range(len(literals))),
            elements=len(literals),
            flags=[hyperscan.HS_FLAG_CASELESS if caseless else 0 for _, caseless in literals],
        )
        self._wakes = list(wakes) if wakes is not None else [1] * len(literals)
        self._local = threading.local()
        self._scratch_type: Any = hyperscan.Scratch

    def flagged(self, values: Sequence[bytes]) -> list[bool]:
        return [woken != 0 for woken in self.woken(values)]

    def woken(self, values: Sequence[bytes]) -> list[int]:
        """Per value: the OR of the wakes of the literals it holds (0: it holds none)."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch_type(self._database)
        starts, position = [], 0
        for value in values:
            starts.append(position)
            position += len(value) + 1
        result = [0] * len(values)
        wakes = self._wakes

        def on_match(index: int, _start: int, end: int, _flags: int, _context: Any) -> None:
            result[bisect.bisect_right(starts, end - 1) - 1] |= wakes[index]

        if values:
            self._database.scan(b"\0".join(values), match_event_handler=on_match, scratch=scratch)
        return result


def lookout() -> Lookout | None:
    """The shared Lookout, or None without Hyperscan (then every filter runs)."""
    return _lookout() if "hyperscan" in available_engines() else None


@cache
def _lookout() -> Lookout:
    from bot.detection.filters import LITERAL_WAKES, SUSPICIOUS_LITERALS

    return Lookout(SUSPICIOUS_LITERALS, LITERAL_WAKES)


def _cache_file(expressions: list[bytes], cache_dir: Path) -> Path:
    import hyperscan

    version = str(getattr(hyperscan, "__version__", "")).encode()
    digest = hashlib.sha256(version + b"\0" + b"\0".join(expressions))
    return cache_dir / f"hyperscan-{digest.hexdigest()[:32]}.db"


def _load(expressions: list[bytes], cache_dir: Path | None) -> Any:
    import hyperscan

    if cache_dir is None:
        return None
    try:
        blob = _cache_file(expressions, cache_dir).read_bytes()
        return hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
    except (OSError, hyperscan.error):  # absent, or built for another CPU: compile again
        return None


def _compile(expressions: list[bytes], cache_dir: Path | None) -> Any:
    import hyperscan

    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[0] * len(expressions),
    )
    if cache_dir is not None:
        target = _cache_file(expressions, cache_dir)
        partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(hyperscan.dumpb(database))
            partial.replace(target)  # atomic: a reader never sees half a file
        except OSError:
            partial.unlink(missing_ok=True)  # a read-only cache only costs the compile time
    return database


_WIDE_REPEAT = re.compile(r"\{(\d+),(\d+)\}")


def _re2_pattern(pattern: str) -> str:
    """RE2 refuses counts above 1000; it is linear-time anyway, so a wide count becomes open."""
    return _WIDE_REPEAT.sub(lambda m: f"{{{m[1]},}}" if int(m[2]) > 1000 else m[0], pattern)


@cache
def _hyperscan(rules: tuple[Rule, ...], cache_dir: Path | None) -> HyperscanScanner:
    return HyperscanScanner(rules, cache_dir)


@cache
def _re2(rules: tuple[Rule, ...]) -> Re2Scanner:
    return Re2Scanner(rules)
