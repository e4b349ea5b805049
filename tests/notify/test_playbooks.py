"""Every credential type the detector knows has a rotation playbook with working https links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.notify.playbooks import PlaybookError, load_playbooks, playbook_for

RULES_FILE = Path(__file__).resolve().parents[2] / "bot" / "detection" / "rules.yaml"


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    rules = data["rules"] if isinstance(data, dict) else data
    return [r for r in rules if isinstance(r, dict) and "id" in r]


def test_every_rule_provider_has_a_playbook() -> None:
    if not RULES_FILE.is_file():
        pytest.fail(f"{RULES_FILE} is missing")
    book = load_playbooks()
    rules = _rules()
    assert rules, "rules.yaml has no rules"
    missing = sorted(
        {f"{r['id']} ({r['provider']})" for r in rules if not book.has_provider(str(r["provider"]))}
    )
    assert not missing, f"no playbook for: {missing}"
    for rule in rules:
        playbook = playbook_for(rule["id"], str(rule["provider"]))
        assert playbook is not book.generic
        if str(rule["provider"]).lower() == "any":  # no provider pages: steps per credential type
            assert rule["id"] in book.rules, rule["id"]
        assert 3 <= len(playbook.steps) <= 6


def test_every_url_is_https_and_every_playbook_is_complete() -> None:
    book = load_playbooks()
    assert len(book.providers) >= 25
    for playbook in book.all():
        for url in playbook.urls:
            assert url.startswith("https://"), (playbook.key, url)
        assert 3 <= len(playbook.steps) <= 6, playbook.key
        assert playbook.can_do.strip(), playbook.key
        assert all(step.strip() for step in playbook.steps)


def test_rule_override_wins_over_provider_and_generic_is_the_fallback() -> None:
    admin = playbook_for("openai_admin_key", "OpenAI")
    project = playbook_for("openai_project_key", "OpenAI")
    assert admin.keys_url == "https://platform.openai.com/settings/organization/admin-keys"
    assert project.keys_url == "https://platform.openai.com/api-keys"
    assert admin.usage_url == project.usage_url  # inherited from the provider entry
    assert playbook_for("made_up_rule", "Nobody Inc").key == "generic"
    assert playbook_for("x", "  openAI ").key == "openai"  # provider names match loosely


def test_a_plain_http_link_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "playbooks.yaml"
    bad.write_text(
        "generic: {name: g, can_do: c, steps: [a, b, c]}\n"
        "providers:\n  x: {name: X, can_do: c, keys_url: 'http://x.test/keys', steps: [a, b, c]}\n",
        encoding="utf-8",
    )
    with pytest.raises(PlaybookError, match="https"):
        load_playbooks(bad)
