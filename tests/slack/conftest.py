"""Fixtures for the Slack tests: a workspace, the stand-in serving it, settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import SlackSettings
from tests.standins.slack import SlackStandin, Workspace

SIGNING_SECRET = "standin-signing-secret"


@pytest.fixture
def ws() -> Workspace:
    return Workspace(team_id="T0ACME", name="Acme", domain="acme")


@pytest.fixture
def slack(ws: Workspace) -> Iterator[SlackStandin]:
    with SlackStandin(ws) as server:
        yield server


def slack_settings(slack: SlackStandin, **overrides: object) -> SlackSettings:
    values: dict[str, object] = dict(
        bot_token=slack.bot_token,
        signing_secret=SIGNING_SECRET,
        api_url=slack.api_url,
        history_page_size=15,
    )
    values.update(overrides)
    return SlackSettings(**values)  # type: ignore[arg-type]
