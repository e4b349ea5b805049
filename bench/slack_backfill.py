"""Messages per second for a Slack backfill from the stand-in, and Web API calls per idle channel.

    .venv/bin/python -m bench.slack_backfill [--channels 20] [--messages 2000] [--page 200]

Builds a workspace (channels of plain messages, every 50th a thread parent with 5 replies, every
100th with a text file, one message in 200 with a fake key), then:
  1. connector only: SlackSource.documents over every channel (HTTP + JSON + markup to text);
  2. end to end: poll_source through the pipeline into SQLite, then the notifier's DMs;
  3. an idle poll: Web API calls it makes, per channel.
The stand-in runs in this process on loopback, so figures are an upper bound on what Slack,
which paces history at 50+/min (internal apps) or 1/min (others), would allow.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.notify.notifier import Notifier
from bot.polling import poll_source
from bot.store.db import Database
from connectors.slack import SlackSource
from tests.standins.slack import SlackStandin, Workspace

WORDS = [
    "deploy",
    "staging",
    "review",
    "the",
    "config",
    "before",
    "we",
    "ship",
    "it",
    "to",
    "prod",
    "tomorrow",
    "please",
]


def build(channels: int, messages: int) -> tuple[Workspace, int]:
    ws = Workspace(team_id="T0BENCH", domain="bench")
    people = [ws.add_user(f"user{i}", email=f"user{i}@bench.test") for i in range(50)]
    total = 0
    for c in range(channels):
        channel = ws.add_channel(f"channel-{c}", members=[*people, ws.bot])
        for m in range(messages):
            author = people[(c + m) % len(people)]
            text = " ".join(WORDS[(m + i) % len(WORDS)] for i in range(12))
            if m % 200 == 7:
                text += " " + fake_secret("openai_project_key", seed=c * messages + m)
            files = []
            if m % 100 == 3:
                files = [ws.add_file(author, "notes.txt", f"{text}\n" * 20)]
            msg = ws.post(channel, author, f"<@{people[0].id}> {text} &amp; more", files=files)
            total += 1 + len(files)
            if m % 50 == 0:
                for r in range(5):
                    ws.post(channel, people[r], f"reply {r} {text}", thread=msg)
                    total += 1
    return ws, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--page", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the security alerts have no channel here: not the point
    ws, total = build(args.channels, args.messages)
    print(f"workspace: {args.channels} channels, {total} messages, replies and files")
    with SlackStandin(ws) as slack, tempfile.TemporaryDirectory() as tmp:
        settings = SlackSettings(
            bot_token=slack.bot_token, api_url=slack.api_url, history_page_size=args.page
        )
        source = SlackSource(settings)
        started = time.perf_counter()
        documents = sum(1 for unit in source.units() for _ in source.documents(unit, None))
        elapsed = time.perf_counter() - started
        print(
            f"connector only: {documents} documents in {elapsed:.1f} s = "
            f"{documents / elapsed:,.0f} documents/s "
            f"({len(slack.calls)} Web API calls, page {args.page})"
        )

        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        db.upgrade()
        detector = Detector.default(Fingerprinter(b"bench-fingerprint-key-0000000001"))
        source = SlackSource(settings)
        started = time.perf_counter()
        report = poll_source(db, source, detector, workspace=source.workspace)
        polled = time.perf_counter() - started
        full = Settings(database_url=url, slack=settings)
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        notifier = Notifier(client, db, full)
        sent = 0
        while batch := notifier.send_pending():
            sent += batch
        print(
            f"poll through pipeline (SQLite): {report.documents} documents in {polled:.1f} s = "
            f"{report.documents / polled:,.0f} documents/s; {report.findings} findings, "
            f"{sent} DMs sent"
        )

        slack.reset_calls()
        started = time.perf_counter()
        idle = poll_source(db, source, detector, workspace=source.workspace)
        idle_elapsed = time.perf_counter() - started
        calls = len(slack.calls)
        history = len(slack.calls_to("conversations.history"))
        print(
            f"idle poll: {calls} Web API calls for {len(idle.units_ok)} channels "
            f"({history} conversations.history, {calls - history} other) = "
            f"{calls / len(idle.units_ok):.2f} calls per channel, {idle_elapsed * 1000:.0f} ms"
        )
        db.dispose()


if __name__ == "__main__":
    main()
