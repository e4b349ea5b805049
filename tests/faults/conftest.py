"""Shared by the fault, abuse and load tests: the ledger of planted keys and of what the bot wrote.

Every fault test plants fake keys (bot.detection.fakes.fake_secret) and registers them here,
together with everything the bot produced while it ran: database files, pg_dump output, log
lines, and every request the bot made to the stand-ins (posted messages, updates, views,
ephemeral messages, response_url bodies). tests/faults/test_zz_no_raw_key.py runs last in this
package and searches all of it for any planted key.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.detection.engine import Detector
from bot.detection.fingerprint import Fingerprinter
from tests.standins.confluence import ConfluenceStandin
from tests.standins.slack import SlackStandin

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Ledger:
    """Planted keys, and the places where none of them may appear."""

    keys: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (where it came from, text)

    def plant(self, key: str) -> str:
        self.keys.add(key)
        return key

    def file(self, path: Path) -> None:
        self.files.append(path)

    def database_files(self, folder: Path) -> None:
        """A SQLite database with its WAL and shared-memory files, wherever they are."""
        for path in sorted(folder.rglob("*.db*")):
            self.files.append(path)

    def text(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def slack(self, where: str, slack: SlackStandin) -> None:
        """Everything the bot sent to the stand-in Slack: each call's parameters (messages,
        updates, views, ephemeral messages), what it posted, and response_url bodies."""
        with slack._lock:
            calls = [(c.method, dict(c.params)) for c in slack.calls]
            posted = [(p.text, p.blocks, p.updates) for p in slack.posted]
            responses = list(slack.responses)
        self.texts.append((f"{where}: slack calls", json.dumps(calls, default=str)))
        self.texts.append((f"{where}: slack posted", json.dumps(posted, default=str)))
        self.texts.append((f"{where}: slack views", json.dumps([slack.views, slack.home],
                                                               default=str)))
        self.texts.append((f"{where}: response_url bodies", json.dumps(responses, default=str)))

    def confluence(self, where: str, standin: ConfluenceStandin) -> None:
        self.texts.append((f"{where}: confluence calls",
                           json.dumps([vars(c) for c in standin.calls], default=str)))

    def postgres(self, where: str, url: str) -> None:
        """pg_dump of the database behind `url` (a SQLAlchemy URL), as plain SQL."""
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        dump = subprocess.run(["pg_dump", "--no-owner", plain], capture_output=True, text=True,
                              timeout=120, check=True)
        self.texts.append((f"{where}: pg_dump", dump.stdout))

    def leaks(self) -> list[str]:
        """Where a planted key was found: one line per (key, place)."""
        found: list[str] = []
        raw_keys = sorted(self.keys)
        byte_keys = [key.encode() for key in raw_keys]
        for path in self.files:
            if not path.is_file():
                continue
            data = path.read_bytes()
            found += [f"{path}: {key[:6]}…" for key, raw in zip(raw_keys, byte_keys, strict=True)
                      if raw in data]
        for where, text in self.texts:
            found += [f"{where}: {key[:6]}…" for key in raw_keys if key in text]
        return found


LEDGER = Ledger()
FINGERPRINTER = Fingerprinter(b"fault-tests-fingerprint-key-0001")


@pytest.fixture(scope="session")
def detector() -> Detector:
    return Detector.default(FINGERPRINTER)


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


@pytest.fixture(scope="package", autouse=True)
def bot_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bot's own logging set-up (JSON lines through the redacting filter), into a file that
    the final search reads, while this package's tests run. Debug level: the most the bot could
    ever write, slack_sdk's request and response logging included."""
    from bot.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    path = tmp_path_factory.mktemp("logs") / "bot.log"
    with path.open("w", encoding="utf-8") as stream:
        configure_logging("DEBUG", stream=stream)
        LEDGER.file(path)
        try:
            yield path
        finally:
            stream.flush()
            root.handlers[:], level = saved
            root.setLevel(level)


def bot_environment(**values: str) -> dict[str, str]:
    """The environment for a `python -m bot` subprocess: only what the test sets, no sources
    inherited from the developer's shell."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "CONFLUENCE_", "IMAP_", "LEAKWATCH_", "DATABASE_URL"))}
    env["PYTHONPATH"] = str(REPO)
    env["LEAKWATCH_LOG_LEVEL"] = "INFO"
    env.update(values)
    return env


def bot_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A working folder for a bot subprocess (no stray .env, data/ lands here)."""
    yield tmp_path


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str)
