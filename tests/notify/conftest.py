"""A stand-in Slack workspace, a fresh database and findings written the way the pipeline does."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.config import Settings, SlackSettings
from bot.store.db import Database
from bot.store.models import Notification, Occurrence, Secret, utcnow
from tests.standins.slack import Channel, SlackStandin, User, Workspace

_fingerprints = itertools.count(1)


@dataclass
class World:
    ws: Workspace
    slack: SlackStandin
    db: Database
    settings: Settings
    alice: User  # posts keys
    bob: User  # neither poster nor admin
    sec_admin: User  # in LEAKWATCH_ADMINS through a user group
    general: Channel
    security: Channel

    def client(self) -> WebClient:
        return WebClient(token=self.slack.bot_token, base_url=self.slack.api_url)

    def admin_client(self) -> WebClient:
        return WebClient(token=self.slack.admin_token, base_url=self.slack.api_url)

    def with_settings(self, **changes: Any) -> Settings:
        return replace(self.settings, **changes)


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    yield from _world(sqlite_url)


@pytest.fixture
def world_any_db(database_url: str) -> Iterator[World]:
    yield from _world(database_url)


def _world(url: str) -> Iterator[World]:
    ws = Workspace(team_id="T0ACME")
    alice = ws.add_user("alice", email="alice@acme.test")
    bob = ws.add_user("bob", email="bob@acme.test")
    sec_admin = ws.add_user("sam", email="sam@acme.test")
    group = ws.add_usergroup("security-team", [sec_admin])
    general = ws.add_channel("general", members=[alice, bob, ws.bot])
    security = ws.add_channel("security-alerts", members=[sec_admin, bob, ws.bot])
    db = Database(url)
    db.upgrade()
    with SlackStandin(ws) as slack:
        settings = Settings(
            database_url=url,
            security_channel=security.id,
            admins=(group,),
            reminder_hours=24.0,
            escalation_hours=72.0,
            slack=SlackSettings(
                bot_token=slack.bot_token,
                signing_secret="test-signing-secret",
                api_url=slack.api_url,
            ),
        )
        yield World(ws, slack, db, settings, alice, bob, sec_admin, general, security)
    db.dispose()


def add_finding(
    db: Database,
    *,
    source: str = "slack",
    author: str | None = None,
    author_email: str | None = None,
    unit: str = "C0GENERAL",
    unit_name: str = "general",
    title: str = "",
    item_id: str | None = None,
    permalink: str | None = None,
    risk_level: str = "critical",
    rule_id: str = "openai_project_key",
    provider: str = "OpenAI",
    name: str = "OpenAI project API key",
    preview: str = "sk-proj-…9fQa",
    now: datetime | None = None,
    secret_id: int | None = None,
) -> tuple[int, int]:
    """Store a secret (or a new occurrence of `secret_id`) and queue its notifications exactly
    as bot/pipeline.py does: `alert:<occurrence>` to the poster, and `security_alert:<secret>`
    for critical and high findings. Returns (secret id, occurrence id)."""
    now = now or utcnow()
    with db.session() as session:
        if secret_id is None:
            secret = Secret(
                workspace="T0ACME",
                fingerprint=f"{next(_fingerprints):064x}",
                rule_id=rule_id,
                provider=provider,
                name=name,
                preview=preview,
                severity="critical",
                risk_score={"critical": 92, "high": 75, "medium": 50, "low": 10}[risk_level],
                risk_level=risk_level,
                risk_reasons=["LLM key with billing", "public channel"],
                first_seen=now,
                last_seen=now,
            )
            session.add(secret)
            session.flush()
        else:
            secret = session.get(Secret, secret_id)  # type: ignore[assignment]
        occurrence = Occurrence(
            secret_id=secret.id,
            workspace="T0ACME",
            source=source,
            unit=unit,
            unit_name=unit_name,
            item_id=item_id or f"{next(_fingerprints) + 1_760_000_000}.000100",
            title=title,
            author=author,
            author_email=author_email,
            permalink=permalink,
            posted_at=now,
            detected_at=now,
        )
        session.add(occurrence)
        session.flush()
        if source == "slack" and author:
            recipient = f"user:{author}"
        elif author_email:
            recipient = f"email:{author_email}"
        else:
            recipient = "security"
        session.add(
            Notification(
                workspace="T0ACME",
                secret_id=secret.id,
                occurrence_id=occurrence.id,
                kind="alert",
                recipient=recipient,
                dedupe_key=f"alert:{occurrence.id}",
                created_at=now,
                send_after=now,
            )
        )
        if risk_level in ("critical", "high") and secret_id is None:
            session.add(
                Notification(
                    workspace="T0ACME",
                    secret_id=secret.id,
                    occurrence_id=occurrence.id,
                    kind="security_alert",
                    recipient="security",
                    dedupe_key=f"security_alert:{secret.id}",
                    created_at=now,
                    send_after=now,
                )
            )
        return secret.id, occurrence.id


def later(minutes: float = 0, hours: float = 0) -> datetime:
    return utcnow() + timedelta(minutes=minutes, hours=hours)
