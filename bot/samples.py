"""The bundled samples: templates in samples/ made into files with fake keys in data/samples/.

A template holds no key, only placeholders: `{{fake:RULE_ID}}` or `{{fake:RULE_ID:SEED}}`,
replaced by `fake_secret(RULE_ID, SEED)` (a format-valid fake with the right checksum). In a
`.json` file the value is JSON-escaped; a multi-line value (a PEM key) placed after indentation
keeps that indentation on every line, so YAML stays valid.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "samples"
PLACEHOLDER = re.compile(r"\{\{fake:([a-z0-9_]+)(?::(\d+))?\}\}")
SKIPPED_NAMES = frozenset({"README.md"})

FakeSecret = Callable[[str, int], str]


def build(destination: Path, templates: Path = TEMPLATES, fake: FakeSecret | None = None) -> Path:
    """(Re)create `destination` from the templates; returns it."""
    if fake is None:
        from bot.detection.fakes import fake_secret

        fake = fake_secret
    if destination.exists():
        shutil.rmtree(destination)
    for template in sorted(templates.rglob("*")):
        if not template.is_file() or template.name in SKIPPED_NAMES:
            continue
        target = destination / template.relative_to(templates)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = template.read_text(encoding="utf-8")
        target.write_text(render(text, fake, as_json=template.suffix == ".json"), encoding="utf-8")
    return destination


def render(text: str, fake: FakeSecret, as_json: bool = False) -> str:
    """Replace every placeholder in `text` with its fake secret."""

    def replacement(match: re.Match[str]) -> str:
        value = fake(match.group(1), int(match.group(2) or 0))
        if as_json:
            return json.dumps(value)[1:-1]
        line_start = text.rfind("\n", 0, match.start()) + 1
        indent = text[line_start : match.start()]
        if "\n" in value and indent.strip() == "":
            value = value.rstrip("\n").replace("\n", "\n" + indent)
        return value

    return PLACEHOLDER.sub(replacement, text)


def placeholders(templates: Path = TEMPLATES) -> list[tuple[str, str]]:
    """Every (template path, rule id) pair: what a scan of the built samples should find."""
    found = []
    for template in sorted(templates.rglob("*")):
        if template.is_file() and template.name not in SKIPPED_NAMES:
            text = template.read_text(encoding="utf-8")
            for match in PLACEHOLDER.finditer(text):
                found.append((template.relative_to(templates).as_posix(), match.group(1)))
    return found
