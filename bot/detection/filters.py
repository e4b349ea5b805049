"""Named predicates that drop candidates which match a pattern but are not secrets.

Each filter answers yes/no for one candidate; its name is the reason `Detector.explain()` gives
for a dropped candidate. Every rule runs COMMON; rules whose value has no prefix of its own
(`generic: true` in rules.yaml) also run GENERIC, since their pattern alone says little.
A rule can switch a filter off with `skip_filters` (e.g. Azure keys are 32 hex, like an MD5).

All filters are pure and look only at the candidate and the few characters before it. The
filters in COVERED can fire only on a value holding one of SUSPICIOUS_LITERALS; the engine finds
those for all candidates of a scan in one Hyperscan pass (scanners.Lookout) and runs the COVERED
filters only where one is found. The verdicts are the same either way (a test checks it).
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.detection.rules import Rule

Filter = Callable[[str, "Rule", str], bool]  # (secret, rule, text just before it) -> drop?

# SHA-256 prefixes of values published in providers' documentation, kept as hashes so that our
# own tree does not carry them: AWS's access key id and secret key, Stripe's shared test key,
# jwt.io's sample token, Slack's "not a real token", the OAuth 2.0 RFC's client credentials and
# the Firebase SDKs' sample keys.
_DOCUMENTATION_HASHES = frozenset(
    {
        "1a5d44a2dca19669d72edf4c4f1c27c4",
        "78314b11be2e581549ac1c4f616563fa",
        "2cafc0970149a84f3b9e62eaf169f36f",
        "7f75367e7881255134e1375e723d1dea",
        "f56e323494a6ffc2064e7a955908957d",
        "0e3fd41c01a697720785471d74558508",
        "ca7459e2b26776de081b9a07e40227fd",  # RFC 6749's Basic credentials (s6BhdRkqt3:…)
        # the sample API keys of the Firebase SDKs (the list gitleaks allow-lists)
        "2037abcaffb2b77785da716cf7ccff4f",
        "3f370c9dd8225c63b5c77de1f785edc9",
        "e4a5542bb7fd7b67e943c71ad29c34b5",
        "a19f89ab3555eac10c40741f6df79ecf",
        "0b476bdf9acf2123d547b5ae76f1e598",
        "eb540d2b6ee2a0a47c5779bc8a014178",
        "37f8f09bdf12c2f2eae4ead7273a62dd",
        "8731261cb72d86267a32a532ebd3df42",
        "49f777db995e8260da7ca9ffdf0c08d6",
        "27a9a42931dff7eb2f8434e20a9bce97",
        "dc0fcf046c61640cbd1e8b999ada3262",
        "4c98242dcadc8b29005c6b4aad526552",
        "ea9bb1082cf95663f5faca23b8b15ef2",
        "3a8b61d0f636b007840c0d40ba12bcf4",
        "a6c814bc555ae62c7bd8b58ec07bf559",
    }
)


def is_documentation_example(secret: str, rule: Rule, before: str) -> bool:
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]
    # AWS documents its samples with EXAMPLE in them; scanners allow-list any such value.
    return digest in _DOCUMENTATION_HASHES or "EXAMPLE" in secret


_MASK_MARKS = ("…", "...", "***", "####", "•", "●")


def is_masked_or_truncated(secret: str, rule: Rule, before: str) -> bool:
    return any(map(secret.__contains__, _MASK_MARKS)) or "xxxxx" in secret.lower()


_TEMPLATE = re.compile(
    r"\$\{|\{\{|\}\}|\$\(|%\(|^\$[A-Za-z_]|^%[A-Za-z_]\w*%$|^@[A-Za-z_]\w*@$|<[^<>]{1,60}>"
    r"|^\{[A-Za-z_]\w*\}$|^\[[A-Za-z_ -]+\]$"
)


_TEMPLATE_MARKS = frozenset("${}%@<[")


def is_template_variable(secret: str, rule: Rule, before: str) -> bool:
    if _TEMPLATE_MARKS.isdisjoint(secret):  # random keys never hold these: skip the regex
        return False
    return _TEMPLATE.search(secret) is not None


_ENV_CALL = re.compile(
    r"(?:environ|process\.env|getenv|ENV\[|env\(|secrets\.|vault:|ssm:|Secret\.)", re.IGNORECASE
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")  # OPENAI_API_KEY: a name, not a value


_SETS = re.compile(r"(?<![=!<>])=(?!=)")  # an assignment, not a comparison


def is_env_reference(secret: str, rule: Rule, before: str) -> bool:
    """A read of the environment (os.environ["KEY"], getenv("KEY")), not a literal.

    A literal assigned to it (os.environ["API_KEY"] = "…") is a literal all the same.
    """
    if ("." in secret or "[" in secret or "(" in secret or ":" in secret) and _ENV_CALL.search(
        secret
    ):
        return True
    if not rule.generic:
        return False
    if _ENV_NAME.match(secret) is not None:
        return True
    near = before[-24:]
    calls = list(_ENV_CALL.finditer(near))
    return bool(calls) and _SETS.search(near, calls[-1].end()) is None


_LONG_WORDS = (
    "example", "placeholder", "changeme", "redacted", "replace", "insert", "dummy", "sample",
    "notreal", "your_", "yourkey", "yourtoken", "secretkey", "apikey", "mykey", "foobar",
    "password", "passwd",
)  # fmt: skip
_SHORT_WORDS = frozenset(
    {"your", "my", "key", "token", "here", "the", "fake", "test", "secret", "api", "xxx", "abc"}
    | {"foo", "bar", "demo", "not", "real", "put", "goes"}
)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_PLACEHOLDER_VALUES = frozenset(
    {"password", "passwd", "pass", "secret", "admin", "root", "test", "testing", "changeme"}
    | {"changeit", "default", "none", "null", "true", "false", "undefined", "empty", "token"}
    | {"apikey", "api_key", "key", "value", "string", "letmein", "qwerty", "password1"}
    | {"password123", "123456", "12345678", "admin123"}
)


def is_placeholder(secret: str, rule: Rule, before: str) -> bool:
    """Words in place of a random value: YOUR_API_KEY, sk-your-key-here, <token>, changeme."""
    body = _body(secret, rule)
    lowered = body.lower()
    core = lowered.strip(".:;!?").rstrip("0123456789")  # test123, admin1, password!
    if core in _PLACEHOLDER_VALUES or secret.lower() in _PLACEHOLDER_VALUES:
        return True
    if any(map(lowered.__contains__, _LONG_WORDS)):
        return True
    if len(body) > 64:  # long random bodies contain short words by chance
        return False
    words = map(str.lower, _WORD.findall(body))
    return sum(map(_SHORT_WORDS.__contains__, words)) >= 2


# Steps between neighbouring characters, as one byte each: 1 for +1 (ab, 34), 2 for -1 (ba),
# 3 for no change (aa), 0 otherwise. Five equal steps in a row make a run of six.
_STEP_CODES = [0] * 511
_STEP_CODES[1], _STEP_CODES[-1], _STEP_CODES[0] = 1, 2, 3
_RUNS_OF_SIX = (b"\x01" * 5, b"\x02" * 5, b"\x03" * 5)


def is_repeated_or_sequential(secret: str, rule: Rule, before: str) -> bool:
    """A run of one character, or of consecutive ones (abcdef, 654321), six long or more.

    Long values are looked at near both ends only: a placeholder shows its pattern at once,
    and a random body of thousands of characters holds such a run by chance now and then.
    """
    body = _body(secret, rule)
    if len(body) > 48:
        body = body[:32] + "\0" + body[-16:]
    codes = body.encode("latin-1", "replace")
    steps = bytes(map(_STEP_CODES.__getitem__, map(operator.sub, codes[1:], codes)))
    return any(map(steps.__contains__, _RUNS_OF_SIX))  # few distinct characters: low entropy


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`, from its own character frequencies."""
    total = len(text)
    if total == 0:
        return 0.0
    # H = log2(N) - sum(n * log2(n)) / N, with n * log2(n) from a table for short texts
    counts = Counter(text).values()
    if total < len(_N_LOG2_N):
        weighted = sum(map(_N_LOG2_N.__getitem__, counts))
    else:
        weighted = sum(n * math.log2(n) for n in counts)
    return max(0.0, math.log2(total) - weighted / total)


