"""Socket Mode: the bot connects with SLACK_APP_TOKEN (no public URL) and DMs a poster."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.detection.fakes import fake_secret
from bot.service import BotService
from tests.install.standins import SocketModeSlack, event_envelope
from tests.standins.slack import Workspace
from tests.standins.socket_mode import SocketModeServer


def test_a_message_event_over_socket_mode_gets_one_dm(tmp_path: Path) -> None:
    ws = Workspace(team_id="T0SOCKET", name="Acme", domain="acme")
    alice = ws.add_user("alice", email="alice@acme.test")
    general = ws.add_channel("general", members=[alice.id, ws.bot.id])
    security = ws.add_channel("security", members=[ws.bot.id])
    key = fake_secret("anthropic_api_key", seed=11)

    with SocketModeServer() as socket_mode, SocketModeSlack(ws, socket_mode) as slack:
        settings = load_settings({
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "LEAKWATCH_SECURITY_CHANNEL": security.id,
            "LEAKWATCH_DATA_DIR": str(tmp_path),
            "SLACK_POLL_INTERVAL": "3600",  # the event, not a poll, must find the key
        })
        bot = BotService(settings)
        bot.start(socket_mode=True)
        try:
            socket_mode.wait_for_connection()
            message = ws.post(general, alice, f"the prod key is {key}")
            payload = event_envelope(ws.team_id, ws.message_event(general, message.ts), "Ev0001")

            envelope = socket_mode.send_event(payload)
            assert socket_mode.wait_for_ack(envelope) < 3.0
            assert slack.wait_for(lambda: len(slack.dms_to(alice)) == 1, timeout=10)

            # Slack redelivers the same event (a retry): still one DM.
            retry = socket_mode.send_event(payload, retry_attempt=1)
            socket_mode.wait_for_ack(retry)
            assert not slack.wait_for(lambda: len(slack.dms_to(alice)) > 1, timeout=1.5)
        finally:
            bot.stop()

    dm = slack.dms_to(alice)[0]
    shown = str(dm.text) + str(dm.blocks)
    assert key not in shown
    assert key[-4:] in shown  # the masked preview's tail tells the poster which key it is


def test_socket_mode_without_an_app_token_names_the_setting(tmp_path: Path) -> None:
    ws = Workspace(team_id="T0SOCKET", name="Acme", domain="acme")
    with SocketModeServer() as socket_mode, SocketModeSlack(ws, socket_mode) as slack:
        settings = load_settings({
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_API_URL": slack.api_url,
            "LEAKWATCH_DATA_DIR": str(tmp_path),
        })
        bot = BotService(settings)
        try:
            with pytest.raises(Exception, match="SLACK_APP_TOKEN"):
                bot.start(socket_mode=True)
        finally:
            bot.stop()
