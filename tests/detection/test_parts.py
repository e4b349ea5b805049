"""Filters, checksums, fakes, masking, fingerprints and rule validation, one by one."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.config import Settings
from bot.detection.checksums import CHECKSUMS
from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.filters import FILTERS, first_reason
from bot.detection.fingerprint import Fingerprinter, fingerprinter_from_settings
from bot.detection.masking import mask
from bot.detection.rules import RuleError, default_rules, load_rules
from bot.detection.scanners import lookout

RULES = {rule.id: rule for rule in default_rules()}
GENERIC = RULES["generic_api_key_assignment"]


def test_at_least_sixty_credential_types_with_unique_ids() -> None:
    assert len(RULES) == len(default_rules()) >= 60


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("${API_KEY}", "is_template_variable"),
        ("{{ api_key }}", "is_template_variable"),
        ("<your-api-key>", "is_template_variable"),
        ("process.env.OPENAI_KEY", "is_env_reference"),
        ("OPENAI_API_KEY_VALUE", "is_env_reference"),
        ("YOUR_API_KEY_GOES_HERE", "is_env_reference"),
        ("your-api-key-goes-here", "is_placeholder"),
        ("replace-with-your-key", "is_placeholder"),
        ("sk-proj-abc…wxyz", "is_masked_or_truncated"),
        ("abcd****************wxyz", "is_masked_or_truncated"),
        ("xxxxxxxxxxxxxxxxxxxxxxxx", "is_masked_or_truncated"),
        ("abcdefghijklmnop12", "is_repeated_or_sequential"),
        ("a1a1a1a1a1a1a1a1a1a1", "is_low_entropy"),
        ("Zq3mZZZZZZx", "is_repeated_or_sequential"),
        ("123e4567-e89b-12d3-a456-426614174000", "is_uuid"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "is_hash"),
        ("self.client_secret", "is_code_reference"),
        ("get_credentials()", "is_code_reference"),
        ("/etc/leakwatch/prod.pem", "is_file_path"),
    ],
)
def test_filters_drop_non_secrets_and_say_why(value: str, reason: str) -> None:
    assert first_reason(value, GENERIC, "api_key = ") == reason


def test_a_generated_key_passes_every_filter() -> None:
    for rule in RULES.values():
        assert first_reason(fake_secret(rule.id, 11), rule, "") is None, rule.id


def test_low_entropy_is_measured_against_the_rule_floor() -> None:
    assert FILTERS["is_low_entropy"]("aaaabbbbaaaabbbbaaaabbbb", GENERIC, "")
    assert not FILTERS["is_low_entropy"](fake_secret("generic_api_key_assignment"), GENERIC, "")


@pytest.mark.parametrize(
    ("rule_id", "value"),
    [
        ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
        # assembled here so that no other scanner trips on this file
        ("stripe_test_secret_key", "sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc"),
        ("google_api_key", "AIzaSy" + "AnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs"),
        (
            "jwt",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6y" + "JV_adQssw5c",
        ),
    ],
)
def test_documentation_examples_are_known(rule_id: str, value: str) -> None:
    assert first_reason(value, RULES[rule_id], "") == "is_documentation_example"


@pytest.mark.parametrize(
    "rule_id", sorted({r.id for r in RULES.values() if r.checksum is not None})
)
def test_checksum_accepts_fakes_and_rejects_a_changed_character(rule_id: str) -> None:
    checksum = CHECKSUMS[RULES[rule_id].checksum or ""]
    for seed in range(20):
        key = fake_secret(rule_id, seed)
        assert checksum.is_valid(key)
        if rule_id.startswith("gitlab") and "." not in key:
            continue  # legacy GitLab tokens carry no checksum
        changed = key[:-2] + ("0" if key[-2] != "0" else "1") + key[-1]
        assert not checksum.is_valid(changed)


def test_github_checksum_matches_the_published_scheme() -> None:
    # The test vector in reference/credentials.md, assembled so the file holds no token.
    body = "FAKEfake0123456789TESTtest0000"
    assert CHECKSUMS["github_crc32"].is_valid("ghp_" + body + "2Gg779")
    assert not CHECKSUMS["github_crc32"].is_valid("ghp_" + body + "000000")
    routable = "glpat-FAKEfakeTESTtest0123456789abcdefXY.01.0y" + "02dfxra"
    assert CHECKSUMS["gitlab_routable"].is_valid(routable)


def test_fakes_are_deterministic_and_differ_per_seed() -> None:
    for rule_id in RULES:
        assert fake_secret(rule_id, 1) == fake_secret(rule_id, 1)
        assert fake_secret(rule_id, 1) != fake_secret(rule_id, 2)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_mask_shows_at_most_a_quarter_of_the_random_part(rule_id: str) -> None:
    secret = fake_secret(rule_id, 9)
    preview = mask(secret)
    prefix, _, tail = preview.partition("…")
    assert secret.startswith(prefix) and secret.endswith(tail)
    assert len(tail) <= max(0, len(secret) - len(prefix)) // 4
    assert secret not in preview


@pytest.mark.parametrize("secret", ["hunter2", "abc", "x", "correct-horse"])
def test_short_secrets_show_less(secret: str) -> None:
    tail = mask(secret).partition("…")[2]
    assert len(tail) <= len(secret) // 4
    assert mask(secret).startswith("…")


def test_known_prefix_is_kept() -> None:
    assert mask(fake_secret("openai_project_key")).startswith("sk-proj-…")
    assert mask(fake_secret("private_key_pem")) == "-----BEGIN PRIVATE KEY-----…"


def test_fingerprint_is_hmac_and_depends_on_the_key() -> None:
    secret = fake_secret("slack_bot_token")
    one, other = Fingerprinter(b"one"), Fingerprinter(b"other")
    assert one.of(secret) == one.of(secret) != other.of(secret)
    assert len(one.of(secret)) == 64 and "one" not in repr(one)


def test_fingerprint_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite://", data_dir=tmp_path / "nested" / "data")
    first = fingerprinter_from_settings(settings)
    path = settings.fingerprint_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    secret = fake_secret("npm_token")
    assert fingerprinter_from_settings(settings).of(secret) == first.of(secret)


def test_fingerprint_key_from_settings_wins_over_the_file(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite://", data_dir=tmp_path, fingerprint_key="k" * 32)
    secret = fake_secret("npm_token")
    assert fingerprinter_from_settings(settings).of(secret) == Fingerprinter(b"k" * 32).of(secret)
    assert not settings.fingerprint_key_file.exists()


RULE = """
rules:
  - id: demo_token
    provider: Demo
    name: Demo token
    severity: high
    pattern: '%B%(?P<secret>demo_[a-z0-9]{20})%E%'
    keywords: [demo_]
    entropy: 3
    fake: 'demo_{loweralnum:20}'
    examples: ['{secret}']
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("severity: high", "severity: dire"), "severity"),
        (("{20})%E%", "{20,})%E%"), "unbounded"),
        (("(?P<secret>", "("), "secret"),
        (("(?P<secret>demo_", "(?P<secret>(demo_"), "compile"),
        (("    provider: Demo\n", ""), "provider"),
    ],
)
def test_broken_rules_fail_at_load(change: tuple[str, str], message: str) -> None:
    assert load_rules(RULE)[0].id == "demo_token"
    with pytest.raises(RuleError, match=message):
        load_rules(RULE.replace(*change))