_N_LOG2_N = [0.0] + [n * math.log2(n) for n in range(1, 1025)]


def is_low_entropy(secret: str, rule: Rule, before: str) -> bool:
    # 512 characters are plenty to tell random from not (a PEM key has thousands)
    return shannon_entropy(_body(secret, rule)[:512]) < rule.entropy


_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def is_uuid(secret: str, rule: Rule, before: str) -> bool:
    return _UUID.match(secret) is not None


_HEX = re.compile(r"^(?:[0-9a-f]+|[0-9A-F]+)$")


def is_hash(secret: str, rule: Rule, before: str) -> bool:
    """MD5, SHA-1 (git commits), SHA-256, SHA-512 digests and 64-bit ids written in hex."""
    return len(secret) in (16, 32, 40, 64, 128) and _HEX.match(secret) is not None


_DIGEST_LABEL = re.compile(
    r"(?i:md5(?:sum)?|sha-?\d*(?:sum)?|hash|digest|checksum|commit|etag|fingerprint)\W{0,3}$"
)


def is_labelled_digest(secret: str, rule: Rule, before: str) -> bool:
    """A value introduced as a digest ("md5 …", "sha256: …", "commit …") is not a key."""
    return _DIGEST_LABEL.search(before[-20:]) is not None


_ID_LABEL = re.compile(
    r"(?i:client|tenant|request|trace|span|user|org|account|project|session|device|app)"
    r"[_ -]?id\W{0,3}$"
)


