"""Button listeners of alerts, security alerts and App Home. Each acks first, then acts.

`register(app, db, settings)` wires this module and views, commands and home, sharing one
FindingActions; bot/slack_app/app.py calls it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.config import Settings
from bot.notify import blocks
from bot.notify.interactions import FindingActions, Outcome, finding_id_of
from bot.slack_app import commands, home, views
from bot.slack_app.commands import Backfill
from bot.store.db import Database


def register(
    app: App,
    db: Database,
    settings: Settings,
    *,
    backfill: Backfill | None = None,
    service: FindingActions | None = None,
) -> FindingActions:
    """Register every listener of the alert UI: buttons, modals, App Home, /leakwatch."""
    service = service or FindingActions(db, settings)
    register_actions(app, service)
    views.register(app, service)
    home.register(app, service)
    commands.register(app, service, backfill=backfill)
    return service


def _clicked(body: dict[str, Any]) -> tuple[int | None, str]:
    action = (body.get("actions") or [{}])[0]
    return finding_id_of(action.get("value")), str(body["user"]["id"])


def _team(body: dict[str, Any]) -> str | None:
    """The workspace the click came from: a finding of another one is refused."""
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    return str(team) if team else None


def answer(
    service: FindingActions,
    client: WebClient,
    body: dict[str, Any],
    respond: Respond,
    outcome: Outcome,
) -> None:
    """Show a refusal or a result only to the person who clicked."""
    if not outcome.text:
        return
    if body.get("response_url"):
        respond(text=outcome.text, response_type="ephemeral", replace_original=False)
    else:  # App Home and modals have no response_url
        service.notifier(client).tell(str(body["user"]["id"]), outcome.text)


def _republish_home(service: FindingActions, client: WebClient, body: dict[str, Any]) -> None:
    if (body.get("container") or {}).get("type") == "view" and body.get("view", {}).get(
        "type"
    ) == "home":
        user_id = str(body["user"]["id"])
        team = str((body.get("team") or {}).get("id") or "")
        client.views_publish(user_id=user_id, view=service.home_view(client, team, user_id))


def register_actions(app: App, service: FindingActions) -> None:
    def set_status(status: str) -> Callable[..., None]:
        def listener(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
            ack()
            finding_id, user_id = _clicked(body)
            if finding_id is None:
                return
            outcome = service.set_status(
                client, finding_id, user_id, status, workspace=_team(body)
            )
            if outcome.ok:
                _republish_home(service, client, body)
                return  # the message itself now shows the new state
            answer(service, client, body, respond, outcome)

        return listener

    app.action(blocks.ACTION_ROTATED)(set_status("rotated"))
    app.action(blocks.ACTION_REOPEN)(set_status("open"))

    @app.action(blocks.ACTION_NOT_SECRET)
    def not_a_secret(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        finding_id, user_id = _clicked(body)
        if finding_id is None:
            return
        allowed = service.may_act(
            client, finding_id, user_id, "not_a_secret", workspace=_team(body)
        )
        view = service.reason_view(finding_id) if allowed.ok else None
        if view is None:
            answer(service, client, body, respond, allowed)
            return
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(blocks.ACTION_STEPS)
    def rotation_steps(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        finding_id, user_id = _clicked(body)
        view = (
            service.steps_view(finding_id, user_id, workspace=_team(body))
            if finding_id is not None
            else None
        )
        if view is not None:
            client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(blocks.ACTION_DELETE)
    def delete_message(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        finding_id, user_id = _clicked(body)
        if finding_id is None:
            return
        outcome = service.delete_message(client, finding_id, user_id, workspace=_team(body))
        answer(service, client, body, respond, outcome)

    def link_clicked(action: str) -> Callable[..., None]:
        def listener(ack: Ack, body: dict[str, Any]) -> None:
            ack()  # the browser opens the URL; Slack still sends the click
            finding_id, user_id = _clicked(body)
            if finding_id is not None:
                service.record_click(finding_id, user_id, action, workspace=_team(body))

        return listener

    app.action(blocks.ACTION_OPEN_KEYS)(link_clicked("opened_keys_page"))
    app.action(blocks.ACTION_OPEN_USAGE)(link_clicked("opened_usage_page"))
