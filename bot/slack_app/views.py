"""Modal submissions: the reason a finding is not a secret."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.notify import blocks
from bot.notify.interactions import FindingActions, finding_id_of

MIN_REASON = 3


def register(app: App, service: FindingActions) -> None:
    @app.view(blocks.VIEW_NOT_SECRET)
    def not_a_secret_reason(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        view = body["view"]
        values = view.get("state", {}).get("values", {})
        reason = str(
            (values.get(blocks.REASON_BLOCK, {}).get(blocks.REASON_INPUT, {}) or {}).get("value")
            or ""
        ).strip()
        if len(reason) < MIN_REASON:
            ack(
                response_action="errors",
                errors={blocks.REASON_BLOCK: "Please say in a few words why this is not a secret."},
            )
            return
        ack()
        finding_id = finding_id_of(view.get("private_metadata"))
        if finding_id is None:
            return
        user_id = str(body["user"]["id"])
        outcome = service.set_status(client, finding_id, user_id, "not_a_secret", reason=reason)
        if not outcome.ok:
            service.notifier(client).tell(user_id, outcome.text)
