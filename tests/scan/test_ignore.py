"""The ignore file: fingerprints and path globs, with comments."""

from __future__ import annotations

from pathlib import Path, PurePath

from bot.ignore import IGNORE_FILE_NAME, IgnoreRules, load

FINGERPRINT = "ab" * 32

IGNORE_TEXT = f"""\
# known fixtures
{FINGERPRINT}   # the sample key in the docs
{FINGERPRINT.upper()[:-2]}cd
tests/fixtures/*.pem
*.min.js
vendor/
/data/

   # indented comment
"""


def test_parse_sorts_entries_into_fingerprints_and_globs() -> None:
    rules = IgnoreRules.parse(IGNORE_TEXT)
    assert rules.fingerprints == {FINGERPRINT, FINGERPRINT[:-2] + "cd"}
    assert rules.globs == ("tests/fixtures/*.pem", "*.min.js")
    assert rules.folder_globs == ("vendor", "/data")


def test_fingerprints() -> None:
    rules = IgnoreRules.parse(IGNORE_TEXT)
    assert rules.ignores_fingerprint(FINGERPRINT)
    assert not rules.ignores_fingerprint("cd" * 32)


def test_globs_with_a_slash_match_the_relative_path() -> None:
    rules = IgnoreRules.parse(IGNORE_TEXT)
    assert rules.ignores_path(PurePath("tests/fixtures/server.pem"), is_dir=False)
    assert not rules.ignores_path(PurePath("other/tests/fixtures/server.pem"), is_dir=False)
    assert not rules.ignores_path(PurePath("tests/fixtures/server.key"), is_dir=False)


def test_globs_without_a_slash_match_the_name_at_any_depth() -> None:
    rules = IgnoreRules.parse(IGNORE_TEXT)
    assert rules.ignores_path(PurePath("web/static/app.min.js"), is_dir=False)
    assert not rules.ignores_path(PurePath("web/static/app.js"), is_dir=False)


def test_trailing_slash_entries_match_folders_only() -> None:
    rules = IgnoreRules.parse(IGNORE_TEXT)
    assert rules.ignores_path(PurePath("lib/vendor"), is_dir=True)
    assert not rules.ignores_path(PurePath("lib/vendor"), is_dir=False)
    assert rules.ignores_path(PurePath("data"), is_dir=True)
    assert not rules.ignores_path(PurePath("src/data"), is_dir=True)  # anchored with /


def test_load_merges_each_roots_file_and_extra_files(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / IGNORE_FILE_NAME).write_text("*.log\n")
    extra = tmp_path / "more.ignore"
    extra.write_text(FINGERPRINT + "\n")
    rules = load([root, tmp_path / "no-ignore-file-here"], [extra])
    assert rules.globs == ("*.log",)
    assert rules.fingerprints == {FINGERPRINT}
    assert rules.sources == (str(root / IGNORE_FILE_NAME), str(extra))
