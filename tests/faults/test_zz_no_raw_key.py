"""Runs last in tests/faults: no key planted by the fault, abuse and load tests appears in any
database file, pg_dump, log line, or anything the bot sent to the stand-ins."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.detection.fakes import fake_secret
from tests.faults.conftest import Ledger


def test_the_search_finds_a_planted_key_where_one_is(tmp_path: Path) -> None:
    probe = Ledger()
    key = probe.plant(fake_secret("openai_project_key", seed=424242))
    (tmp_path / "leaky.db").write_bytes(b"\x00page\x00" + key.encode() + b"\x00")
    probe.database_files(tmp_path)
    probe.text("a posted message", f"see {key}")
    assert len(probe.leaks()) == 2


def test_no_planted_key_in_databases_dumps_logs_or_anything_posted(
    ledger: Ledger, bot_log: Path
) -> None:
    if not ledger.keys:
        pytest.skip("no fault test planted a key in this session")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert bot_log.stat().st_size > 0, "the bot logged nothing: the log was not captured"
    leaks = ledger.leaks()
    searched = sum(p.stat().st_size for p in ledger.files if p.is_file()) + sum(
        len(text) for _, text in ledger.texts)
    print(f"secrets: {len(ledger.keys)} planted keys, {len(ledger.files)} files and "
          f"{len(ledger.texts)} captured texts ({searched / 2**20:.1f} MB) searched, "
          f"{len(leaks)} raw keys found")
    assert not leaks, "raw keys found:\n" + "\n".join(leaks[:50])
