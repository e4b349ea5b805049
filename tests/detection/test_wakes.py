"""The Lookout's per-filter wakes: a COVERED filter is skipped only where it could not fire."""

from __future__ import annotations

import random

import pytest

from bot.detection.fakes import fake_secret, fill
from bot.detection.filters import COVERED, EVERY, FILTERS, WAKES, first_reason
from bot.detection.rules import default_rules
from bot.detection.scanners import lookout

RULES = {rule.id: rule for rule in default_rules()}
SAMPLES = [
    "sk-proj-abc…wxyz", "YOUR_API_KEY_HERE", "${TOKEN}", "aaaaaaaaaaaa", "changeme1",
    "xoxb-not-a-real-token", "Zq3mZZZZZZx", "p@ssw0rd####", "my-key-here", "k3y...Zq9",
    "Ab9xXxXxXq2", "Zq9<value>Kp2", "%APP_SECRET%", "9876543210Kq", "Rt5***Lm8", "Qw8demoZp3fake",
]  # fmt: skip


@pytest.mark.skipif(lookout() is None, reason="Hyperscan is not installed")
def test_each_covered_filter_fires_only_where_its_own_literals_woke_it() -> None:
    rng = random.Random(7)
    for rule in RULES.values():
        values = SAMPLES + [fill(rule.fake, rng) for _ in range(40)]
        values += [fake_secret(rule.id, seed) for seed in range(3)]
        values += [rule.prefix + tail for tail in ("xxxxxxxxxxxx", "abcdefghijkl", "1234567890")]
        # the engine looks out in printable ASCII values only (others run every filter)
        values = [value for value in values if value.isascii() and value.isprintable()]
        woken = lookout().woken([v.encode() for v in values])  # type: ignore[union-attr]
        for value, wakes in zip(values, woken, strict=True):
            for name in COVERED:
                if FILTERS[name](value, rule, ""):
                    assert wakes & WAKES[name], (name, value)
            assert first_reason(value, rule, "", wakes) == first_reason(value, rule, ""), value


@pytest.mark.skipif(lookout() is None, reason="Hyperscan is not installed")
def test_values_holding_no_literal_wake_nothing_and_marks_wake_their_own_filter() -> None:
    woken = lookout().woken([b"Kq7Zp2Wm9Lx4", b"Kq7Zp2{{Wm9}}", b"Kq7...Zp2", b"Kq7aaaaaaZp"])  # type: ignore[union-attr]
    assert woken[0] == 0
    assert woken[1] == WAKES["is_template_variable"]
    assert woken[2] == WAKES["is_masked_or_truncated"]
    assert woken[3] == WAKES["is_repeated_or_sequential"]
    assert first_reason("Kq7Zp2Wm9Lx4", RULES["openai_project_key"], "", True) == first_reason(
        "Kq7Zp2Wm9Lx4", RULES["openai_project_key"], "", EVERY
    )
