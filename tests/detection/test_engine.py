"""The engine: positions, overlaps, both engines agree, hostile inputs stay fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.detection.engine import Detector
from bot.detection.fakes import expand, fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.detection.rules import default_rules
from bot.detection.scanners import available_engines

MB = 1_000_000


def test_positions_are_characters_lines_and_columns(detector: Detector) -> None:
    key = fake_secret("github_classic_pat", 3)
    text = f"first line\nçà et là → {key} done\n"
    [match] = detector.scan(text)
    assert text[match.start : match.end] == key
    assert (match.line, match.column) == (2, text.splitlines()[1].index(key) + 1)
    assert match.end_column == match.column + len(key)


def test_match_carries_preview_and_fingerprint_not_the_secret_in_repr(
    detector: Detector, fingerprinter: Fingerprinter
) -> None:
    key = fake_secret("openai_project_key", 1)
    [match] = detector.scan(f"OPENAI_API_KEY={key}")
    assert match.fingerprint == fingerprinter.of(key)
    assert match.preview.startswith("sk-proj-…") and match.preview.endswith(key[-4:])
    assert key not in repr(match) and key[8:20] not in repr(match)
    assert (match.provider, match.severity.value) == ("OpenAI", "critical")


def test_the_same_key_twice_is_two_matches_with_one_fingerprint(detector: Detector) -> None:
    key = fake_secret("anthropic_api_key", 2)
    first, second = detector.scan(f"{key}\nagain: {key}\n")
    assert first.fingerprint == second.fingerprint
    assert (first.line, second.line) == (1, 2)


def test_specific_rule_wins_over_generic_assignment(detector: Detector) -> None:
    key = fake_secret("stripe_secret_key", 4)
    assert [m.rule_id for m in detector.scan(f'api_key = "{key}"')] == ["stripe_secret_key"]


def test_explain_names_the_filter_that_dropped_a_candidate(detector: Detector) -> None:
    key = fake_secret("github_classic_pat", 6)
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    text = f"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n{broken}"
    verdicts = {c.rule_id: c.verdict for c in detector.explain(text)}
    assert verdicts["aws_access_key"] == "is_documentation_example"
    assert verdicts["github_classic_pat"] == "has_bad_checksum"
    assert not any(c.kept for c in detector.explain(text))


def test_keyword_anchored_value_needs_its_keyword(detector: Detector) -> None:
    value = fake_secret("cohere_api_key", 5)
    assert detector.scan(f"the value is {value}") == []
    assert [m.rule_id for m in detector.scan(f"COHERE_API_KEY={value}")] == ["cohere_api_key"]


def test_a_value_named_after_it_is_found_once_at_its_place(detector: Detector) -> None:
    value = fake_secret("mistral_api_key", 4)
    text = f"MISTRAL_API_KEY={value}\nso use {value} as the Mistral key for now"
    found = [(m.rule_id, m.line, m.column) for m in detector.scan(text)]
    assert found == [("mistral_api_key", 1, 17), ("mistral_api_key", 2, 8)]
    # a name found by both patterns at once (before and after the value) is one finding
    both = f"mistral: {value} (the mistral key)"
    assert [m.secret for m in detector.scan(both)] == [value]


def test_a_name_after_a_value_that_is_given_its_own_value_names_nothing(
    detector: Detector,
) -> None:
    value = fake_secret("mistral_api_key", 2)
    # DEEPINFRA_API_KEY is given its own (empty) value: it does not name the Mistral key
    found = detector.scan(f"MISTRAL_API_KEY={value} DEEPINFRA_API_KEY=")
    assert [m.rule_id for m in found] == ["mistral_api_key"]
    assert detector.scan(f"{value} DEEPINFRA_API_KEY=") == []


def test_a_hex_value_needs_a_naming_phrase_not_just_a_provider_word_nearby(
    detector: Detector,
) -> None:
    value = fake_secret("azure_openai_key", 1)
    assert detector.scan(f"{value} is the Azure OpenAI key")[0].rule_id == "azure_openai_key"
    assert detector.scan(f"uploaded {value} to the azure key vault backup") == []


@pytest.mark.skipif(len(available_engines()) < 2, reason="Hyperscan is not installed")
def test_hyperscan_and_re2_find_the_same(fingerprinter: Fingerprinter) -> None:
    hyperscan = Detector.default(fingerprinter, engine="hyperscan")
    re2 = Detector.default(fingerprinter, engine="re2")
    parts = []
    for seed, rule in enumerate(default_rules()):
        for template in (*rule.examples, *rule.counterexamples):
            parts.append(expand(template, rule.id, seed))
            parts.append("some ordinary words between the samples, 12 of them or so.")
    text = "\n".join(parts)
    found = [(m.rule_id, m.start, m.end) for m in hyperscan.scan(text)]
    assert len(found) > len(default_rules())
    assert [(m.rule_id, m.start, m.end) for m in re2.scan(text)] == found


# Each a unit repeated into 10 MB, built in the test: held all at once they would hold the
# session's memory high (a subprocess started later inherits that peak in ru_maxrss).
HOSTILE = {
    "one letter": "a",
    "key characters": "A1b2C3d4E5",
    "repeated prefix": "sk-",
    "repeated project prefix": "sk-proj-",
    "equals signs": "=",
    "nested quotes": "\"'",
    "assignments": "password=",
    "dense candidates": "password=abcdefgh1 ",
    "chained tokens": "eyJabcdefghijklmnopqrs.",
    "pem headers": "-----BEGIN PRIVATE KEY-----\n",
    "url prefixes": "postgres://u:",
    "values named after them": "Ab1" * 10 + "Ab mistral ",
    "names after values": "abcdefgh1 is the password ",
    "linking words": "password is the is the is the ",
    "indented lines": "mistral\n" + " " * 40 + "\n",
    "sibling values": "- name: PASSWORD\n  value: ",
}


@pytest.mark.parametrize("unit", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_scans_quickly(detector: Detector, unit: str) -> None:
    text = unit * (10 * MB // len(unit))
    started = time.perf_counter()
    detector.scan(text)
    assert time.perf_counter() - started < 5.0


def test_empty_and_tiny_inputs(detector: Detector) -> None:
    assert detector.scan("") == []
    assert detector.scan("x") == []
    assert detector.explain("") == []


def test_unknown_engine_is_refused(fingerprinter: Fingerprinter) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        Detector.default(fingerprinter, engine="pcre")  # type: ignore[arg-type]


def test_multiline_key_starts_on_its_first_line(detector: Detector) -> None:
    key = fake_secret("private_key_pem", 2)
    text = f"ünïcode first\ndeploy key:\n{key}\nthanks"
    [match] = detector.scan(text)
    assert (match.line, match.column) == (3, 1)
    assert text[match.start : match.end] == key
    assert match.end_column == len(key.splitlines()[-1]) + 1


def test_text_with_a_lone_surrogate_still_scans(detector: Detector) -> None:
    key = fake_secret("groq_api_key", 1)
    [match] = detector.scan(f"broken \udc80 export, key {key}")
    assert match.secret == key


def test_a_log_with_a_token_on_every_line_reports_every_token(detector: Detector) -> None:
    tokens = [fake_secret("jwt", seed) for seed in range(1500)]
    log = "".join(
        f"2026-03-01T10:00:{n % 60:02d}Z GET /api/v1/items 200 Authorization: Bearer {token}\n"
        for n, token in enumerate(tokens)
    )
    assert [m.secret for m in detector.scan(log)] == tokens


def test_one_detector_scans_from_many_threads(detector: Detector) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"job {n}: {fake_secret('xai_api_key', n)}" for n in range(200)]
    expected = [[fake_secret("xai_api_key", n)] for n in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda text: [m.secret for m in detector.scan(text)], texts))
    assert results == expected


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="Hyperscan is not installed")
def test_compiled_database_is_kept_in_the_cache_dir_and_reused(
    tmp_path: Path, fingerprinter: Fingerprinter
) -> None:
    from bot.detection.scanners import HyperscanScanner

    rules = default_rules()
    cache_dir = tmp_path / "cache"
    first = HyperscanScanner(rules, cache_dir)
    [saved] = cache_dir.glob("hyperscan-*.db")
    started = time.perf_counter()
    second = HyperscanScanner(rules, cache_dir)
    assert time.perf_counter() - started < 0.5  # loading, not compiling (about a second)
    text = f"key {fake_secret('openai_project_key')} and {fake_secret('github_classic_pat')}"
    assert second.ends(text.encode()) == first.ends(text.encode())
    saved.write_bytes(b"not a database")  # damaged or from another CPU: compiled again
    assert HyperscanScanner(rules, cache_dir).ends(text.encode()) == first.ends(text.encode())
    detector = Detector.default(fingerprinter, cache_dir=cache_dir)
    assert [m.rule_id for m in detector.scan(text)] == ["openai_project_key", "github_classic_pat"]


def test_a_key_cut_short_is_dropped_but_the_same_key_whole_is_reported(
    detector: Detector,
) -> None:
    key = fake_secret("stripe_secret_key", 8)
    half = key[: len(key) // 2]
    text = f"the key starting {half}... was rotated\nthe new key: {half} please use it"
    verdicts = [(c.line, c.verdict) for c in detector.explain(text)]
    assert verdicts == [(1, "is_masked_or_truncated"), (2, "kept")]


def test_the_same_password_is_judged_in_each_url(detector: Detector) -> None:
    password = fake_secret("database_url", 3)
    text = f"postgresql://{password}:{password}@db/main\npostgresql://etl:{password}@db/main\n"
    verdicts = [(c.line, c.verdict) for c in detector.explain(text) if c.rule_id == "database_url"]
    assert verdicts == [(1, "is_username_as_password"), (2, "kept")]
