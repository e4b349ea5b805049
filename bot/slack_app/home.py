"""App Home: the user's own open findings; security admins also see the overview."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.notify.interactions import FindingActions


def register(app: App, service: FindingActions) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user_id = str(event["user"])
        view = service.home_view(client, str(context.team_id or ""), user_id)
        client.views_publish(user_id=user_id, view=view)
