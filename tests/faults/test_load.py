"""A burst of 10,000 signed message events on loopback against the HTTP app (serve_http +
build_app) backed by the stand-in Slack: every request acknowledged within Slack's 3 seconds,
memory flat, and every DM sent once (1% of the events carry a key: that many DMs, none twice).

Latency is measured per request at the client (a thread pool with bounded concurrency); RSS is
this process's (the app runs in it), sampled while the burst runs.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.detection.engine import Detector
from bot.slack_app.app import build_app, serve_http
from bot.store.db import Database
from bot.store.models import Notification, ProcessedEvent
from tests.faults.conftest import Ledger
from tests.faults.keys import key_for
from tests.standins.slack import SignedSender, SlackStandin, Workspace

EVENTS = 10_000
KEY_EVERY = 100  # 1% of the events carry a key
CONCURRENCY = 16
ACK_LIMIT = 3.0
MARKER = re.compile(r"^lw-n-(\d+)$")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture
def info_logging() -> Iterator[None]:
    """The bot's default log level (LEAKWATCH_LOG_LEVEL=INFO) for the burst: at debug level the
    test harness itself keeps every record in memory, which is not the bot's memory."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(level)


@pytest.mark.slow
def test_a_burst_of_10000_events_is_acked_in_time_with_flat_memory_and_one_dm_each(
    tmp_path: Path, detector: Detector, ledger: Ledger, info_logging: None
) -> None:
    ws = Workspace(team_id="T0LOAD", name="Acme", domain="acme")
    posters = [ws.add_user(f"user{i}", email=f"user{i}@acme.test") for i in range(50)]
    channels = [ws.add_channel(f"load-{i}", members=[*posters, ws.bot]) for i in range(20)]
    security = ws.add_channel("security", members=[ws.bot])
    url = f"sqlite:///{tmp_path / 'lw.db'}"
    db = Database(url)
    db.upgrade()
    with SlackStandin(ws) as slack:
        settings = Settings(
            database_url=url, security_channel=security.id,
            slack=SlackSettings(bot_token=slack.bot_token, signing_secret="load-secret",
                                api_url=slack.api_url),
        )
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        server = serve_http(build_app(settings, db, detector, client=client), "127.0.0.1", 0)
        server.start_in_background()
        sender = SignedSender(f"http://127.0.0.1:{server.port}/slack/events", "load-secret",
                              slack)
        planted: dict[str, str] = {}  # key -> poster id
        bodies: list[bytes] = []
        base = time.time() - 60
        for n in range(EVENTS):
            poster = posters[n % len(posters)]
            channel = channels[n % len(channels)]
            text = f"load message {n}: the build is green"
            if n % KEY_EVERY == KEY_EVERY - 1:
                key = ledger.plant(key_for(n, 9300))
                planted[key] = poster.id
                text = f"load message {n}: use {key}"
            event = {"type": "message", "channel": channel.id, "user": poster.id, "text": text,
                     "ts": f"{base + n * 0.001:.6f}", "channel_type": "channel",
                     "event_ts": f"{base + n * 0.001:.6f}"}
            bodies.append(sender.event_body(event, f"EvLoad{n:06d}"))

        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        rss: list[float] = []

        def send(body: bytes) -> None:
            started = time.perf_counter()
            response = sender.send(body, "application/json")
            latencies.append(time.perf_counter() - started)
            statuses[response.status] += 1

        rss_before = rss_mb()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            for n, _ in enumerate(pool.map(send, bodies)):
                if n % 500 == 0:
                    rss.append(rss_mb())
        burst_seconds = time.monotonic() - started
        rss_after_burst = rss_mb()

        def done() -> bool:
            with db.session() as session:
                events = session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent))
                unsent = session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                        .where(Notification.status != "sent"))
            return events == EVENTS and unsent == 0
        assert slack.wait_for(done, timeout=600), "the events were not all handled"
        drained_seconds = time.monotonic() - started
        rss_end = rss_mb()
        server.shutdown()
        server.server_close()

        assert statuses == Counter({200: EVENTS})
        ordered = sorted(latencies)
        p50 = statistics.median(ordered)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        assert ordered[-1] < ACK_LIMIT, f"slowest ack {ordered[-1]:.2f} s"
        # A connection refused by a full listen backlog costs its sender a 1 s SYN retransmit:
        # with a backlog of 5 the p99 was 1.04 s and the slowest 2.07 s.
        assert p99 < 1.0, f"p99 ack {p99:.2f} s"
        calls = len(slack.calls)

        # One DM per key, in the DM of the person who pasted it; no outbox row twice.
        dms = {p.id: slack.dms_to(p) for p in posters}
        assert sum(len(v) for v in dms.values()) == len(planted) == EVENTS // KEY_EVERY
        for poster in posters:
            assert len(dms[poster.id]) == sum(1 for p in planted.values() if p == poster.id)
        markers = Counter(
            int(found.group(1)) for posted in slack.posted for block in posted.blocks or []
            if (found := MARKER.match(str(block.get("block_id", "")))))
        assert max(markers.values()) == 1

        # Memory flat: growth over the burst is bounded, not proportional to the events.
        growth = rss_end - rss[min(2, len(rss) - 1)]
        assert growth < 120, f"RSS grew {growth:.0f} MB over the burst"
        ledger.slack("load", slack)
    db.dispose()
    ledger.database_files(tmp_path)
    figures = {
        "events": EVENTS, "concurrency": CONCURRENCY, "burst_s": round(burst_seconds, 1),
        "drained_s": round(drained_seconds, 1), "p50_ms": round(p50 * 1000, 1),
        "p99_ms": round(p99 * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1),
        "rss_before_mb": round(rss_before, 1), "rss_after_burst_mb": round(rss_after_burst, 1),
        "rss_end_mb": round(rss_end, 1), "rss_samples_mb": [round(r) for r in rss],
        "dms": sum(len(v) for v in dms.values()), "standin_calls_recorded": calls,
    }
    print("load:", json.dumps(figures))
