"""Every rule's examples are found as that rule; its counterexamples are not."""

from __future__ import annotations

import pytest

from bot.detection.engine import Detector
from bot.detection.fakes import expand, fake_secret
from bot.detection.rules import default_rules

RULES = default_rules()
EXAMPLES = [
    pytest.param(rule.id, template, seed, id=f"{rule.id}-{index}-{seed}")
    for rule in RULES
    for index, template in enumerate(rule.examples)
    for seed in (0, 1, 2)
]
COUNTEREXAMPLES = [
    pytest.param(rule.id, template, id=f"{rule.id}-{index}")
    for rule in RULES
    for index, template in enumerate(rule.counterexamples)
]


@pytest.mark.parametrize(("rule_id", "template", "seed"), EXAMPLES)
def test_example_is_found_as_its_rule(
    detector: Detector, rule_id: str, template: str, seed: int
) -> None:
    text = expand(template, rule_id, seed)
    found = [m for m in detector.scan(text) if m.rule_id == rule_id]
    assert found, [(c.rule_id, c.verdict) for c in detector.explain(text)]
    secret = fake_secret(rule_id, seed)
    if secret in text:  # the match is the fake, or the secret inside it (a key file's key)
        at = text.index(secret)
        assert any(at <= m.start and m.end <= at + len(secret) for m in found)
        for match in found:
            assert text[match.start : match.end] == match.secret


@pytest.mark.parametrize(("rule_id", "template"), COUNTEREXAMPLES)
def test_counterexample_is_not_found(detector: Detector, rule_id: str, template: str) -> None:
    text = expand(template, rule_id, 0)
    assert [m.rule_id for m in detector.scan(text) if m.rule_id == rule_id] == []


def test_every_fake_is_reported_alone_as_its_rule(detector: Detector) -> None:
    for rule in RULES:
        context = rule.pattern[: rule.pattern.index("(?P<secret>")]
        if rule.generic or rule.near or "://" in context or '"' in context:
            continue  # a bare value without its keyword or context is not a finding, by design
        secret = fake_secret(rule.id, 7)
        assert [m.rule_id for m in detector.scan(f"value: {secret}\n")] == [rule.id], rule.id
