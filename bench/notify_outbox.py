"""Outbox throughput and Block Kit build cost of the notifier, on loopback.

    .venv/bin/python -m bench.notify_outbox [--secrets 500] [--again 2] [--database URL]

Stores `--secrets` critical findings the way the pipeline does (an alert to the poster and an
alert to the security channel each) plus `--again` further occurrences per secret (thread
replies), then times one Notifier.send_pending() draining all of it through slack_sdk's WebClient
against the stand-in Slack. Also times the pure builders: one alert DM, one App Home of 30
findings with the admin overview, and the rotation-steps modal.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.notify import blocks
from bot.notify.notifier import Notifier
from bot.notify.playbooks import playbook_for
from bot.store.db import Database
from bot.store.models import Notification, Occurrence, Secret
from tests.standins.slack import SlackStandin, Workspace


def seed(db: Database, posters: list[str], channel: str, secrets: int, again: int) -> int:
    now = datetime.now(UTC)
    rows = 0
    with db.session() as session:
        for i in range(secrets):
            secret = Secret(
                workspace="T0BENCH",
                fingerprint=f"{i:064x}",
                rule_id="openai_project_key",
                provider="OpenAI",
                name="OpenAI project API key",
                preview="sk-proj-…9fQa",
                severity="critical",
                risk_score=92,
                risk_level="critical",
                risk_reasons=["LLM key with billing", "public channel with 340 members"],
                first_seen=now,
                last_seen=now,
            )
            session.add(secret)
            session.flush()
            for n in range(again + 1):
                occurrence = Occurrence(
                    secret_id=secret.id,
                    workspace="T0BENCH",
                    source="slack",
                    unit=channel,
                    unit_name="general",
                    item_id=f"{channel}:{1_760_000_000 + i}.{n:06d}",
                    author=posters[i % len(posters)],
                    posted_at=now,
                    detected_at=now,
                    permalink=f"https://bench.slack.com/archives/{channel}/p{i}{n:06d}",
                )
                session.add(occurrence)
                session.flush()
                session.add(
                    Notification(
                        workspace="T0BENCH",
                        secret_id=secret.id,
                        occurrence_id=occurrence.id,
                        kind="alert",
                        recipient=f"user:{occurrence.author}",
                        dedupe_key=f"alert:{occurrence.id}",
                        created_at=now,
                        send_after=now,
                    )
                )
                rows += 1
                if n == 0:
                    session.add(
                        Notification(
                            workspace="T0BENCH",
                            secret_id=secret.id,
                            occurrence_id=occurrence.id,
                            kind="security_alert",
                            recipient="security",
                            dedupe_key=f"security_alert:{secret.id}",
                            created_at=now,
                            send_after=now,
                        )
                    )
                    rows += 1
    return rows


def builders() -> dict[str, float]:
    place = blocks.Place(
        source="slack",
        unit="C1",
        unit_name="general",
        item_id="C1:1.1",
        permalink="https://bench.slack.com/archives/C1/p1",
        author="U1",
        posted_at=datetime.now(UTC),
    )
    finding = blocks.Finding(
        id=1,
        rule_id="openai_project_key",
        provider="OpenAI",
        name="OpenAI project API key",
        preview="sk-proj-…9fQa",
        risk_level="critical",
        place=place,
        risk_reasons=("LLM key with billing", "public channel"),
    )
    playbook = playbook_for("openai_project_key", "OpenAI")
    many = [blocks.Finding(**{**finding.__dict__, "id": i}) for i in range(1, 31)]
    summary = blocks.AdminSummary({"open": 30}, {"OpenAI": 30}, {"slack": 30}, many[:5])
    runs = 300

    def per_call(fn: object) -> float:
        return timeit.timeit(fn, number=runs) / runs * 1e6  # type: ignore[arg-type]

    return {
        "alert DM": per_call(lambda: blocks.alert_message(finding, playbook, True)),
        "App Home, 30 findings + overview": per_call(
            lambda: blocks.home_view(many, {f.id: playbook for f in many}, True, summary)
        ),
        "rotation-steps modal": per_call(lambda: blocks.rotation_steps_view(finding, playbook)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=500)
    parser.add_argument("--again", type=int, default=2)
    parser.add_argument("--posters", type=int, default=50)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    ws = Workspace(team_id="T0BENCH", domain="bench")
    posters = [ws.add_user(f"user{i}", email=f"user{i}@bench.test").id for i in range(args.posters)]
    general = ws.add_channel("general", members=[*posters, ws.bot.id])
    security = ws.add_channel("security", members=[ws.bot.id])
    with SlackStandin(ws) as slack, tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        db.upgrade()
        rows = seed(db, posters, general.id, args.secrets, args.again)
        settings = Settings(
            database_url=url,
            security_channel=security.id,
            slack=SlackSettings(bot_token=slack.bot_token, api_url=slack.api_url),
        )
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        in_slack = [0.0]
        real_call = client.api_call

        def timed_call(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return real_call(*a, **k)
            finally:
                in_slack[0] += time.perf_counter() - t

        client.api_call = timed_call  # type: ignore[method-assign]
        notifier = Notifier(client, db, settings, batch_size=rows)
        started = time.perf_counter()
        sent = notifier.send_pending()
        elapsed = time.perf_counter() - started
        threads = sum(1 for p in slack.posted if p.thread_ts)
        print(f"database: {db.url.get_backend_name()}")
        print(f"outbox rows: {rows}; sent: {sent}; thread replies: {threads}")
        print(
            f"send_pending: {elapsed:.2f} s, {sent / elapsed:.0f} rows/s, "
            f"{elapsed / sent * 1000:.2f} ms a row (4 transactions + Slack calls each)"
        )
        calls = len(slack.calls)
        own = elapsed - in_slack[0]
        print(
            f"Slack calls: {calls} ({calls / sent:.2f} a row), {in_slack[0]:.2f} s waiting on "
            "the stand-in (it runs in this process and slows as its history grows)"
        )
        print(
            f"notifier's own time: {own:.2f} s, {own / sent * 1000:.2f} ms a row "
            "(routing, 4 transactions, building the blocks)"
        )
        for name, micros in builders().items():
            print(f"build {name}: {micros:.0f} µs")
        db.dispose()


if __name__ == "__main__":
    main()
