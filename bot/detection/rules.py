"""Credential rules: records loaded from rules.yaml and validated when they load.

A rule is data (see the header of rules.yaml for what each field means). Loading checks every
record: required fields, unique ids, a pattern that compiles and is bounded (no `*`, `+` or open
`{n,}`, so that confirming a candidate reads a short window only), a known severity, filter and
checksum names that exist. A broken rules file fails at start, never in the middle of a scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from bot.detection.checksums import CHECKSUMS
from bot.detection.types import Severity

RULES_FILE = "rules.yaml"
MAX_WIDTH = 20_000  # the longest a match may be: a 4096-bit RSA key in PEM is about 3,300
_ID = re.compile(r"^[a-z][a-z0-9_]*$")

# Boundaries written in patterns as %B% (start of a token) and %E% (end of a token): one spelling
# for Hyperscan, RE2 and Python `re`, none of which share lookarounds. Hyperscan accepts `^` only
# at the very start of a pattern; elsewhere %B% is just "a character that is not in a token".
_TOKEN_CHARS = r"A-Za-z0-9_\-"
_LEADING_B = f"(?:^|[^{_TOKEN_CHARS}])"
# Words that join a value to a name written after it: "VALUE is the staging password".
_LINKS = r"(?i:that[^ \t\n]{0,3}s|that is|which is|it[^ \t\n]{0,3}s|is|as|was|for)"
_MARK = r"""[^A-Za-z0-9\s"'./+=~_:)\]}-]"""  # not in a value, no assignment, not closing
_MARKS = r"""[^A-Za-z0-9\s"'=:]"""
_MACROS = {
    "%B%": f"[^{_TOKEN_CHARS}]",
    "%E%": f"(?:[^{_TOKEN_CHARS}]|$)",
    # up to 80 characters on the line, or the start of one of the next two lines, where
    # indentation does not count (a nested YAML "value:" sits deep); the indentation is spelt so
    # that it can be read one way only, which keeps Python's confirmation short
    "%NEAR%": r"[^\n]{0,80}?(?:\n[ \t]{0,40}(?:[^ \t\n][^\n]{0,15}?)?){0,2}",
    # key = value; key: value; key => value; map["key"] = value; "the password for staging is
    # value"; and a key named in a sibling field: <add key="api_key" value="…"/>, {"name":
    # "API_KEY", "value": "…"}, the next line's value in a Kubernetes env list (- name: KEY /
    # value: …)
    "%ASSIGN%": r"""(?:["']?\]?[ \t]{0,3}(?:=|:|=>|:=)[ \t]{0,3}["']?"""
    r"|[ \t]{1,3}(?:[A-Za-z][A-Za-z-]{0,19}[ \t]{1,3}){0,4}?(?:is|was)[ \t]{1,3}[\"']?"
    r"""|["']?(?:[ \t]{1,3}|[ \t]{0,3},[ \t]{0,3}|[ \t]{0,3}\r?\n[ \t]{0,40}-?[ \t]{0,3})"""
    r"""["']?[Vv]alue["']?[ \t]{0,3}[:=][ \t]{0,3}["']?)""",
    # after a name that follows its value: the name is not itself a key given a value, as
    # MISTRAL_API_KEY is in "DEEPINFRA_KEY=… MISTRAL_API_KEY=…" (the rest of the identifier,
    # then a next word, a mark or the end of the line, but no `=` or `:`)
    "%UNASSIGNED%": r"""[A-Za-z0-9_.-]{0,20}["']?(?:[ \t]{1,3}[^\s=:]|[^\sA-Za-z0-9_.=:"'-]"""
    r"|[ \t]{0,3}(?:\r?\n|$))",
    # after the value, later on the same line (within 40 characters), the start of a word
    "%AFTER%": rf"[^{_TOKEN_CHARS}+/=\n](?:[^\n]{{0,38}}[^A-Za-z\n])?",
    # after the value, a short phrase that names it: a linking word ("VALUE is the staging
    # password", "use VALUE as the api key") or a mark set off by a space ("VALUE (our api key)",
    # "VALUE, that's the api key", "VALUE # api key"), then up to three words. Not `:` or `=`,
    # which make the value a key name itself ("user:password", "_comment": "password reset …")
    "%CALLED%": rf"""["']?(?:[ \t]{{1,3}}{_LINKS}[ \t]{{1,3}}"""
    rf"|(?:[ \t]{{1,3}}{_MARKS}{{1,4}}|{_MARK}{_MARKS}{{0,3}}[ \t])[ \t]{{0,3}}"
    rf"(?:{_LINKS}[ \t]{{1,3}})?)(?:[A-Za-z][A-Za-z-]{{0,19}}[ \t]{{1,3}}){{0,3}}?",
}


class RuleError(ValueError):
    """rules.yaml holds a record that cannot be used; the message names the rule and field."""


@dataclass(frozen=True)
class Near:
    """Text that must appear within `within` characters of a candidate (either side)."""

    pattern: re.Pattern[str]
    within: int


@dataclass(frozen=True)
class Rule:
    id: str
    provider: str
    name: str
    severity: Severity
    pattern: str  # with %B%/%E% expanded; the secret is the named group `secret`
    keywords: tuple[str, ...]
    entropy: float  # bits per character of the random part, below which a candidate is dropped
    prefix: str  # the fixed start of the secret, left out of the entropy
    checksum: str | None
    fake: str
    generic: bool  # prefix-less value: UUIDs, hashes, code and words are dropped
    skip_filters: tuple[str, ...]
    priority: int  # when candidates overlap, the higher priority wins, then the longer
    near: Near | None
    examples: tuple[str, ...]
    counterexamples: tuple[str, ...]
    width: int  # the longest text the pattern can match, in bytes
    # the same value named after it ("use VALUE as the Mistral key"): matches end at the name
    pattern_after: str | None = None
    width_after: int = 0

    @property
    def forms(self) -> tuple[str, ...]:
        """The patterns that find this rule's value: `pattern`, then `pattern_after` if any."""
        return (self.pattern,) if self.pattern_after is None else (self.pattern, self.pattern_after)

    @property
    def engine_pattern(self) -> str:
        """The pattern without group names, for the multi-pattern engines."""
        return _unnamed(self.pattern)

    @property
    def engine_forms(self) -> tuple[str, ...]:
        """Every form without group names, for the multi-pattern engines."""
        return tuple(map(_unnamed, self.forms))


def _unnamed(pattern: str) -> str:
    return pattern.replace("(?P<secret>", "(")


def load_rules(text: str | None = None) -> tuple[Rule, ...]:
    """Parse and validate rules; `text` defaults to the bundled rules.yaml."""
    if text is None:
        return default_rules()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: 8x faster
    document = yaml.load(text, Loader=loader)  # a safe loader either way
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RuleError("rules file must be a mapping with a `rules:` list")
    rules = tuple(_rule(record) for record in document["rules"])
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"rule id {rule.id!r} appears twice")
        seen.add(rule.id)
    return rules


