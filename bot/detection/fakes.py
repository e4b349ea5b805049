"""Format-valid fake credentials, built at run time so that no real-looking key is ever committed.

`fake_secret(rule_id, seed)` expands the rule's `fake:` template from rules.yaml: literal text,
plus `{charset:n}` for n random characters of a named charset. The result gets the rule's
checksum (so it verifies), and is redrawn until no filter would drop it. The same (rule, seed)
always gives the same fake; different seeds give different fakes.

`expand(template, rule_id, seed)` fills example templates: `{secret}` is this rule's fake,
`{secret:other_rule}` another rule's, `{charset:n}` random characters.
"""

from __future__ import annotations

import random
import re
import string
from functools import cache

from bot.detection.checksums import CHECKSUMS
from bot.detection.filters import first_reason
from bot.detection.rules import Rule, default_rules

CHARSETS = {
    "alnum": string.ascii_letters + string.digits,
    "alnum_": string.ascii_letters + string.digits + "_-",  # base64url
    "b64": string.ascii_letters + string.digits + "+/",
    "hex": string.digits + "abcdef",
    "HEX": string.digits + "ABCDEF",
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "letters": string.ascii_letters,
    "digits": string.digits,
    "b32": string.ascii_uppercase + "234567",
    "bech32": "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
    "loweralnum": string.ascii_lowercase + string.digits,
    "upperalnum": string.ascii_uppercase + string.digits,
}
_PLACEHOLDER = re.compile(
    r"\{(?:(?P<charset>[A-Za-z_0-9]+):(?P<count>\d+)|secret(?::(?P<rule>[a-z0-9_]+))?)\}"
)


def fake_secret(rule_id: str, seed: int = 0) -> str:
    """A fake for `rule_id` that the detector reports; deterministic per seed."""
    return _fake(_rules_by_id()[rule_id], seed)


def expand(template: str, rule_id: str, seed: int = 0) -> str:
    """Fill an example template from rules.yaml (see the module docstring)."""
    rng = random.Random(f"{rule_id}/example/{seed}")

    def placeholder(found: re.Match[str]) -> str:
        if found["charset"]:
            return _draw(rng, found["charset"], int(found["count"]))
        return fake_secret(found["rule"] or rule_id, seed)

    return _PLACEHOLDER.sub(placeholder, template)


@cache
def _rules_by_id() -> dict[str, Rule]:
    return {rule.id: rule for rule in default_rules()}


@cache
def _fake(rule: Rule, seed: int) -> str:
    for attempt in range(1000):
        value = fill(rule.fake, random.Random(f"{rule.id}/{seed}/{attempt}"))
        if rule.checksum is not None:
            value = CHECKSUMS[rule.checksum].apply(value)
        if first_reason(value, rule, "") is None:
            return value
    raise ValueError(f"rule {rule.id}: its fake template never passes the filters")


def fill(template: str, rng: random.Random) -> str:
    """The template's {charset:n} placeholders filled from `rng`; no checksum, no redraw."""
    return _PLACEHOLDER.sub(
        lambda found: _draw(rng, found["charset"], int(found["count"])), template
    )


def _draw(rng: random.Random, charset: str, count: int) -> str:
    try:
        alphabet = CHARSETS[charset]
    except KeyError:
        raise ValueError(f"unknown charset {charset!r} in a fake template") from None
    return "".join(rng.choice(alphabet) for _ in range(count))
