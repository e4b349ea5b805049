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


class OAuthSlack(SlackStandin):
    """Answers oauth.v2.access: exchanges a code from `authorize()` for a new bot token.

    docs.slack.dev/reference/methods/oauth.v2.access: the client id and secret come as form
    fields or HTTP Basic auth; a code is single-use and short-lived.
    """

    def __init__(self, workspace: Workspace, client_id: str, client_secret: str) -> None:
        super().__init__(workspace)
        self.client_id = client_id
        self.client_secret = client_secret
        self._codes: dict[str, str] = {}  # code -> redirect_uri it was issued for
        self.installed_tokens: list[str] = []

    def authorize(self, redirect_uri: str = "") -> str:
        """What Slack does when an admin clicks Allow: a code for the redirect."""
        code = f"code-{len(self._codes) + 1}-{self.bot_token[-6:]}"
        self._codes[code] = redirect_uri
        return code

    def handle(
        self, method: str, params: JSON, token: str | None
    ) -> tuple[int, JSON, dict[str, str]]:
        if method != "oauth.v2.access":
            return super().handle(method, params, token)
        client = (params.get("client_id"), params.get("client_secret"))
        if client != (self.client_id, self.client_secret):
            return 200, {"ok": False, "error": "invalid_client_id"}, {}
        code = str(params.get("code", ""))
        if self._codes.pop(code, None) is None:
            return 200, {"ok": False, "error": "invalid_code"}, {}
        new_token = f"xoxb-standin-installed-{len(self.installed_tokens) + 1}-{code[-6:]}"
        self.tokens[new_token] = self.ws.bot.id
        self.scopes[new_token] = set(self.scopes[self.bot_token])
        self.installed_tokens.append(new_token)
        return 200, {
            "ok": True,
            "access_token": new_token,
            "token_type": "bot",
            "scope": ",".join(sorted(self.scopes[new_token])),
            "bot_user_id": self.ws.bot.id,
            "app_id": "A0LEAKWATCH",
            "team": {"id": self.ws.team_id, "name": self.ws.name},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": self.ws.admin.id},
        }, {}
