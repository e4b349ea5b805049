"""Event-to-DM latency on loopback: a signed message event in, the poster's DM out.

    .venv/bin/python -m bench.slack_events [--events 200] [--concurrency 1]

Runs the Slack app over HTTP (Bolt, the WSGI server) against the stand-in Slack with a SQLite
database. Each event carries a message with a fresh fake key; latency is from just before the
signed POST to the moment the stand-in receives the chat.postMessage of the DM. Also reports
how long the app took to acknowledge (Slack retries what is not acked within 3 s).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.slack_app.app import build_app, serve_http
from bot.store.db import Database
from tests.standins.slack import SignedSender, SlackStandin, Workspace

SECRET = "bench-signing-secret"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    ws = Workspace(team_id="T0BENCH", domain="bench")
    people = [ws.add_user(f"user{i}", email=f"user{i}@bench.test") for i in range(args.events)]
    channel = ws.add_channel("general", members=[*people, ws.bot])
    security = ws.add_channel("security", members=[ws.bot])
    with SlackStandin(ws) as slack, tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        db.upgrade()
        settings = Settings(
            database_url=url,
            security_channel=security.id,
            slack=SlackSettings(
                bot_token=slack.bot_token, signing_secret=SECRET, api_url=slack.api_url
            ),
        )
        detector = Detector.default(Fingerprinter(b"bench-fingerprint-key-0000000001"))
        app = build_app(
            settings, db, detector, client=WebClient(token=slack.bot_token, base_url=slack.api_url)
        )
        server = serve_http(app, "127.0.0.1", 0)
        server.start_in_background()
        sender = SignedSender(f"http://127.0.0.1:{server.port}/slack/events", SECRET, slack)
        # one warm-up event: Bolt's first request runs auth.test
        warm = ws.post(channel, people[0], "warm up")
        sender.event(ws.message_event(channel, warm.ts))

        def one(i: int) -> tuple[float, float]:
            person = people[i]
            msg = ws.post(channel, person, f"key {fake_secret('openai_project_key', seed=i)}")
            event = ws.message_event(channel, msg.ts)
            started = time.monotonic()
            answer = sender.event(event)
            acked = time.monotonic() - started
            assert answer.status == 200
            deadline = started + 30
            while time.monotonic() < deadline:
                dms = slack.dms_to(person)
                if dms:
                    return acked, dms[0].at - started
                time.sleep(0.001)
            raise RuntimeError(f"no DM for event {i}")

        began = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(one, range(args.events)))
        rate = args.events / (time.monotonic() - began)
        acks = [a * 1000 for a, _ in results]
        latencies = [d * 1000 for _, d in results]
        print(
            f"{args.events} events, concurrency {args.concurrency}: event-to-DM "
            f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms, "
            f"max {max(latencies):.0f} ms; ack p50 {percentile(acks, 50):.1f} ms, "
            f"p99 {percentile(acks, 99):.1f} ms; mean DM {statistics.mean(latencies):.0f} ms; "
            f"{rate:.0f} events/s with a DM each"
        )
        server.shutdown()
        server.server_close()
        db.dispose()


if __name__ == "__main__":
    main()