@cache
def default_rules() -> tuple[Rule, ...]:
    return load_rules(resources.files(__package__).joinpath(RULES_FILE).read_text("utf-8"))


def _rule(record: Any) -> Rule:
    if not isinstance(record, dict):
        raise RuleError(f"each rule must be a mapping, got {record!r}")
    rule_id = record.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise RuleError(f"rule id must be lower_snake_case, got {rule_id!r}")

    def field(name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        value = record.get(name, default)
        if value is ...:
            raise RuleError(f"rule {rule_id}: missing field {name!r}")
        if not isinstance(value, kind):
            raise RuleError(f"rule {rule_id}: {name!r} has the wrong type: {value!r}")
        return value

    from bot.detection.filters import FILTERS  # filters import rules' types only at call time

    known = set(record) - _FIELDS
    if known:
        raise RuleError(f"rule {rule_id}: unknown fields {sorted(known)}")
    try:
        severity = Severity(field("severity", str))
    except ValueError:
        raise RuleError(f"rule {rule_id}: severity must be one of {list(Severity)}") from None
    pattern = _expand(field("pattern", str))
    width = _check_pattern(rule_id, pattern)
    pattern_after = field("pattern_after", (str, type(None)), None)
    width_after = 0
    if pattern_after is not None:
        pattern_after = _expand(pattern_after)
        width_after = _check_pattern(rule_id, pattern_after)
        if _secret_group(pattern_after) != _secret_group(pattern):
            raise RuleError(f"rule {rule_id}: pattern_after must capture the same secret group")
    checksum = field("checksum", (str, type(None)), None)
    if checksum is not None and checksum not in CHECKSUMS:
        raise RuleError(f"rule {rule_id}: unknown checksum {checksum!r}")
    skip = tuple(field("skip_filters", list, []))
    for name in skip:
        if name not in FILTERS:
            raise RuleError(f"rule {rule_id}: unknown filter {name!r} in skip_filters")
    examples = tuple(field("examples", list))
    if not examples:
        raise RuleError(f"rule {rule_id}: needs at least one example")
    keywords = tuple(field("keywords", list))
    if not keywords:
        raise RuleError(f"rule {rule_id}: needs at least one keyword")
    return Rule(
        id=rule_id,
        provider=field("provider", str),
        name=field("name", str),
        severity=severity,
        pattern=pattern,
        keywords=tuple(str(k) for k in keywords),
        entropy=float(field("entropy", (int, float))),
        prefix=field("prefix", str, ""),
        checksum=checksum,
        fake=field("fake", str),
        generic=field("generic", bool, False),
        skip_filters=skip,
        priority=field("priority", int, 0),
        near=_near(rule_id, record.get("near")),
        examples=tuple(str(e) for e in examples),
        counterexamples=tuple(str(e) for e in field("counterexamples", list, [])),
        width=width,
        pattern_after=pattern_after,
        width_after=width_after,
    )


_FIELDS = {
    "id", "provider", "name", "severity", "pattern", "keywords", "entropy", "prefix", "checksum",
    "fake", "generic", "skip_filters", "priority", "near", "examples", "counterexamples",
    "pattern_after",
}  # fmt: skip


def _expand(pattern: str) -> str:
    """The pattern with its macros (%B%, %NEAR%, …) written out."""
    if pattern.startswith("%B%"):
        pattern = _LEADING_B + pattern[3:]
    if pattern.startswith("%W%"):
        pattern = "(?:^|[^A-Za-z])" + pattern[3:]
    for macro, expansion in _MACROS.items():
        pattern = pattern.replace(macro, expansion)
    return pattern


def _secret_group(pattern: str) -> str:
    """The text of the (?P<secret>…) group, found by counting brackets."""
    start = pattern.find("(?P<secret>")
    depth, escaped, in_class = 0, False, False
    for position in range(max(start, 0), len(pattern)):
        char = pattern[position]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True  # our patterns escape a "]" inside a class
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pattern[start : position + 1]
    return ""


def _check_pattern(rule_id: str, pattern: str) -> int:
    try:
        compiled = re.compile(pattern.encode("ascii"))
    except (re.error, UnicodeEncodeError) as error:
        raise RuleError(f"rule {rule_id}: pattern does not compile: {error}") from None
    if "secret" not in compiled.groupindex:
        raise RuleError(f"rule {rule_id}: pattern needs a (?P<secret>...) group")
    if len(compiled.groupindex) != 1:
        raise RuleError(f"rule {rule_id}: pattern may name only the `secret` group")
    import re._parser as sre_parse  # the stdlib's own parser measures the widest match

    width = sre_parse.parse(pattern).getwidth()[1]
    if width > MAX_WIDTH:
        raise RuleError(f"rule {rule_id}: pattern is unbounded or wider than {MAX_WIDTH}")
    return int(width)


def _near(rule_id: str, record: Any) -> Near | None:
    if record is None:
        return None
    if not isinstance(record, dict) or set(record) != {"pattern", "within"}:
        raise RuleError(f"rule {rule_id}: near needs exactly `pattern` and `within`")
    try:
        return Near(re.compile(record["pattern"]), int(record["within"]))
    except re.error as error:
        raise RuleError(f"rule {rule_id}: near pattern does not compile: {error}") from None