def is_labelled_identifier(secret: str, rule: Rule, before: str) -> bool:
    """A value introduced as an id ("client_id: …", "trace id …"): it names, it does not unlock."""
    return _ID_LABEL.search(before[-24:]) is not None


_CAMEL_WORD = re.compile(r"[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z])")
_VOWELS = frozenset("aeiouAEIOU")


def _word_coverage(value: str) -> float:
    """The share of `value` in words: three letters or more, with a vowel or in capitals."""
    words = [
        word
        for word in _CAMEL_WORD.findall(value)
        if len(word) > 2 and (word.isupper() or not _VOWELS.isdisjoint(word))
    ]
    return sum(map(len, words)) / len(value) if value else 0.0


def is_word_like(secret: str, rule: Rule, before: str) -> bool:
    """Mostly words, like AllowEc2InstancesWithEncryptedEbsVolumes: a name, not a random key.

    Words cover about a fifth of random base64; in 50,000 random values of 32 characters
    never more than 88 %.
    """
    if len(secret) < 24:
        return False
    covered = _word_coverage(secret)
    return covered >= 0.88 if len(secret) >= 32 else covered > 0.95


_NAME = re.compile(r"^[A-Za-z_][A-Za-z_.\-]*(?:\(\)?)?$")  # letters and _.- only: a name?
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")  # base64.b64decode, cfg.db_password
_CODE = re.compile(r"^(?:self|this|cls|config|settings|params|args|options|opts|env)\.|\(|\)$")


def is_code_reference(secret: str, rule: Rule, before: str) -> bool:
    """A name or expression, not a literal: get_token(), self.api_key, base64.b64decode.

    A value of letters only is a name when it reads as words (getCredentials, OPTIONAL);
    random letters rarely do, and keys without digits are not rare (1 in 70 of 24 characters).
    """
    word = secret.rstrip(".:;!?")  # a word at the end of a sentence, "OPTIONAL:"
    if _CODE.search(secret) or _DOTTED.match(word):
        return True
    if _NAME.match(word) is None:
        return False
    return _word_coverage(re.sub(r"[_.()-]", "", word)) >= 0.95


_PATH_STARTS = ("~/", "./", "../", "arn:", "http://", "https://", "s3://", "file://")
# an absolute path in lower case (/etc/app/key): random base64 may start with "/" too
_ABSOLUTE_PATH = re.compile(r"^(?:/[a-z0-9_.@-]+)+/?$")
_PATH_ENDS = (".pem", ".key", ".json", ".txt", ".yaml", ".yml", ".env", ".p12", ".crt")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:\\")


def is_file_path(secret: str, rule: Rule, before: str) -> bool:
    """A path, URL or resource name (arn:…) where a value was expected, or a segment of one."""
    token = before.rsplit(None, 1)[-1] if before.strip() else ""  # the word it continues
    return (
        before.endswith("/")
        or ("://" in token and not token.endswith(("=", ":")))  # in a URL, not a query value
        or token.lstrip("\"'(").startswith("arn:")  # a part of an AWS resource name
        or secret.startswith(_PATH_STARTS)
        or _ABSOLUTE_PATH.match(secret) is not None
        or secret.endswith(_PATH_ENDS)
        or _WINDOWS_PATH.match(secret) is not None
    )


