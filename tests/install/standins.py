"""The stand-in Slack, plus what installation needs: Socket Mode's apps.connections.open."""

from __future__ import annotations

from typing import Any

from tests.standins.slack import JSON, SlackStandin, Workspace, _ApiError
from tests.standins.socket_mode import SocketModeServer


class SocketModeSlack(SlackStandin):
    """Answers apps.connections.open (app-level token only) with the Socket Mode server's URL."""

    def __init__(self, workspace: Workspace, socket_mode: SocketModeServer) -> None:
        super().__init__(workspace)
        self.socket_mode = socket_mode
        self.app_token = "xapp-standin-" + self.bot_token.rsplit("-", 1)[-1]
        self.tokens[self.app_token] = workspace.bot.id
        self.scopes[self.app_token] = {"connections:write"}

    def _m_apps_connections_open(self, params: JSON, user_id: str, token: str | None) -> JSON:
        # docs.slack.dev/reference/methods/apps.connections.open: app-level tokens only
        if token != self.app_token:
            raise _ApiError("not_allowed_token_type")
        return {"url": self.socket_mode.url}


def event_envelope(team_id: str, event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The events_api payload Slack puts inside a Socket Mode envelope."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": "A0LEAKWATCH",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event.get("ts", "0"))),
    }