def test_pattern_after_must_capture_the_same_value() -> None:
    after = "    pattern_after: '%B%(?P<secret>demo_[a-z0-9]{20})%AFTER%(?i:demo)%UNASSIGNED%'\n"
    rule = load_rules(RULE + after)[0]
    assert rule.pattern_after is not None and len(rule.forms) == 2
    assert rule.width_after > rule.width
    with pytest.raises(RuleError, match="same secret group"):
        load_rules(RULE + after.replace("{20}", "{21}"))


def test_duplicate_ids_fail_at_load() -> None:
    body = RULE.split("rules:\n", 1)[1]
    with pytest.raises(RuleError, match="twice"):
        load_rules("rules:\n" + body + body)


@pytest.mark.parametrize(
    ("rule_id", "text"),
    [
        ("aws_secret_key", '"arn:aws:iam::aws:policy/AmazonSSMManagedEC2InstanceDefaultPolicy"'),
        ("aws_secret_key", '"Sid": "AllowEc2InstancesWithEncryptedEbsVolumes" in the aws policy'),
        (
            "aws_secret_key",
            "see https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/EBSSnapshots.html",
        ),
        ("generic_password_assignment", 'data = {"userName": username, "password": password}'),
        ("generic_password_assignment", "username, _, password = base64.b64decode(rest)"),
        ("generic_api_key_assignment", '"AWS::IAM::AccessKey": "62d91b17309e76c8",'),
    ],
)
def test_names_paths_and_code_in_real_files_are_not_secrets(rule_id: str, text: str) -> None:
    detector = Detector.default(Fingerprinter(b"k"))
    assert [m.rule_id for m in detector.scan(text) if m.rule_id == rule_id] == []


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_random_keys_of_each_format_are_rarely_dropped(rule_id: str) -> None:
    # fake_secret redraws a fake that a filter drops; real keys get no second draw, so count
    # how many plain draws of the format the filters would lose (the recall cost of filters)
    import random

    from bot.detection.fakes import fill

    rule, rng = RULES[rule_id], random.Random(rule_id)
    checksum = CHECKSUMS[rule.checksum] if rule.checksum else None
    dropped = 0
    for _ in range(400):
        value = fill(rule.fake, rng)
        value = checksum.apply(value) if checksum else value
        dropped += first_reason(value, rule, "") is not None
    assert dropped <= 2


@pytest.mark.skipif(lookout() is None, reason="Hyperscan is not installed")
def test_the_lookout_only_skips_filters_that_would_not_fire() -> None:
    # Values of every kind: format-valid draws, placeholders, masks, runs, words, templates.
    import random

    from bot.detection.fakes import fill

    rng = random.Random(5)
    common = ["sk-proj-abc…wxyz", "YOUR_API_KEY_HERE", "${TOKEN}", "aaaaaaaaaaaa", "changeme1"]
    common += ["xoxb-not-a-real-token", "Zq3mZZZZZZx", "p@ssw0rd####", "my-key-here"]
    for rule in RULES.values():
        values = common + [fill(rule.fake, rng) for _ in range(40)]
        values += [fake_secret(rule.id, seed) for seed in range(3)]
        values += [rule.prefix + tail for tail in ("xxxxxxxxxxxx", "abcdefghijkl", "1234567890")]
        flags = lookout().flagged([v.encode() for v in values])  # type: ignore[union-attr]
        for value, flag in zip(values, flags, strict=True):
            assert first_reason(value, rule, "", flag) == first_reason(value, rule, ""), value