_URL_USER = re.compile(r"//([^:/@\s]+):$")


def is_username_as_password(secret: str, rule: Rule, before: str) -> bool:
    """postgres://postgres:postgres@…: a local development default, not a leaked password."""
    user = _URL_USER.search(before)
    return user is not None and user.group(1) == secret


def _body(secret: str, rule: Rule) -> str:
    return secret[len(rule.prefix) :] if secret.startswith(rule.prefix) else secret


COMMON: tuple[Filter, ...] = (
    is_documentation_example,
    is_masked_or_truncated,
    is_template_variable,
    is_env_reference,
    is_placeholder,
    is_repeated_or_sequential,
    is_username_as_password,
    is_low_entropy,
)
GENERIC: tuple[Filter, ...] = (
    is_uuid,
    is_hash,
    is_labelled_digest,
    is_labelled_identifier,
    is_code_reference,
    is_file_path,
    is_word_like,
)
FILTERS: dict[str, Filter] = {f.__name__: f for f in (*COMMON, *GENERIC)}


def first_reason(secret: str, rule: Rule, before: str, suspicious: bool | int = True) -> str | None:
    """The name of the first filter that drops the candidate, or None to keep it.

    `suspicious=False` says the value holds none of SUSPICIOUS_LITERALS (a Hyperscan pass over
    all candidates finds that at once): the filters in COVERED cannot fire and are skipped.
    An int names those that can (bits of WAKES, from the literals found: LITERAL_WAKES).
    """
    woken = EVERY if suspicious is True else int(suspicious)
    for candidate_filter in woken_chain(rule, woken):
        if candidate_filter(secret, rule, before):
            return candidate_filter.__name__
    return None


@cache
def chain(rule: Rule) -> tuple[Filter, ...]:
    """The filters a rule runs, in order; entropy last, so the more specific reason comes first."""
    filters = (*COMMON[:-1], *GENERIC, COMMON[-1]) if rule.generic else COMMON
    return tuple(f for f in filters if f.__name__ not in rule.skip_filters)


@cache
def woken_chain(rule: Rule, woken: int) -> tuple[Filter, ...]:
    """The rule's chain without the COVERED filters whose bit is not set in `woken`."""
    return tuple(f for f in chain(rule) if f.__name__ not in WAKES or woken & WAKES[f.__name__])


# Filters that fire on a printable-ASCII value only when it holds one of these literals
# (caseless when the flag says so): the marks of masks and templates, placeholder words, runs.
COVERED = frozenset(
    {
        "is_masked_or_truncated",
        "is_template_variable",
        "is_placeholder",
        "is_repeated_or_sequential",
    }
)


# One bit per COVERED filter: which of them a literal may make fire.
WAKES = {name: 1 << bit for bit, name in enumerate(sorted(COVERED))}
EVERY = (1 << len(COVERED)) - 1


def _suspicious_literals() -> tuple[tuple[str, bool, int], ...]:
    placeholder = {*_LONG_WORDS, *_SHORT_WORDS, *_PLACEHOLDER_VALUES}
    words = {*placeholder, "xxxxx"}
    masks = {"...", "***", "####"}
    marks = {*masks, *_TEMPLATE_MARKS}
    printable = [chr(c) for c in range(0x20, 0x7F)]
    runs = {c * 6 for c in printable}
    runs |= {"".join(printable[i : i + 6]) for i in range(len(printable) - 5)}
    runs |= {run[::-1] for run in list(runs)}

    def wakes(text: str, caseless: bool) -> int:
        named = (
            ("is_placeholder", caseless and text in placeholder),
            ("is_masked_or_truncated", text == "xxxxx" if caseless else text in masks),
            ("is_template_variable", not caseless and text in _TEMPLATE_MARKS),
            ("is_repeated_or_sequential", not caseless and text in runs),
        )
        return sum(WAKES[name] for name, wakes in named if wakes)

    literals = [(w, True) for w in sorted(words)] + [(m, False) for m in sorted(marks | runs)]
    return tuple((text, caseless, wakes(text, caseless)) for text, caseless in literals)


_LITERALS = _suspicious_literals()
SUSPICIOUS_LITERALS = tuple((text, caseless) for text, caseless, _ in _LITERALS)
LITERAL_WAKES = tuple(wakes for _, _, wakes in _LITERALS)  # per literal: bits of WAKES
