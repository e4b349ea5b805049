"""Rotation playbooks: the provider's pages and the steps that retire a leaked credential.

The data lives in playbooks.yaml next to this module. `playbook_for(rule_id, provider)` picks,
in order: the rule's own override inside its provider entry, the provider entry, the generic
playbook. Loading validates every entry (https URLs, 3 to 6 steps) so a bad edit fails at start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PLAYBOOKS_FILE = Path(__file__).with_name("playbooks.yaml")

_FIELDS = ("name", "keys_url", "usage_url", "can_do", "revoke_api", "steps")


class PlaybookError(ValueError):
    """playbooks.yaml is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Playbook:
    """What to do about a leaked credential of one provider (or one credential type)."""

    key: str  # the provider entry it came from: "openai", or "generic"
    name: str  # the provider as people say it: "OpenAI"
    steps: tuple[str, ...]
    can_do: str
    keys_url: str | None = None
    usage_url: str | None = None
    revoke_api: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(u for u in (self.keys_url, self.usage_url) if u)


@dataclass(frozen=True)
class PlaybookBook:
    generic: Playbook
    providers: dict[str, Playbook]  # key -> playbook
    aliases: dict[str, str]  # normalised provider name -> key
    rules: dict[str, Playbook]  # rule id -> playbook with the rule's overrides applied

    def for_rule(self, rule_id: str, provider: str) -> Playbook:
        if rule_id in self.rules:
            return self.rules[rule_id]
        return self.for_provider(provider)

    def for_provider(self, provider: str) -> Playbook:
        key = self.aliases.get(_normalise(provider))
        return self.providers[key] if key is not None else self.generic

    def has_provider(self, provider: str) -> bool:
        return _normalise(provider) in self.aliases

    def all(self) -> list[Playbook]:
        return [self.generic, *self.providers.values(), *self.rules.values()]


def _normalise(provider: str) -> str:
    return " ".join(provider.lower().split())


def _check_url(where: str, url: object) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str) or urlsplit(url).scheme != "https" or not urlsplit(url).netloc:
        raise PlaybookError(f"{where}: URL must be https, got {url!r}")
    return url


def _build(where: str, key: str, raw: dict[str, Any], base: Playbook | None) -> Playbook:
    unknown = set(raw) - set(_FIELDS) - {"aliases", "rules"}
    if unknown:
        raise PlaybookError(f"{where}: unknown fields {sorted(unknown)}")
    if base is None:
        if "steps" not in raw or "can_do" not in raw or "name" not in raw:
            raise PlaybookError(f"{where}: needs name, can_do and steps")
        playbook = Playbook(key=key, name=str(raw["name"]), steps=(), can_do="")
    else:
        playbook = base
    changes: dict[str, Any] = {}
    for name in _FIELDS:
        if name not in raw:
            continue
        value = raw[name]
        if name in ("keys_url", "usage_url"):
            changes[name] = _check_url(f"{where}.{name}", value)
        elif name == "steps":
            if not isinstance(value, list) or not 3 <= len(value) <= 6:
                raise PlaybookError(f"{where}.steps: needs 3 to 6 steps")
            changes[name] = tuple(str(step) for step in value)
        elif name == "revoke_api":
            changes[name] = None if value is None else str(value)
        else:
            changes[name] = str(value)
    return replace(playbook, **changes)


@functools.cache
def load_playbooks(path: Path = PLAYBOOKS_FILE) -> PlaybookBook:
    """Read and validate playbooks.yaml (cached: the file is part of the code)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "generic" not in data or "providers" not in data:
        raise PlaybookError(f"{path}: needs `generic` and `providers`")
    generic = _build("generic", "generic", data["generic"], None)
    providers: dict[str, Playbook] = {}
    aliases: dict[str, str] = {}
    rules: dict[str, Playbook] = {}
    for key, raw in data["providers"].items():
        where = f"providers.{key}"
        playbook = _build(where, key, raw, None)
        providers[key] = playbook
        for alias in [key, playbook.name, *raw.get("aliases", [])]:
            normal = _normalise(str(alias))
            if aliases.get(normal, key) != key:
                raise PlaybookError(f"{where}: alias {alias!r} is also used by {aliases[normal]}")
            aliases[normal] = key
        for rule_id, override in (raw.get("rules") or {}).items():
            if rule_id in rules:
                raise PlaybookError(f"{where}.rules.{rule_id}: defined twice")
            rules[rule_id] = _build(f"{where}.rules.{rule_id}", key, override, playbook)
    return PlaybookBook(generic=generic, providers=providers, aliases=aliases, rules=rules)


def playbook_for(rule_id: str, provider: str) -> Playbook:
    """The playbook for a credential type: its own, its provider's, or the generic one."""
    return load_playbooks().for_rule(rule_id, provider)
