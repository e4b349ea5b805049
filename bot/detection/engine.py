"""The detector: one multi-pattern pass, short confirmations, named filters, then matches.

    hits = scanner.ends(bytes)             # linear: Hyperscan (or RE2) over the whole input
    for each hit: re.match from a keyword  # bounded: within the rule's width before the end
                  (or re.search there, for a value named after it: `pattern_after`)
    filters, checksum, `near` context      # per candidate, on the candidate only
    overlaps resolved, offsets mapped      # bytes -> characters, lines, columns

No regex with backtracking ever runs over unbounded input, so no text makes a scan slow.
`Detector` is immutable after construction and safe to share between threads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, TypedDict

from bot.detection.checksums import CHECKSUMS
from bot.detection.filters import EVERY, woken_chain
from bot.detection.fingerprint import Fingerprinter
from bot.detection.masking import mask
from bot.detection.rules import Rule, default_rules
from bot.detection.scanners import Scanner, lookout, scanner_for
from bot.detection.types import Match, Severity

Engine = Literal["auto", "hyperscan", "re2"]
KEPT = "kept"
_BEFORE = 64  # characters before a candidate that filters may look at
_TRUNCATION_MARKS = (b"...", "…".encode(), b"\\u2026")  # the last as JSON writes "…"
# At most this many hits per rule in each 64 KiB of input (one per 128 bytes). Real text holds a
# few keys per page, and even a log with a token on every line has longer lines; a flood of
# look-alikes (`password=abcdefgh1 ` repeated for megabytes) is hostile input.
_BLOCK_BITS = 16
_HITS_PER_BLOCK = 512
_SEARCHABLE = 160  # patterns this short may be searched whole when no keyword starts them
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")  # the values the Lookout vouches for


@dataclass(frozen=True)
class Candidate:
    """A pattern match and what became of it: `verdict` is "kept" or the reason it was dropped."""

    rule_id: str
    provider: str
    severity: Severity
    start: int
    end: int
    line: int
    column: int
    end_column: int
    preview: str
    verdict: str

    @property
    def kept(self) -> bool:
        return self.verdict == KEPT


@dataclass(frozen=True, slots=True)
class _Form:
    """One pattern of a rule, as the engine runs it: `pattern`, or `pattern_after`."""

    rule: int  # index in Detector.rules
    confirm: re.Pattern[bytes]  # the pattern, anchored at the hit's end
    keywords: tuple[bytes, ...]
    caseless: bool
    width: int
    after: bool  # the match ends at the name, after the value: no keyword starts it


@dataclass(slots=True)
class _Found:
    rule: Rule
    start: int  # byte offsets of the secret
    end: int
    secret: str
    verdict: str


class Detector:
    """Finds credentials in text. Build once (`Detector.default(fp)`), call `scan()` anywhere."""

    def __init__(
        self,
        rules: tuple[Rule, ...],
        fingerprinter: Fingerprinter,
        engine: Engine = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.rules = rules
        self._fingerprinter = fingerprinter
        self._scanner: Scanner = scanner_for(rules, engine, cache_dir)
        self._forms = [
            _Form(
                index,
                re.compile(f"(?:{pattern})\\Z".encode("ascii")),
                *_keywords(rule),
                width=rule.width_after if after else rule.width,
                after=bool(after),
            )
            for index, rule in enumerate(rules)
            for after, pattern in enumerate(rule.forms)
        ]
        # per rule, by the COVERED filters a value may wake: as filters.first_reason runs them
        self._chains = [tuple(woken_chain(rule, w) for w in range(EVERY + 1)) for rule in rules]
        self._lookout = lookout() if self._scanner.name == "hyperscan" else None

    @classmethod
    def default(
        cls, fingerprinter: Fingerprinter, engine: Engine = "auto", cache_dir: Path | None = None
    ) -> Detector:
        """The bundled rules.yaml; `engine` forces Hyperscan or RE2 (tests run both).

        `cache_dir` (e.g. settings.data_dir / "cache") keeps the compiled Hyperscan database
        between processes: about a second saved at every start.
        """
        return cls(default_rules(), fingerprinter, engine, cache_dir)

    @property
    def engine(self) -> str:
        return self._scanner.name

    def scan(self, text: str) -> list[Match]:
        """Every credential in `text`, in order of position; offsets in characters."""
        data = _encode(text)
        found = [f for f in self._candidates(data) if f.verdict == KEPT]
        if not found:  # most documents: nothing to place
            return []
        return [
            Match(
                rule_id=item.rule.id,
                provider=item.rule.provider,
                name=item.rule.name,
                severity=item.rule.severity,
                **place,
                fingerprint=self._fingerprinter.of(item.secret),
                secret=item.secret,
            )
            for item, place in _placed(text, data, found)
        ]

    def explain(self, text: str) -> list[Candidate]:
        """Every candidate with its verdict: why a value was or was not reported."""
        data = _encode(text)
        return [
            Candidate(
                rule_id=item.rule.id,
                provider=item.rule.provider,
                severity=item.rule.severity,
                **place,
                verdict=item.verdict,
            )
            for item, place in _placed(text, data, self._candidates(data))
        ]

    def _candidates(self, data: bytes) -> list[_Found]:
        hits = self._scanner.ends(data)
        if not hits:
            return []
        spans: dict[tuple[int, int, int], None] = {}
        last_end: dict[int, int] = {}  # per form: end of the last secret taken
        budget: dict[tuple[int, int], int] = {}  # per form and block of the input: hits left
        for form_index, end in hits:
            block = (form_index, end >> _BLOCK_BITS)
            left = budget.get(block, _HITS_PER_BLOCK)
            if left == 0:
                continue  # a flood of overlapping look-alikes: hostile input, not secrets
            budget[block] = left - 1
            form = self._forms[form_index]
            span = _locate(form, data, end)
            if span is not None and span[0] >= last_end.get(form_index, -1):
                last_end[form_index] = span[1]
                spans[(form.rule, *span)] = None  # both forms of a rule may find one value
        # A value repeated in the same surroundings is judged once (`near` looks further: its
        # rules judge each place).
        ordered = sorted(spans, key=lambda s: (s[1], s[2]))
        rules = self.rules
        places = [self._key(rule_index, data, start, end) for rule_index, start, end in ordered]
        keys: dict[tuple[int, bytes, bytes, bool, int], tuple[int, int]] = {}
        for key, (_, start, end) in zip(places, ordered, strict=True):
            keys.setdefault(key, (start, end))
        woken = self._suspicious([key[1] for key in keys])
        verdicts: dict[tuple[int, bytes, bytes, bool, int], tuple[str, str]] = {}
        for (key, (start, end)), wakes in zip(keys.items(), woken, strict=True):
            secret = key[1].decode("utf-8", "replace")
            verdict = self._judge(key[0], secret, key[2], data, start, end, key[3], wakes)
            verdicts[key] = (secret, verdict)
        found = []
        for key, (rule_index, start, end) in zip(places, ordered, strict=True):
            secret, verdict = verdicts[key]
            found.append(_Found(rules[rule_index], start, end, secret, verdict))
        _resolve_overlaps(found)
        return found

    def _key(
        self, rule_index: int, data: bytes, start: int, end: int
    ) -> tuple[int, bytes, bytes, bool, int]:
        """What a verdict depends on: the value, the text before it, a cut after it."""
        before = data[max(0, start - _BEFORE) : start]  # filters may read it
        cut = data[end : end + 6].startswith(_TRUNCATION_MARKS)
        place = start if self.rules[rule_index].near is not None else -1
        return (rule_index, data[start:end], before, cut, place)

    def _suspicious(self, values: list[bytes]) -> list[int]:
        """Per value, the COVERED filters it may wake (filters.WAKES); all, without Hyperscan."""
        if self._lookout is None or not values:
            return [EVERY] * len(values)
        plain = [_PRINTABLE.fullmatch(value) is not None for value in values]
        woken = iter(self._lookout.woken([v for v, p in zip(values, plain, strict=True) if p]))
        return [next(woken) if p else EVERY for p in plain]

    def _judge(
        self,
        rule_index: int,
        secret: str,
        raw_before: bytes,
        data: bytes,
        start: int,
        end: int,
        cut: bool,
        woken: int = EVERY,
    ) -> str:
        rule = self.rules[rule_index]
        before = raw_before.decode("utf-8", "replace")
        filters = self._chains[rule_index][woken]
        for candidate_filter in filters:
            if candidate_filter(secret, rule, before):
                return candidate_filter.__name__
        if cut:
            return "is_masked_or_truncated"  # the first half of a key, cut short in a message
        if rule.checksum is not None and not CHECKSUMS[rule.checksum].is_valid(secret):
            return "has_bad_checksum"
        if rule.near is not None:
            low, high = max(0, start - rule.near.within), end + rule.near.within
            window = data[low:high].decode("utf-8", "replace")
            if rule.near.pattern.search(window) is None:
                return "lacks_context"
        return KEPT


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from a broken export) keeps its place
        return text.encode("utf-8", "surrogatepass")


def _locate(form: _Form, data: bytes, end: int) -> tuple[int, int] | None:
    """The secret's byte span in the match that ends at `end`, read from a short window.

    Matches start at one of the rule's keywords: try their occurrences from the nearest
    back, so the work per hit is a few anchored matches, not a search of the whole width.
    A value named after it (`pattern_after`) starts the match itself: the window is searched,
    and it is short (a value and at most a line's tail).
    """
    low = max(0, end - form.width)
    if form.after:
        found = form.confirm.search(data, low, end)
        return None if found is None else found.span("secret")
    keywords, confirm = form.keywords, form.confirm
    window = data[low:end].lower() if form.caseless else data[low:end]
    if len(keywords) == 1:  # most rules: the same walk as below, without the bookkeeping
        keyword = keywords[0]
        offset = window.rfind(keyword)
        while offset >= 0:
            start = low + offset
            for position in (start - 1, start) if start else (start,):
                found = confirm.match(data, position, end)
                if found is not None:
                    return found.span("secret")
            offset = window.rfind(keyword, 0, offset)
        keywords = ()
    nearest = {keyword: window.rfind(keyword) for keyword in keywords}
    while nearest:
        keyword, offset = max(nearest.items(), key=lambda item: item[1])
        if offset < 0:
            break
        start = low + offset
        # the pattern may begin with the boundary character before the keyword
        for position in (start - 1, start) if start else (start,):
            found = confirm.match(data, position, end)
            if found is not None:
                return found.span("secret")
        nearest[keyword] = window.rfind(keyword, 0, offset)
    if form.width <= _SEARCHABLE:  # a short pattern whose keyword sits inside the match
        found = confirm.search(data, low, end)
        if found is not None:
            return found.span("secret")
    return None


def _keywords(rule: Rule) -> tuple[tuple[bytes, ...], bool]:
    """The rule's keywords as bytes, and whether to look for them in any case."""
    caseless = "(?i" in rule.pattern
    words = (k.lower() if caseless else k for k in rule.keywords)
    return tuple(word.encode("ascii") for word in words), caseless


def _resolve_overlaps(found: list[_Found]) -> None:
    """Where kept candidates overlap, the higher priority (then the longer) keeps its verdict.

    Candidates are swept in order of start into clusters that overlap one another; only within
    a cluster (a handful of candidates) are they compared, so the work stays near linear.
    """
    if len(found) < 2:
        return
    kept = [f for f in found if f.verdict == KEPT]  # `found` comes in order of (start, end)
    cluster: list[_Found] = []
    cluster_end = -1
    for item in kept:
        if item.start >= cluster_end and cluster:
            _pick_winners(cluster)
            cluster = []
        cluster.append(item)
        cluster_end = max(cluster_end, item.end) if len(cluster) > 1 else item.end
    _pick_winners(cluster)


def _pick_winners(cluster: list[_Found]) -> None:
    if len(cluster) < 2:
        return
    cluster.sort(key=lambda f: (-f.rule.priority, -(f.end - f.start), f.start, f.rule.id))
    taken: list[_Found] = []
    for item in cluster:
        winner = next((t for t in taken if item.start < t.end and t.start < item.end), None)
        if winner is None:
            taken.append(item)
        else:
            item.verdict = f"overlaps_{winner.rule.id}"


class _Place(TypedDict):
    start: int
    end: int
    line: int
    column: int
    end_column: int
    preview: str


def _placed(text: str, data: bytes, found: list[_Found]) -> list[tuple[_Found, _Place]]:
    """Each candidate with where it is in `text` (characters, 1-based lines and columns) and
    its masked preview: what a Match and a Candidate have in common."""
    positions = _Positions(text, data, [p for f in found for p in (f.start, f.end)])
    placed = []
    for item in found:
        start, end = positions.char(item.start), positions.char(item.end)
        line, column = positions.line_column(start)
        place = _Place(start=start, end=end, line=line, column=column,
                       end_column=positions.line_column(end)[1], preview=mask(item.secret))
        placed.append((item, place))
    return placed


class _Positions:
    """Maps byte offsets to character offsets, lines and columns, for the offsets asked for.

    Work is proportional to the input once, plus the number of offsets: pure-ASCII text maps
    one to one; otherwise the text between consecutive offsets is decoded once.
    """

    def __init__(self, text: str, data: bytes, offsets: list[int]) -> None:
        ordered = sorted(set(offsets))
        self._chars: dict[int, int] = {}
        if len(data) != len(text):
            previous_byte = previous_char = 0
            for offset in ordered:
                previous_char += len(data[previous_byte:offset].decode("utf-8", "surrogatepass"))
                previous_byte = offset
                self._chars[offset] = previous_char
        self._places: dict[int, tuple[int, int]] = {}
        line, line_start, previous = 1, 0, 0
        if len(data) == len(text):  # ASCII: its bytes are its characters, and count faster
            count, rfind = partial(data.count, b"\n"), partial(data.rfind, b"\n")
        else:
            count, rfind = partial(text.count, "\n"), partial(text.rfind, "\n")
        for position in (self.char(offset) for offset in ordered):
            newlines = count(previous, position)
            if newlines:
                line += newlines
                line_start = rfind(previous, position) + 1
            self._places[position] = (line, position - line_start + 1)
            previous = position

    def char(self, byte_offset: int) -> int:
        return self._chars.get(byte_offset, byte_offset)

    def line_column(self, position: int) -> tuple[int, int]:
        """1-based line and column of a character offset given to the constructor (as bytes)."""
        return self._places[position]
